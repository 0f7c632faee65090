//! The queue's activities (`queue.*`): a queued release aborts the running rollout (supersede),
//! waits for it to end, and starts itself, through the worker's own Temporal client.

use std::sync::Arc;

use cutover_workflows::RolloutWorkflow;
use cutover_workflows::contracts::AbortRequest;
use cutover_workflows::queue::contracts::{AbortInput, AwaitInput, StartInput, StartOutcome};
use temporalio_client::errors::WorkflowInteractionError;
use temporalio_client::{
    WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowGetResultOptions,
    WorkflowSignalOptions,
};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::{StepFailure, acting};

/// The queue's activities.
pub struct QueueActivityImpls {
    client: temporalio_client::Client,
}

impl QueueActivityImpls {
    /// With the worker's own Temporal client.
    pub fn new(client: temporalio_client::Client) -> Self {
        Self { client }
    }
}

#[activities]
impl QueueActivityImpls {
    /// `queue.abort_running`: the `abort` signal, as a person's would be (the plan's
    /// `controls.abort` applies: a rollout that only named people may abort refuses it, and
    /// the release then waits for it to end). Ended or gone already is success.
    #[activity(definition = cutover_workflows::queue::contracts::AbortRunning)]
    pub async fn abort_running(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AbortInput,
    ) -> Result<(), ActivityError> {
        let work = async {
            let handle = self
                .client
                .get_workflow_handle::<RolloutWorkflow>(input.workflow_id.clone());
            let request = AbortRequest {
                by: input.by.clone(),
                reason: input.reason.clone(),
                assertion: None,
            };
            match handle
                .signal(
                    RolloutWorkflow::abort,
                    request,
                    WorkflowSignalOptions::default(),
                )
                .await
            {
                Ok(()) | Err(WorkflowInteractionError::NotFound(_)) => Ok(()),
                Err(e) => Err(StepFailure::CheckFailed(format!(
                    "aborting {}: {e}",
                    input.workflow_id
                ))),
            }
        };
        acting(&ctx, work).await
    }

    /// `queue.await_end`: returns once the rollout's latest run is closed (or there is none),
    /// long-polling its result and heartbeating meanwhile.
    #[activity(definition = cutover_workflows::queue::contracts::AwaitEnd)]
    pub async fn await_end(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AwaitInput,
    ) -> Result<(), ActivityError> {
        let work = async {
            let handle = self
                .client
                .get_workflow_handle::<RolloutWorkflow>(input.workflow_id.clone());
            loop {
                match handle.describe(WorkflowDescribeOptions::default()).await {
                    Ok(d) if d.status() == WorkflowExecutionStatus::Running => {}
                    Ok(_) | Err(WorkflowInteractionError::NotFound(_)) => return Ok(()),
                    Err(e) => {
                        return Err(StepFailure::CheckFailed(format!(
                            "asking about {}: {e}",
                            input.workflow_id
                        )));
                    }
                }
                // Whatever the result (a failure is an end too), look again: the run that
                // ended may not be the latest.
                let _ = handle.get_result(WorkflowGetResultOptions::default()).await;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        };
        acting(&ctx, work).await
    }

    /// `queue.start`: the release's rollout, with the queue entry's request ID.
    #[activity(definition = cutover_workflows::queue::contracts::Start)]
    pub async fn start(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: StartInput,
    ) -> Result<StartOutcome, ActivityError> {
        let work = async {
            match cutover_client::start_rollout(
                &self.client,
                &input.plan,
                &input.task_queue,
                Some(&input.request_id),
            )
            .await
            {
                Ok(started) => Ok(StartOutcome::Started {
                    run_id: started.run_id,
                }),
                Err(cutover_client::StartError::AlreadyRunning { run_id, .. }) => {
                    Ok(StartOutcome::Busy { run_id })
                }
                Err(e) => Err(StepFailure::CheckFailed(e.to_string())),
            }
        };
        acting(&ctx, work).await
    }
}
