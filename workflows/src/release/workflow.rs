//! `ReleaseWorkflow`: a release of several services as one parent workflow.
//!
//! The shared migration runs first (an activity, retried by Temporal); then each service's
//! plan runs as a child `RolloutWorkflow`, one after another in dependency order (one at a
//! time: a release is read as a sequence, and a failure stops it before the next service is
//! touched). When a service fails, its own rollout has already undone itself (its saga); the
//! parent then rolls back the services released before it, newest first, each by a child
//! rollout of `rollback` steps — except a service whose plan has a `point_of_no_return`,
//! which stays and is reported as kept. The shared migration is kept.

use std::time::Duration;

use temporalio_common::RetryPolicy as TemporalRetryPolicy;
use temporalio_common::error::{ApplicationFailure, ChildWorkflowExecutionError};
use temporalio_common::protos::temporal::api::failure::v1::Failure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, ChildWorkflowOptions, ParentClosePolicy, WorkflowContext, WorkflowContextView,
    WorkflowResult,
};

use super::{ReleasePlan, ReleaseState, ReleaseStatus, ServiceState, ServiceStatus, rollback_plan};
use crate::RolloutWorkflow;
use crate::contracts::{MigrateInput, RolloutActivities, StepRef};
use crate::input::Input;
use crate::plan::Plan;

/// The failure type name a failed release ends with.
pub const RELEASE_FAILED: &str = "ReleaseFailed";

/// Runs one release plan. Its ID is `release/<name>/<environment>`.
#[workflow]
pub struct ReleaseWorkflow {
    plan: ReleasePlan,
    /// Set when the input was not a valid release plan: why.
    invalid: Option<String>,
    status: ReleaseStatus,
}

#[workflow_methods]
impl ReleaseWorkflow {
    #[init]
    fn new(ctx: &WorkflowContextView, input: Input<ReleasePlan>) -> Self {
        let (plan, invalid) = match input.into_result() {
            Ok(plan) => {
                let problems = plan.problems();
                let invalid = (!problems.is_empty()).then(|| problems.join("; "));
                (plan, invalid)
            }
            Err(why) => (ReleasePlan::default(), Some(why)),
        };
        let order = plan.order().unwrap_or_default();
        let status = ReleaseStatus {
            workflow_id: ctx.workflow_id().to_owned(),
            name: plan.name.clone(),
            environment: plan.environment.clone(),
            state: ReleaseState::Running,
            migrate: None,
            services: order
                .iter()
                .map(|&i| {
                    let p = &plan.services[i].plan;
                    ServiceStatus {
                        service: p.service.clone(),
                        version: p.version.clone(),
                        workflow_id: p.workflow_id(),
                        state: ServiceState::Pending,
                        note: None,
                    }
                })
                .collect(),
            reason: None,
        };
        Self {
            plan,
            invalid,
            status,
        }
    }

    /// The migration, then every service in order; on a failure, the services released so
    /// far rolled back in reverse. Ends with the status, or fails `ReleaseFailed`.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<ReleaseStatus> {
        if let Some(why) = ctx.state(|s| s.invalid.clone()) {
            return fail(ctx, format!("invalid input, nothing was started: {why}"));
        }
        let (plan, workflow_id) = ctx.state(|s| (s.plan.clone(), s.status.workflow_id.clone()));
        if let Some(spec) = &plan.migrate {
            let input = MigrateInput {
                step: StepRef {
                    rollout: workflow_id.clone(),
                    step: "migrate".to_owned(),
                    attempt: 1,
                },
                spec: spec.clone(),
            };
            match ctx
                .execute_activity(RolloutActivities::migrate, input, migrate_options())
                .await
            {
                Ok(out) => {
                    let now_at = out
                        .applied
                        .iter()
                        .map(|m| m.version)
                        .max()
                        .unwrap_or(out.previous_version);
                    let said = format!(
                        "database at version {now_at} ({} applied, kept if services roll back)",
                        out.applied.len()
                    );
                    ctx.state_mut(|s| s.status.migrate = Some(said));
                }
                Err(e) => {
                    let why = format!("the shared migration failed: {e}");
                    ctx.state_mut(|s| {
                        s.status.migrate = Some(why.clone());
                        skip_pending(s);
                    });
                    return fail(ctx, format!("{why}; no service was started"));
                }
            }
        }
        let order = plan.order().unwrap_or_default();
        let mut released: Vec<usize> = Vec::new();
        for (position, &i) in order.iter().enumerate() {
            let service = &plan.services[i].plan;
            set(ctx, position, ServiceState::Running, None);
            match run_child(ctx, service.clone(), "release").await {
                Ok(()) => {
                    set(ctx, position, ServiceState::Succeeded, None);
                    released.push(position);
                }
                Err(why) => {
                    set(ctx, position, ServiceState::Failed, Some(why.clone()));
                    ctx.state_mut(skip_pending);
                    let undone = undo(ctx, &plan, &order, &released).await;
                    return fail(
                        ctx,
                        format!("service `{}` failed: {why}; {undone}", service.service),
                    );
                }
            }
        }
        ctx.state_mut(|s| s.status.state = ReleaseState::Succeeded);
        Ok(ctx.state(|s| s.status.clone()))
    }

    /// The release: the migration's outcome and each service's state, in order.
    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> ReleaseStatus {
        self.status.clone()
    }
}

