//! Running one step: attempts, backoff timers, and the step's entry in `status`.

use std::time::Duration;

use temporalio_common::RetryPolicy as TemporalRetryPolicy;
use temporalio_sdk::{ActivityCancellationType, ActivityOptions, TimerResult, WorkflowContext};

use super::failure::{AttemptFailure, classify};
use super::{RolloutWorkflow, now};
use crate::contracts::{
    BuildInput, CommandInput, RolloutActivities, StepOutput, StepRef, VerifyInput,
};
use crate::plan::{Step, StepAction};
use crate::status::StepState;

/// How a step ended.
pub(super) enum StepEnd {
    Succeeded,
    /// Failed for good; the text names the step, the attempts and the error.
    Failed(String),
    Cancelled,
}

/// Runs step `index` until it succeeds, fails for good, or the rollout is cancelled.
pub(super) async fn run(ctx: &WorkflowContext<RolloutWorkflow>, index: usize) -> StepEnd {
    let (step, rollout) =
        ctx.state(|s| (s.plan.steps[index].clone(), s.status.workflow_id.clone()));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = now(ctx);
        ctx.state_mut(|s| {
            s.status.current_step = Some(step.name.clone());
            let st = &mut s.status.steps[index];
            st.state = StepState::Running;
            st.attempts = attempt;
            st.next_attempt_at = None;
            if st.started_at.is_none() {
                st.started_at = started;
            }
        });
        let step_ref = StepRef {
            rollout: rollout.clone(),
            step: step.name.clone(),
            attempt,
        };
        let result = execute(ctx, &step, step_ref).await;
        let ended = now(ctx);
        let error = match result {
            Ok(output) => {
                ctx.state_mut(|s| {
                    let st = &mut s.status.steps[index];
                    st.state = StepState::Succeeded;
                    st.finished_at = ended;
                    st.output = Some(output);
                });
                return StepEnd::Succeeded;
            }
            Err(e) => match classify(&e, &step.retry) {
                AttemptFailure::Cancelled => return cancelled(ctx, index),
                AttemptFailure::Error(error) => error,
            },
        };
        let again = error.retryable && step.retry.allows_attempt_after(attempt);
        if !again {
            let reason = format!(
                "step `{}` failed after {attempt} attempt{}: {}: {}",
                step.name,
                if attempt == 1 { "" } else { "s" },
                error.kind,
                error.message
            );
            ctx.state_mut(|s| {
                let st = &mut s.status.steps[index];
                st.state = StepState::Failed;
                st.finished_at = ended;
                st.last_error = Some(error);
            });
            return StepEnd::Failed(reason);
        }
        let delay = step.retry.delay_after(attempt);
        ctx.state_mut(|s| {
            let st = &mut s.status.steps[index];
            st.state = StepState::Retrying;
            st.next_attempt_at =
                ended.and_then(|t| chrono::Duration::from_std(delay).ok().map(|d| t + d));
            st.last_error = Some(error);
        });
        if !delay.is_zero() && ctx.timer(delay).await == TimerResult::Cancelled {
            return cancelled(ctx, index);
        }
    }
}

fn cancelled(ctx: &WorkflowContext<RolloutWorkflow>, index: usize) -> StepEnd {
    let at = now(ctx);
    ctx.state_mut(|s| {
        let st = &mut s.status.steps[index];
        st.state = StepState::Cancelled;
        st.finished_at = at;
    });
    StepEnd::Cancelled
}

/// One attempt: one activity execution with a single server-side attempt.
async fn execute(
    ctx: &WorkflowContext<RolloutWorkflow>,
    step: &Step,
    step_ref: StepRef,
) -> Result<StepOutput, temporalio_common::error::ActivityExecutionError> {
    let opts = options(step, &step_ref);
    match &step.action {
        StepAction::Command(spec) => ctx
            .execute_activity(
                RolloutActivities::run_command,
                CommandInput {
                    step: step_ref,
                    spec: spec.clone(),
                },
                opts,
            )
            .await
            .map(StepOutput::Command),
        StepAction::Build(spec) => ctx
            .execute_activity(
                RolloutActivities::build,
                BuildInput {
                    step: step_ref,
                    spec: spec.clone(),
                },
                opts,
            )
            .await
            .map(StepOutput::Build),
        StepAction::Verify(spec) => ctx
            .execute_activity(
                RolloutActivities::verify,
                VerifyInput {
                    step: step_ref,
                    spec: spec.clone(),
                },
                opts,
            )
            .await
            .map(StepOutput::Verify),
    }
}

fn options(step: &Step, step_ref: &StepRef) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(step.timeout)
        .heartbeat_timeout(step.heartbeat_timeout)
        // One server-side attempt: the workflow owns retries (see the module docs).
        .retry_policy(
            TemporalRetryPolicy::builder()
                .maximum_attempts(1)
                .initial_interval(Duration::from_secs(1))
                .build(),
        )
        // Wait for the activity to confirm cancellation, so a cancelled build's process group
        // is gone before the rollout reports `cancelled`.
        .cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
        .activity_id(format!("{}#{}", step_ref.step, step_ref.attempt))
        .summary(format!(
            "{} ({}), attempt {}",
            step.name,
            step.action.kind(),
            step_ref.attempt
        ))
        .build()
}
