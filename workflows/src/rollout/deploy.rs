//! `deploy` steps: blue-green, canary (weights, bakes and analysis between them) and rolling,
//! through the target's driver; then the rollback window (a hold: pausable, abortable,
//! promotable) and the old version retired. What a deploy leaves behind is remembered for the
//! saga as soon as `prepare` succeeds.
//!
//! Two things keep a deploy from leaving an unknown state:
//! - its progress (canary entries done, rollback window held) is kept in workflow state, so
//!   an attempt after a transient failure resumes where the last one was — traffic stays at
//!   the weight reached instead of dropping back to the first canary weight;
//! - a deploy that fails for good is withdrawn (`deploy.withdraw`): its instances stopped, the
//!   serving release whole and alone in the upstream, every member checked, and the rollout's
//!   reason says what serves now.

use std::time::Duration;

use temporalio_sdk::{ActivityOptions, TimerResult, WorkflowContext};

use super::RolloutWorkflow;
use super::hold::{Held, hold};
use super::step::{Interrupted, Release, WINDOW_HOLD_PATCH};
use crate::contracts::{
    DeployOutput, RetireInput, ShiftOutput, StepRef, TargetActivities, WithdrawInput,
};
use crate::plan::{DeploySpec, Step, Strategy};

/// The patch that keeps a deploy's progress across attempts and resumes from it.
pub(super) const RESUME_PATCH: &str = "deploy-resume-v1";
/// The patch that resumes a canary with the next entry's own shift, without first moving
/// traffic back to the last weight completed.
pub(super) const NEXT_SHIFT_PATCH: &str = "deploy-resume-at-next-shift-v1";
/// The patch that withdraws a deploy that failed for good.
pub(super) const WITHDRAW_PATCH: &str = "deploy-withdraw-v1";
/// The patch that stopped first deploys (no previous version to keep running) from waiting
/// out the rollback window: there is nothing to roll back to, or to retire.
pub(super) const FIRST_DEPLOY_NO_WINDOW_PATCH: &str = "deploy-first-no-window-v1";

/// How far a deploy step got; kept across its attempts.
#[derive(Clone, Debug, Default)]
pub(super) struct Progress {
    /// Canary entries (shift, analysis, bake) completed, in plan order.
    pub(super) completed: usize,
    /// The shifts those entries made.
    pub(super) shifts: Vec<ShiftOutput>,
    /// The rollback window has been held to its end (or promoted).
    pub(super) window_held: bool,
    /// On a fleet: the hosts deployed, with what their deploy did.
    pub(super) hosts: std::collections::BTreeMap<String, DeployOutput>,
    /// On a fleet: waves deployed and checked.
    pub(super) waves_checked: usize,
}