/// Rolls back the services at `released` positions, newest first. Returns what happened,
/// in words.
async fn undo(
    ctx: &WorkflowContext<ReleaseWorkflow>,
    plan: &ReleasePlan,
    order: &[usize],
    released: &[usize],
) -> String {
    if released.is_empty() {
        return "no service had been released before it".to_owned();
    }
    let mut said = Vec::new();
    for &position in released.iter().rev() {
        let service = &plan.services[order[position]].plan;
        if let Some(step) = service.steps.iter().find(|s| s.point_of_no_return) {
            let note = format!("kept: step `{}` is its point of no return", step.name);
            said.push(format!("`{}` {note}", service.service));
            set(ctx, position, ServiceState::Kept, Some(note));
            continue;
        }
        match run_child(ctx, rollback_plan(service), "rollback").await {
            Ok(()) => {
                said.push(format!("`{}` rolled back", service.service));
                set(ctx, position, ServiceState::RolledBack, None);
            }
            Err(why) => {
                let note = format!("rolling it back failed: {why}");
                said.push(format!("`{}` {note}", service.service));
                set(ctx, position, ServiceState::Kept, Some(note));
            }
        }
    }
    said.join(", ")
}

/// Runs `plan` as a child rollout with its usual ID; `Err` says why it did not succeed.
async fn run_child(
    ctx: &WorkflowContext<ReleaseWorkflow>,
    plan: Plan,
    what: &str,
) -> Result<(), String> {
    let mut opts = ChildWorkflowOptions::workflow_id(plan.workflow_id());
    // A release that ends (or is terminated) while a service's rollout runs asks that rollout
    // to cancel, which undoes what it did; terminating it would leave its hosts half done.
    opts.parent_close_policy = ParentClosePolicy::RequestCancel;
    opts.static_summary = Some(format!(
        "{what} of {} {} → {}",
        plan.service, plan.version, plan.environment
    ));
    let started = ctx
        .start_child_workflow(RolloutWorkflow::run, Input::Valid(plan), opts)
        .await
        .map_err(|e| format!("its rollout could not start ({e}); is another one running?"))?;
    match started.result().await {
        Ok(_) => Ok(()),
        Err(ChildWorkflowExecutionError::Failed(f)) => Err(deepest(f.failure())),
        Err(e) => Err(e.to_string()),
    }
}

/// The innermost cause's message: the rollout's own reason, not "child workflow failed".
fn deepest(failure: &Failure) -> String {
    let mut f = failure;
    while let Some(cause) = f.cause.as_deref() {
        f = cause;
    }
    f.message.clone()
}

fn set(
    ctx: &WorkflowContext<ReleaseWorkflow>,
    position: usize,
    state: ServiceState,
    note: Option<String>,
) {
    ctx.state_mut(|s| {
        let st = &mut s.status.services[position];
        st.state = state;
        if note.is_some() {
            st.note = note;
        }
    });
}

fn skip_pending(s: &mut ReleaseWorkflow) {
    for st in &mut s.status.services {
        if st.state == ServiceState::Pending {
            st.state = ServiceState::Skipped;
        }
    }
}

fn fail(ctx: &WorkflowContext<ReleaseWorkflow>, reason: String) -> WorkflowResult<ReleaseStatus> {
    ctx.state_mut(|s| {
        s.status.state = ReleaseState::Failed;
        s.status.reason = Some(reason.clone());
    });
    Err(ApplicationFailure::builder(reason)
        .type_name(RELEASE_FAILED.to_owned())
        .non_retryable(true)
        .build()
        .into())
}

/// The shared migration: retried a few times (a database restart), then the release stops.
fn migrate_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(600))
        .heartbeat_timeout(Duration::from_secs(60))
        .retry_policy(
            TemporalRetryPolicy::builder()
                .maximum_attempts(3)
                .initial_interval(Duration::from_secs(1))
                .build(),
        )
        .summary("shared migration".to_owned())
        .build()
}
