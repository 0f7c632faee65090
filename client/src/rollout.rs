//! Starting a rollout: the one code path every trigger goes through.

use cutover_workflows::plan::Plan;
use cutover_workflows::{RolloutWorkflow, search_attributes as sa};
use serde_json::json;
use temporalio_client::{Client, NamespacedClient, tonic};
use temporalio_common::protos::temporal::api::common::v1::{
    Memo as ProtoMemo, Payload, Payloads, WorkflowType,
};
use temporalio_common::protos::temporal::api::enums::v1::{
    TaskQueueKind, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
};
use temporalio_common::protos::temporal::api::sdk::v1::UserMetadata;
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest;
use temporalio_common::search_attributes::{SearchAttributeKey, SearchAttributes};

/// A rollout that was started.
#[derive(Clone, Debug)]
pub struct Started {
    /// `rollout/<service>/<environment>`.
    pub workflow_id: String,
    /// The run started.
    pub run_id: String,
}

/// Why a rollout did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A rollout of the same service and environment is running.
    #[error(
        "a rollout of this service and environment is already running: {workflow_id} (run {run_id})\n  watch it with `cutover rollout watch {workflow_id}`, or cancel it with `cutover rollout cancel {workflow_id}`"
    )]
    AlreadyRunning {
        /// Its workflow ID.
        workflow_id: String,
        /// Its run ID, when the server said.
        run_id: String,
    },
    /// The namespace lacks Cutover's search attributes.
    #[error(
        "the Temporal namespace does not define Cutover's search attributes\n  create them once with: temporal operator search-attribute create --name CutoverService --type Keyword --name CutoverEnvironment --type Keyword --name CutoverVersion --type Keyword"
    )]
    SearchAttributesMissing,
    /// Anything else the server said.
    #[error("starting the rollout failed: {0}")]
    Server(String),
}

/// The search attribute keys set on every rollout.
pub const SERVICE_KEY: SearchAttributeKey<String> = SearchAttributeKey::keyword(sa::SERVICE);
/// See [`SERVICE_KEY`].
pub const ENVIRONMENT_KEY: SearchAttributeKey<String> =
    SearchAttributeKey::keyword(sa::ENVIRONMENT);
/// See [`SERVICE_KEY`].
pub const VERSION_KEY: SearchAttributeKey<String> = SearchAttributeKey::keyword(sa::VERSION);

/// Starts `plan` as `RolloutWorkflow` on `task_queue`. Refuses when a rollout of the same
/// service and environment is running; a finished one may be followed by a new one.
///
/// `request_id` makes the start idempotent on the server: a second start with the same
/// request ID, while the first run is open, returns that run instead of starting another —
/// which is how two webhook receivers given the same delivery start one run. `None` uses a
/// fresh ID (a person running `cutover rollout start` twice gets the refusal).
///
/// The request is built here rather than through the SDK's `start_workflow`, whose 1.1 API
/// does not take a request ID; payloads use Temporal's standard `json/plain` encoding, which
/// the worker's SDK reads like any other.
///
/// # Errors
///
/// [`StartError::AlreadyRunning`] naming the running rollout, and the server's other refusals.
pub async fn start_rollout(
    client: &Client,
    plan: &Plan,
    task_queue: &str,
    request_id: Option<&str>,
) -> Result<Started, StartError> {
    let workflow_id = plan.workflow_id();
    let mut memo = vec![
        ("service", json!(plan.service)),
        ("environment", json!(plan.environment)),
        ("version", json!(plan.version)),
        ("steps", json!(plan.steps.len())),
    ];
    if let Some(trigger) = &plan.trigger {
        memo.push(("trigger", json!(trigger.kind.as_str())));
        if let Some(delivery) = &trigger.delivery {
            memo.push((DELIVERY_MEMO, json!(delivery)));
        }
    }
    let search_attributes = SearchAttributes::new([
        SERVICE_KEY.value_set(plan.service.clone()),
        ENVIRONMENT_KEY.value_set(plan.environment.clone()),
        VERSION_KEY.value_set(plan.version.clone()),
    ])
    .into_proto();
    let request = StartWorkflowExecutionRequest {
        namespace: client.namespace(),
        workflow_id: workflow_id.clone(),
        workflow_type: Some(workflow_type(RolloutWorkflow::name())),
        task_queue: Some(normal_queue(task_queue)),
        input: Some(json_input(&json!(plan))),
        identity: client.identity(),
        request_id: request_id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned),
        workflow_id_reuse_policy: WorkflowIdReusePolicy::AllowDuplicate as i32,
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::Fail as i32,
        memo: Some(ProtoMemo {
            fields: memo
                .into_iter()
                .map(|(k, v)| (k.to_owned(), json_payload(&v)))
                .collect(),
        }),
        search_attributes: Some(search_attributes),
        header: crate::telemetry::trace_header(),
        user_metadata: Some(UserMetadata {
            summary: Some(json_payload(&json!(format!(
                "{} {} → {}",
                plan.service, plan.version, plan.environment
            )))),
            details: None,
        }),
        ..Default::default()
    };
    let mut service = client.connection().workflow_service();
    match service
        .start_workflow_execution(tonic::Request::new(request))
        .await
    {
        Ok(resp) => Ok(Started {
            workflow_id,
            run_id: resp.into_inner().run_id,
        }),
        Err(status) if status.code() == tonic::Code::AlreadyExists => {
            Err(StartError::AlreadyRunning {
                workflow_id,
                run_id: running_run_id(status.message()),
            })
        }
        Err(status) => {
            let text = status.message().to_owned();
            if text.contains("search attribute")
                && (text.contains("not defined") || text.contains("no mapping defined"))
            {
                Err(StartError::SearchAttributesMissing)
            } else {
                Err(StartError::Server(format!("{:?}: {text}", status.code())))
            }
        }
    }
}

