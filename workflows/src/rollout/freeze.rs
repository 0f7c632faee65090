//! The plan's freeze windows, checked when the rollout starts (see [`crate::plan::freeze`]).
//!
//! Plans without `freeze:` issue no command here, so rollouts recorded before windows existed
//! replay unchanged.

use temporalio_sdk::{TimerResult, WorkflowContext};

use super::{RolloutWorkflow, now};
use crate::plan::freeze::{FreezeAction, active};
use crate::status::{HumanAction, Pause};

/// Whether the rollout may go on.
pub(super) enum Frozen {
    /// No window holds it (or one was overridden, and that is recorded).
    Clear,
    /// A window refuses it: why, and until when.
    Refused(String),
    /// Aborted while waiting for a window's end: who and why.
    Aborted(String),
    /// The workflow was cancelled while waiting.
    Cancelled,
}

/// Checks the windows at the workflow's clock; with `during: wait`, waits out the window
/// (the rollout shows as paused by `freeze`) and checks again.
pub(super) async fn check(ctx: &WorkflowContext<RolloutWorkflow>) -> Frozen {
    let windows = ctx.state(|s| s.plan.freeze.clone());
    if windows.is_empty() {
        return Frozen::Clear;
    }
    loop {
        let Some(at) = now(ctx) else {
            return Frozen::Clear;
        };
        let Some((window, end)) = active(&windows, at) else {
            return Frozen::Clear;
        };
        if let Some(o) = ctx.state(|s| s.plan.freeze_override.clone()) {
            ctx.state_mut(|s| {
                s.status.actions.push(HumanAction {
                    action: "override_freeze".to_owned(),
                    by: o.by.clone(),
                    at: Some(at),
                    reason: Some(format!(
                        "freeze window `{}` (until {}): {}",
                        window.name,
                        end.format("%Y-%m-%d %H:%M UTC"),
                        o.reason
                    )),
                    step: None,
                    verified: Some("claimed".to_owned()),
                    refused: None,
                });
            });
            return Frozen::Clear;
        }
        let until = end.format("%Y-%m-%d %H:%M:%S UTC");
        if window.during == FreezeAction::Refuse {
            return Frozen::Refused(format!(
                "not started: freeze window `{}` is on until {until}; start it after that, or override with `cutover rollout start PLAN --override-freeze REASON`",
                window.name
            ));
        }
        ctx.state_mut(|s| {
            s.status.paused = Some(Pause {
                by: "freeze".to_owned(),
                reason: format!(
                    "freeze window `{}` until {until}: the rollout starts when it ends",
                    window.name
                ),
                since: Some(at),
            });
        });
        let wait = (end - at).to_std().unwrap_or_default();
        let ended = temporalio_sdk::workflows::select! {
            fired = ctx.timer(wait) => fired != TimerResult::Cancelled,
            _ = ctx.wait_condition(|s| s.aborted.is_some()) => true
        };
        ctx.state_mut(|s| s.status.paused = None);
        if !ended {
            return Frozen::Cancelled;
        }
        if let Some((by, reason)) = ctx.state(|s| s.aborted.clone()) {
            return Frozen::Aborted(format!(
                "aborted by {by} while waiting for freeze window `{}`: {reason}",
                window.name
            ));
        }
    }
}
