//! Durable waits people can steer: bakes and canary holds. The clock stops while the rollout
//! is paused (the remaining time is kept, not restarted), and `promote` ends the wait early.

use std::time::Duration;

use chrono::{DateTime, Utc};
use temporalio_sdk::{TimerResult, WorkflowContext};

use super::{RolloutWorkflow, now};

/// How a hold ended.
pub(super) enum Held {
    /// The whole duration passed.
    Elapsed,
    /// Someone promoted.
    Promoted,
    /// The workflow was cancelled.
    Cancelled,
    /// Someone aborted the rollout.
    Aborted,
}

impl Held {
    /// Whether someone promoted; a cancellation or abort as the attempt's interruption.
    pub(super) fn promoted(self) -> Result<bool, super::step::Interrupted> {
        use super::step::Interrupted;
        match self {
            Held::Elapsed => Ok(false),
            Held::Promoted => Ok(true),
            Held::Cancelled => Err(Interrupted::TimerCancelled),
            Held::Aborted => Err(Interrupted::Aborted),
        }
    }
}

/// Waits `duration` for step `index`, minus any time spent paused, unless promoted.
pub(super) async fn hold(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    duration: Duration,
) -> Held {
    let promotions = ctx.state_mut(|s| {
        s.holding = Some(index);
        s.status.steps[index].hold_ms = Some(duration.as_millis() as i64);
        s.promotions
    });
    let mut remaining = duration;
    let end = loop {
        if remaining.is_zero() {
            break Held::Elapsed;
        }
        // Paused: keep what is left, and wait for resume.
        ctx.state_mut(|s| {
            if s.status.paused.is_some() {
                let step = &mut s.status.steps[index];
                step.ends_at = None;
                step.remaining_ms = Some(remaining.as_millis() as i64);
            }
        });
        if ctx
            .wait_condition(|s| {
                s.status.paused.is_none() || s.promotions != promotions || s.aborted.is_some()
            })
            .await
            .is_err()
        {
            break Held::Cancelled;
        }
        if ctx.state(|s| s.aborted.is_some()) {
            break Held::Aborted;
        }
        if ctx.state(|s| s.promotions != promotions) {
            break Held::Promoted;
        }
        let started = now(ctx);
        ctx.state_mut(|s| {
            let step = &mut s.status.steps[index];
            step.remaining_ms = None;
            step.ends_at =
                started.and_then(|t| chrono::Duration::from_std(remaining).ok().map(|d| t + d));
        });
        let interrupted = temporalio_sdk::workflows::select! {
            fired = ctx.timer(remaining) => {
                if fired == TimerResult::Cancelled { Some(Held::Cancelled) } else { Some(Held::Elapsed) }
            }
            _ = ctx.wait_condition(|s| s.status.paused.is_some() || s.promotions != promotions || s.aborted.is_some()) => None
        };
        if let Some(end) = interrupted {
            break end;
        }
        if ctx.state(|s| s.aborted.is_some()) {
            break Held::Aborted;
        }
        if ctx.state(|s| s.promotions != promotions) {
            break Held::Promoted;
        }
        remaining = remaining.saturating_sub(elapsed(started, now(ctx)));
    };
    ctx.state_mut(|s| {
        s.holding = None;
        let step = &mut s.status.steps[index];
        step.ends_at = None;
        step.hold_ms = None;
        step.remaining_ms = None;
    });
    end
}

fn elapsed(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Duration {
    match (from, to) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}