/// A deploy: start the new version beside the old, move traffic (at once, or in canary
/// weights held for their bake times), keep the old version for the rollback window, stop it.
/// Rolling deploys replace instances one by one in a single activity.
pub(super) async fn deploy(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    spec: &DeploySpec,
    release: &Release,
    step_ref: StepRef,
    opts: ActivityOptions,
) -> Result<DeployOutput, Interrupted> {
    let input = release.deploy_input(&step_ref, spec);
    let shift = |weight: u8| release.shift_input(&step_ref, &spec.root, weight);
    let resume = ctx.patched(RESUME_PATCH);
    let mut shifts = Vec::new();
    let prepared = if spec.strategy == Strategy::Rolling {
        {
            let out = ctx
                .execute_activity(TargetActivities::rolling, input, opts.clone())
                .await?;
            if !out.already_current {
                let previous = out.previous.clone();
                ctx.state_mut(|s| {
                    super::saga::remember_deploy(s, index, &spec.root, previous, None)
                });
            }
            out
        }
    } else {
        let prepared = ctx
            .execute_activity(TargetActivities::prepare, input, opts.clone())
            .await?;
        if !prepared.already_current {
            let previous = prepared.previous.clone();
            ctx.state_mut(|s| super::saga::remember_deploy(s, index, &spec.root, previous, None));
        }
        let canary_script;
        let entries: &[crate::plan::CanaryStep] = match spec.strategy {
            Strategy::Canary => &spec.canary,
            _ => {
                canary_script = [crate::plan::CanaryStep {
                    weight: 100,
                    bake: Duration::ZERO,
                    gate: None,
                }];
                &canary_script
            }
        };
        let done = if resume {
            let progress = progress(ctx, index);
            shifts = progress.shifts;
            progress.completed
        } else {
            0
        };
        // Resuming mid-canary. Rollouts before NEXT_SHIFT_PATCH first moved traffic back to the
        // last weight completed; but when the attempt was lost during the next entry's shift
        // (its worker killed), that shift may well have been applied, and moving back to the
        // completed weight sent traffic from 50% down to 10% for a moment. Every entry starts
        // with its own shift (idempotent), so the resumed entry converges from either state.
        if let Some(reached) = entries
            .get(done.wrapping_sub(1))
            .filter(|_| done < entries.len())
            && !ctx.patched(NEXT_SHIFT_PATCH)
        {
            ctx.execute_activity(TargetActivities::shift, shift(reached.weight), opts.clone())
                .await?;
        }
        // Each entry done (shift, gate, bake) is recorded before the next begins.
        let made = std::cell::RefCell::new(std::mem::take(&mut shifts));
        let script = super::canary::Script {
            entries,
            analysis: spec.analysis.as_ref(),
            from: done,
            stop_at_full: false,
            shown: spec.strategy == Strategy::Canary,
        };
        super::canary::script(
            ctx,
            index,
            script,
            &step_ref,
            &opts,
            async |weight| {
                let out = ctx
                    .execute_activity(TargetActivities::shift, shift(weight), opts.clone())
                    .await?;
                made.borrow_mut().push(out);
                Ok(())
            },
            |n| {
                if resume {
                    let made = made.borrow().clone();
                    ctx.state_mut(|st| {
                        let p = st.deploys.entry(index).or_default();
                        p.completed = n;
                        p.shifts = made;
                    });
                }
            },
        )
        .await?;
        shifts = made.into_inner();
        prepared
    };
    let window_held = resume && progress(ctx, index).window_held;
    let nothing_to_keep = prepared.previous.is_none() && ctx.patched(FIRST_DEPLOY_NO_WINDOW_PATCH);
    if !spec.rollback_window.is_zero() && !window_held && !nothing_to_keep {
        // The window is a hold like a bake: `pause` stops its clock, `abort` rolls back at
        // once (the old version is still running), `promote` ends it early. Rollouts started
        // before this replay with the plain timer they ran.
        if ctx.patched(WINDOW_HOLD_PATCH) {
            match hold(ctx, index, spec.rollback_window).await {
                Held::Elapsed | Held::Promoted => {}
                Held::Cancelled => return Err(Interrupted::TimerCancelled),
                Held::Aborted => return Err(Interrupted::Aborted),
            }
        } else if ctx.timer(spec.rollback_window).await == TimerResult::Cancelled {
            return Err(Interrupted::TimerCancelled);
        }
        if resume {
            ctx.state_mut(|s| s.deploys.entry(index).or_default().window_held = true);
        }
    }
    let retired = ctx
        .execute_activity(
            TargetActivities::retire,
            RetireInput {
                step: step_ref,
                driver: release.target.driver,
                service: release.service.clone(),
                root: spec.root.clone(),
                keep: release.version.clone(),
            },
            opts,
        )
        .await?;
    Ok(DeployOutput {
        prepared,
        shifts,
        retired: retired.stopped,
    })
}

pub(super) fn progress(ctx: &WorkflowContext<RolloutWorkflow>, index: usize) -> Progress {
    ctx.state(|s| s.deploys.get(&index).cloned().unwrap_or_default())
}

/// Withdraws deploy step `index` after it failed for good: `deploy.withdraw` stops what it
/// started and checks what serves. If the new version had not reached all traffic, there is
/// nothing left for the saga to undo for this step and its progress is forgotten (a `retry`
/// starts it afresh). Returns what to add to the step's failure `reason` (nothing when the
/// driver already undid the attempt and said so, and nothing changed since).
pub(super) async fn withdraw(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    placed: &Step,
    spec: &DeploySpec,
    release: &Release,
    step: StepRef,
    reason: &str,
) -> Option<String> {
    let input = WithdrawInput {
        step,
        driver: release.target.driver,
        service: release.service.clone(),
        root: spec.root.clone(),
        version: release.version.clone(),
    };
    // Undone where it was done: on the host's agent.
    let opts = super::route::on_host(super::saga::options(), placed, &release.target);
    match ctx
        .execute_activity(TargetActivities::withdraw, input, opts)
        .await
    {
        Ok(out) => {
            if !out.still_serving {
                ctx.state_mut(|s| {
                    s.deploys.remove(&index);
                    super::saga::forget_deploy(s, index);
                });
            }
            let said = out.undone.is_empty() && reason.contains(&out.serving_now(&release.service));
            (!said).then(|| out.describe(&release.service))
        }
        Err(e) => Some(format!(
            "undoing it failed ({e}); the state of {} is not verified",
            release.service
        )),
    }
}