/// A workflow type by name.
pub(crate) fn workflow_type(name: &str) -> WorkflowType {
    WorkflowType {
        name: name.to_owned(),
    }
}

/// A normal (not sticky) task queue.
pub(crate) fn normal_queue(name: &str) -> TaskQueue {
    TaskQueue {
        name: name.to_owned(),
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    }
}

/// One JSON argument.
pub(crate) fn json_input(value: &serde_json::Value) -> Payloads {
    Payloads {
        payloads: vec![json_payload(value)],
    }
}

/// A payload in Temporal's standard JSON encoding.
pub(crate) fn json_payload(value: &serde_json::Value) -> Payload {
    Payload {
        metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
        data: serde_json::to_vec(value).unwrap_or_default(),
        ..Default::default()
    }
}

/// The memo key holding a webhook-started rollout's `<provider>:<delivery ID>`, so the
/// delivery behind a run can be seen in the UI and `temporal workflow describe`.
pub const DELIVERY_MEMO: &str = "delivery";

/// The server names the running run in its message ("... RunId: <id>"); take it from there.
fn running_run_id(message: &str) -> String {
    message
        .rsplit_once("RunId: ")
        .map(|(_, rest)| rest.trim_end_matches(['.', ' ']).to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Starts a DR drill of `plan` as `DrillWorkflow` on `task_queue`, under the ID
/// `drill/<service>/<environment>/<drill>`; refused while the same drill runs.
///
/// # Errors
///
/// [`StartError::AlreadyRunning`], and the server's other refusals.
pub async fn start_drill(
    client: &Client,
    plan: &cutover_workflows::drill::DrillPlan,
    task_queue: &str,
) -> Result<Started, StartError> {
    use cutover_workflows::drill::DrillWorkflow;
    start_one(
        client,
        DrillWorkflow::run,
        plan.clone().into(),
        task_queue,
        plan.workflow_id(),
    )
    .await
}

/// Starts `workflow` under `workflow_id` unless a run of that ID is open (then
/// [`StartError::AlreadyRunning`] names it): one drill, or one release, at a time.
pub(crate) async fn start_one<W>(
    client: &Client,
    workflow: W,
    input: W::Input,
    task_queue: &str,
    workflow_id: String,
) -> Result<Started, StartError>
where
    W: temporalio_common::HasWorkflowDefinition,
    W::Input: Send,
{
    let options =
        temporalio_client::WorkflowStartOptions::new(task_queue.to_owned(), workflow_id.clone())
            .id_reuse_policy(temporalio_client::WorkflowIdReusePolicy::AllowDuplicate)
            .id_conflict_policy(temporalio_client::WorkflowIdConflictPolicy::Fail)
            .build();
    match client.start_workflow(workflow, input, options).await {
        Ok(handle) => Ok(Started {
            workflow_id,
            run_id: handle.run_id().unwrap_or_default().to_owned(),
        }),
        Err(temporalio_client::errors::WorkflowStartError::AlreadyStarted { run_id, source }) => {
            Err(StartError::AlreadyRunning {
                workflow_id,
                run_id: run_id.unwrap_or_else(|| running_run_id(source.message())),
            })
        }
        Err(e) => Err(StartError::Server(e.to_string())),
    }
}

/// The run of `workflow_id` that webhook delivery `tag` (`<provider>:<delivery ID>`) started,
/// if any — found by the delivery in each run's memo. How a receiver that stopped between
/// claiming a delivery and recording its start learns whether it did start it.
///
/// # Errors
///
/// Temporal could not be asked (the answer is unknown, not "no").
pub async fn run_started_by(
    client: &Client,
    workflow_id: &str,
    tag: &str,
) -> Result<Option<String>, temporalio_client::errors::ClientError> {
    use futures::StreamExt;
    let query = format!("WorkflowId = '{}'", workflow_id.replace('\'', ""));
    let mut runs = client.list_workflows(
        query,
        temporalio_client::WorkflowListOptions::builder()
            .limit(1000)
            .build(),
    );
    while let Some(run) = runs.next().await {
        let run = run?;
        let delivery = run
            .raw()
            .memo
            .as_ref()
            .and_then(|m| m.fields.get(DELIVERY_MEMO))
            .and_then(|p| serde_json::from_slice::<String>(&p.data).ok());
        if delivery.as_deref() == Some(tag) {
            return Ok(Some(run.run_id().to_owned()));
        }
    }
    Ok(None)
}
