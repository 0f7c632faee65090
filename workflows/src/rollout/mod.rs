//! `RolloutWorkflow`: runs a plan's steps in order, each as an activity, and answers `status`.
//!
//! Retries are driven by the workflow rather than by Temporal's server-side retry policy: each
//! attempt is one activity execution with a single attempt, and the backoff between attempts
//! is a durable timer. That costs a few more history events per retry, and buys a `status`
//! that shows every attempt as it happens — attempt number, last error, when the next attempt
//! starts — which a server-side retry would hide until the activity finally closes.

mod failure;
mod step;

use chrono::{DateTime, Utc};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination};

use crate::plan::Plan;
use crate::status::{
    RolloutState, RolloutStatus, RolloutSummary, StepState, StepStatus, StepSummary,
};
use step::StepEnd;

/// The failure type name a failed rollout ends with.
pub const ROLLOUT_FAILED: &str = "RolloutFailed";

/// Runs one plan. Its ID is `rollout/<service>/<environment>`.
#[workflow]
pub struct RolloutWorkflow {
    plan: Plan,
    status: RolloutStatus,
}

#[workflow_methods]
impl RolloutWorkflow {
    #[init]
    fn new(ctx: &WorkflowContextView, plan: Plan) -> Self {
        let steps = plan
            .steps
            .iter()
            .map(|s| StepStatus {
                name: s.name.clone(),
                kind: s.action.kind().to_owned(),
                state: StepState::Pending,
                attempts: 0,
                max_attempts: s.retry.maximum_attempts,
                started_at: None,
                finished_at: None,
                next_attempt_at: None,
                last_error: None,
                output: None,
            })
            .collect();
        let status = RolloutStatus {
            workflow_id: ctx.workflow_id().to_owned(),
            service: plan.service.clone(),
            environment: plan.environment.clone(),
            version: plan.version.clone(),
            state: RolloutState::Running,
            current_step: None,
            started_at: None,
            finished_at: None,
            reason: None,
            steps,
        };
        Self { plan, status }
    }

    /// Runs every step in order. Fails with `RolloutFailed` naming the step and its error.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<RolloutSummary> {
        let started = now(ctx);
        ctx.state_mut(|s| s.status.started_at = started);
        let count = ctx.state(|s| s.plan.steps.len());
        for index in 0..count {
            match step::run(ctx, index).await {
                StepEnd::Succeeded => {}
                StepEnd::Failed(reason) => {
                    finish(ctx, RolloutState::Failed, Some(reason.clone()));
                    return Err(ApplicationFailure::builder(reason)
                        .type_name(ROLLOUT_FAILED.to_owned())
                        .non_retryable(true)
                        .build()
                        .into());
                }
                StepEnd::Cancelled => {
                    let reason = ctx
                        .cancellation_token()
                        .reason()
                        .filter(|r| !r.is_empty())
                        .unwrap_or_else(|| "cancelled on request".to_owned());
                    finish(ctx, RolloutState::Cancelled, Some(reason));
                    return Err(WorkflowTermination::cancelled());
                }
            }
        }
        finish(ctx, RolloutState::Succeeded, None);
        Ok(ctx.state(|s| s.summary()))
    }

    /// The rollout's state, current step and every step's attempts, times and last error.
    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> RolloutStatus {
        self.status.clone()
    }
}

impl RolloutWorkflow {
    fn summary(&self) -> RolloutSummary {
        RolloutSummary {
            outcome: self.status.state,
            service: self.status.service.clone(),
            environment: self.status.environment.clone(),
            version: self.status.version.clone(),
            steps: self
                .status
                .steps
                .iter()
                .map(|s| StepSummary {
                    name: s.name.clone(),
                    state: s.state,
                    attempts: s.attempts,
                    duration_ms: s.duration_ms(),
                })
                .collect(),
        }
    }
}

fn finish(ctx: &WorkflowContext<RolloutWorkflow>, state: RolloutState, reason: Option<String>) {
    let at = now(ctx);
    ctx.state_mut(|s| {
        s.status.state = state;
        s.status.reason = reason;
        s.status.current_step = None;
        s.status.finished_at = at;
    });
}

/// The workflow's own clock: deterministic on replay.
fn now(ctx: &WorkflowContext<RolloutWorkflow>) -> Option<DateTime<Utc>> {
    ctx.workflow_time().map(DateTime::<Utc>::from)
}
