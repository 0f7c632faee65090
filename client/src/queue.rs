//! Starting a rollout that may find its service busy: `on_busy` (see
//! [`cutover_workflows::queue`]).

use cutover_workflows::plan::Plan;
use cutover_workflows::queue::{OnBusy, QueueWorkflow, Queued, queue_id};
use serde_json::json;
use temporalio_client::{Client, NamespacedClient, tonic};
use temporalio_common::protos::temporal::api::enums::v1::{
    WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
};
use temporalio_common::protos::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest;

use crate::rollout::{StartError, Started, json_input, normal_queue, start_rollout, workflow_type};

/// What a start with `on_busy` did.
#[derive(Clone, Debug)]
pub enum Begun {
    /// The rollout started now.
    Started(Started),
    /// The release waits behind the running rollout (aborted first, with `supersede`), in
    /// the queue workflow named here; any release that waited there before is replaced.
    Queued {
        /// `queue/<service>/<environment>`.
        queue_id: String,
        /// The queue workflow's run holding this release (a newer release is another run).
        queue_run: String,
        /// The running rollout it waits for.
        behind: String,
        /// Its run.
        behind_run: String,
    },
}

/// Starts `plan`; when a rollout of its service and environment runs, does what `on_busy`
/// says: refuse ([`StartError::AlreadyRunning`]), or queue the release (replacing one that
/// waited), aborting the running rollout first with `supersede`.
///
/// # Errors
/// [`StartError`]: the refusal, or what the server said.
pub async fn begin_rollout(
    client: &Client,
    plan: &Plan,
    task_queue: &str,
    request_id: Option<&str>,
    on_busy: OnBusy,
    by: &str,
) -> Result<Begun, StartError> {
    match start_rollout(client, plan, task_queue, request_id).await {
        Ok(started) => Ok(Begun::Started(started)),
        Err(StartError::AlreadyRunning {
            workflow_id,
            run_id,
        }) if on_busy != OnBusy::Reject => {
            let (queue_id, queue_run) = enqueue(client, plan, task_queue, on_busy, by).await?;
            Ok(Begun::Queued {
                queue_id,
                queue_run,
                behind: workflow_id,
                behind_run: run_id,
            })
        }
        Err(e) => Err(e),
    }
}

/// Starts the queue workflow for `plan`, terminating a waiting one: only the newest waits.
async fn enqueue(
    client: &Client,
    plan: &Plan,
    task_queue: &str,
    on_busy: OnBusy,
    by: &str,
) -> Result<(String, String), StartError> {
    let id = queue_id(&plan.service, &plan.environment);
    let queued = Queued {
        plan: plan.clone(),
        on_busy,
        task_queue: task_queue.to_owned(),
        by: by.to_owned(),
    };
    let request = StartWorkflowExecutionRequest {
        namespace: client.namespace(),
        workflow_id: id.clone(),
        workflow_type: Some(workflow_type(QueueWorkflow::name())),
        task_queue: Some(normal_queue(task_queue)),
        input: Some(json_input(&json!(queued))),
        identity: client.identity(),
        request_id: uuid::Uuid::new_v4().to_string(),
        workflow_id_reuse_policy: WorkflowIdReusePolicy::AllowDuplicate as i32,
        header: crate::telemetry::trace_header(),
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::TerminateExisting as i32,
        ..Default::default()
    };
    let mut service = client.connection().workflow_service();
    let started = service
        .start_workflow_execution(tonic::Request::new(request))
        .await
        .map_err(|s| StartError::Server(format!("queueing the release: {}", s.message())))?;
    Ok((id, started.into_inner().run_id))
}
