//! One change at a time per service and environment: a drill and a rollout of the same service
//! never run at once (nor two drills of it).
//!
//! The lock is a workflow, `LockWorkflow`, with the ID `lock/<service>/<environment>`: Temporal
//! lets one run of an ID be open at a time, so starting it *is* taking the lock, atomically,
//! across any number of workers and starters. The holder (a rollout or a drill) takes it in its
//! first activity (`lock.acquire`) and gives it back in its last (`lock.release`, a signal that
//! ends the lock's run). A lock whose holder has ended without releasing it (terminated, timed
//! out) is taken over by the next acquirer. Workflows started before the lock existed replay
//! without it (patch `service-lock-v1`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy as TemporalRetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult,
};
use temporalio_workflow::WorkflowCancellationToken;

pub mod contracts;

use contracts::{LockActivities, LockRequest};

/// The patch that added the lock to `RolloutWorkflow` and `DrillWorkflow`.
pub const PATCH: &str = "service-lock-v1";

/// The failure type of an activity that found the lock held by another workflow.
pub const LOCKED: &str = "ServiceLocked";

/// The lock's workflow ID for a service in an environment.
pub fn lock_id(service: &str, environment: &str) -> String {
    format!("lock/{service}/{environment}")
}

/// Who holds a lock.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// `rollout` or `drill`.
    pub kind: String,
    /// The holder's workflow ID.
    pub workflow_id: String,
    /// The holder's run ID: a later run of the same ID is another holder.
    pub run_id: String,
}

/// Held until its holder signals `release`.
#[workflow]
pub struct LockWorkflow {
    holder: LockHolder,
    released: bool,
}

#[workflow_methods]
impl LockWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, holder: LockHolder) -> Self {
        Self {
            holder,
            released: false,
        }
    }

    /// Waits for the holder's release; ends with who held it.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<LockHolder> {
        let _ = ctx.wait_condition(|s| s.released).await;
        Ok(ctx.state(|s| s.holder.clone()))
    }

    /// Ends the lock, if `run_id` is its holder's (a stale release from an earlier holder is
    /// ignored).
    #[signal]
    pub fn release(&mut self, _ctx: &mut SyncWorkflowContext<Self>, run_id: String) {
        if run_id == self.holder.run_id {
            self.released = true;
        }
    }

    /// Who holds it.
    #[query]
    pub fn holder(&self, _ctx: &WorkflowContextView) -> LockHolder {
        self.holder.clone()
    }
}

/// Runs `body` holding the lock of `service` in `environment`, and gives it back after —
/// also when the workflow was cancelled while taking it (it may have been taken).
pub async fn holding<W, T>(
    ctx: &mut WorkflowContext<W>,
    kind: &str,
    service: &str,
    environment: &str,
    body: impl AsyncFnOnce(&mut WorkflowContext<W>) -> T,
) -> Result<T, NotTaken> {
    let request = request(ctx, kind, service, environment);
    let asked = ctx.workflow_time();
    match acquire(ctx, request.clone()).await {
        Ok(()) => {
            crate::observe::emit(
                ctx.is_replaying(),
                crate::observe::Event::LockWaited {
                    kind,
                    service,
                    environment,
                    waited: crate::observe::between(asked, ctx.workflow_time()),
                },
            );
            let out = body(ctx).await;
            release(ctx, request).await;
            Ok(out)
        }
        Err(NotTaken::Cancelled) => {
            release(ctx, request).await;
            Err(NotTaken::Cancelled)
        }
        Err(refused) => Err(refused),
    }
}

/// The request a workflow makes for its own service's lock.
fn request<W>(
    ctx: &WorkflowContext<W>,
    kind: &str,
    service: &str,
    environment: &str,
) -> LockRequest {
    LockRequest {
        service: service.to_owned(),
        environment: environment.to_owned(),
        holder: LockHolder {
            kind: kind.to_owned(),
            workflow_id: ctx.workflow_id().to_owned(),
            run_id: ctx.run_id().to_owned(),
        },
    }
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotTaken {
    /// The workflow was cancelled while taking it (it may have been taken: release it).
    #[error("cancelled while taking the service lock")]
    Cancelled,
    /// Held by another running workflow, or it could not be checked: the reason.
    #[error("{0}")]
    Refused(String),
}

/// Takes the lock.
async fn acquire<W>(ctx: &WorkflowContext<W>, request: LockRequest) -> Result<(), NotTaken> {
    let opts = options("lock", &request);
    ctx.execute_activity(LockActivities::acquire, request, opts)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            temporalio_common::error::ActivityExecutionError::Cancelled(_) => NotTaken::Cancelled,
            e => NotTaken::Refused(crate::activity_error::message(&e)),
        })
}

/// Gives the lock back; runs after a cancellation too (its own cancellation token). A failed
/// release is not fatal: the next acquirer takes over a lock whose holder has ended.
async fn release<W>(ctx: &WorkflowContext<W>, request: LockRequest) {
    let mut opts = options("unlock", &request);
    opts.cancellation_token = Some(WorkflowCancellationToken::new());
    let _ = ctx
        .execute_activity(LockActivities::release, request, opts)
        .await;
}

/// 30 s per attempt, 5 attempts; the summary names the lock.
fn options(what: &str, request: &LockRequest) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            TemporalRetryPolicy::builder()
                .maximum_attempts(5)
                .initial_interval(Duration::from_secs(1))
                .build(),
        )
        .summary(format!(
            "{what} {}",
            lock_id(&request.service, &request.environment)
        ))
        .build()
}
