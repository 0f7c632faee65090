//! Starting a rollout: the one code path every trigger goes through.

use cutover_workflows::plan::Plan;
use cutover_workflows::{RolloutWorkflow, search_attributes as sa};
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions,
};
use temporalio_common::MemoValues;
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
/// `request_id`, when given, makes the start idempotent: two starts with the same request ID
/// start one run (used by triggers that may be delivered twice).
///
/// # Errors
///
/// [`StartError::AlreadyRunning`] naming the running rollout, and the server's other refusals.
pub async fn start_rollout(
    client: &Client,
    plan: &Plan,
    task_queue: &str,
) -> Result<Started, StartError> {
    let workflow_id = plan.workflow_id();
    let mut memo = MemoValues::new();
    memo.insert("service", plan.service.clone())
        .insert("environment", plan.environment.clone())
        .insert("version", plan.version.clone())
        .insert("steps", plan.steps.len() as u64);
    if let Some(trigger) = &plan.trigger {
        memo.insert("trigger", trigger.kind.clone());
        if let Some(delivery) = &trigger.delivery {
            memo.insert(DELIVERY_MEMO, delivery.clone());
        }
    }
    let options = WorkflowStartOptions::new(task_queue.to_owned(), workflow_id.clone())
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
        .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
        .search_attributes(SearchAttributes::new([
            SERVICE_KEY.value_set(plan.service.clone()),
            ENVIRONMENT_KEY.value_set(plan.environment.clone()),
            VERSION_KEY.value_set(plan.version.clone()),
        ]))
        .memo(memo)
        .static_summary(format!(
            "{} {} → {}",
            plan.service, plan.version, plan.environment
        ))
        .build();
    match client
        .start_workflow(RolloutWorkflow::run, plan.clone(), options)
        .await
    {
        Ok(handle) => Ok(Started {
            workflow_id,
            run_id: handle.run_id().unwrap_or_default().to_owned(),
        }),
        Err(WorkflowStartError::AlreadyStarted { run_id, source }) => {
            Err(StartError::AlreadyRunning {
                workflow_id,
                run_id: run_id.unwrap_or_else(|| running_run_id(source.message())),
            })
        }
        Err(e) => {
            let text = e.to_string();
            if text.contains("search attribute")
                && (text.contains("not defined") || text.contains("no mapping defined"))
            {
                Err(StartError::SearchAttributesMissing)
            } else {
                Err(StartError::Server(text))
            }
        }
    }
}

/// The memo key holding a webhook-started rollout's `<provider>:<delivery ID>`.
pub const DELIVERY_MEMO: &str = "delivery";

/// The run of `workflow_id` that is running now and the delivery that started it, if a
/// delivery did.
///
/// # Errors
///
/// The server's refusal, in words.
pub async fn running_delivery(
    client: &Client,
    workflow_id: &str,
) -> Result<(String, Option<String>), String> {
    let described = client
        .get_workflow_handle::<RolloutWorkflow>(workflow_id.to_owned())
        .describe(temporalio_client::WorkflowDescribeOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let delivery = described.memo().get::<String>(DELIVERY_MEMO).ok().flatten();
    Ok((described.run_id().to_owned(), delivery))
}

/// The server names the running run in its message ("... RunId: <id>"); take it from there.
fn running_run_id(message: &str) -> String {
    message
        .rsplit_once("RunId: ")
        .map(|(_, rest)| rest.trim_end_matches(['.', ' ']).to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}
