//! `deploy` steps: blue-green, canary (weights, bakes and analysis between them) and rolling,
//! through the target's driver; then the rollback window (a hold: pausable, abortable,
//! promotable) and the old version retired. What a deploy leaves behind is remembered for the
//! saga as soon as `prepare` succeeds.

use std::time::Duration;

use temporalio_sdk::{ActivityOptions, TimerResult, WorkflowContext};

use super::RolloutWorkflow;
use super::analysis::{Analysed, analyse};
use super::hold::{Held, hold};
use super::step::{Interrupted, Release, WINDOW_HOLD_PATCH};
use crate::contracts::{
    DeployInput, DeployOutput, RetireInput, ShiftInput, StepRef, TargetActivities,
};
use crate::plan::{DeploySpec, Strategy};

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
    let input = DeployInput {
        step: step_ref.clone(),
        driver: release.driver,
        service: release.service.clone(),
        version: release.version.clone(),
        spec: spec.clone(),
    };
    let shift = |weight: u8| ShiftInput {
        step: step_ref.clone(),
        driver: release.driver,
        service: release.service.clone(),
        root: spec.root.clone(),
        version: release.version.clone(),
        weight,
    };
    let mut shifts = Vec::new();
    let prepared = if spec.strategy == Strategy::Rolling {
        {
            let out = ctx
                .execute_activity(TargetActivities::rolling, input, opts.clone())
                .await?;
            if !out.already_current {
                let previous = out.previous.clone();
                ctx.state_mut(|s| super::saga::remember_deploy(s, index, &spec.root, previous));
            }
            out
        }
    } else {
        let prepared = ctx
            .execute_activity(TargetActivities::prepare, input, opts.clone())
            .await?;
        if !prepared.already_current {
            let previous = prepared.previous.clone();
            ctx.state_mut(|s| super::saga::remember_deploy(s, index, &spec.root, previous));
        }
        let weights: Vec<(u8, Duration)> = match spec.strategy {
            Strategy::Canary => spec.canary.iter().map(|c| (c.weight, c.bake)).collect(),
            _ => vec![(100, Duration::ZERO)],
        };
        for (weight, bake) in weights {
            shifts.push(
                ctx.execute_activity(TargetActivities::shift, shift(weight), opts.clone())
                    .await?,
            );
            // A canary's analysis judges each partial weight before its bake.
            if let (true, Some(analysis)) = (weight < 100, &spec.analysis) {
                match analyse(ctx, index, analysis, &step_ref, &opts, Some(weight)).await {
                    Analysed::Passed(out) if out.promoted => {
                        shifts.push(
                            ctx.execute_activity(TargetActivities::shift, shift(100), opts.clone())
                                .await?,
                        );
                        break;
                    }
                    Analysed::Passed(_) => {}
                    Analysed::Failed(e) => return Err(Interrupted::Failed(e)),
                    Analysed::Cancelled => return Err(Interrupted::TimerCancelled),
                    Analysed::Aborted => return Err(Interrupted::Aborted),
                }
            }
            if weight < 100 && !bake.is_zero() {
                match hold(ctx, index, bake).await {
                    Held::Elapsed => {}
                    // Promote skips the remaining canary steps: all traffic to the new version.
                    Held::Promoted => {
                        shifts.push(
                            ctx.execute_activity(TargetActivities::shift, shift(100), opts.clone())
                                .await?,
                        );
                        break;
                    }
                    Held::Cancelled => return Err(Interrupted::TimerCancelled),
                    Held::Aborted => return Err(Interrupted::Aborted),
                }
            }
        }
        prepared
    };
    if !spec.rollback_window.is_zero() {
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
    }
    let retired = ctx
        .execute_activity(
            TargetActivities::retire,
            RetireInput {
                step: step_ref,
                driver: release.driver,
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
