//! Reading what Temporal kept of a run.

use temporalio_client::{Client, NamespacedClient, tonic};
use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_common::protos::temporal::api::workflowservice::v1::GetWorkflowExecutionHistoryRequest;

/// The input a run was started with (its first event's first payload, as JSON), or `None` if
/// it has none that reads as a `T`.
///
/// # Errors
/// The history could not be read: what the server said.
pub async fn started_input<T: serde::de::DeserializeOwned>(
    client: &Client,
    id: &str,
    run_id: &str,
) -> Result<Option<T>, String> {
    let request = GetWorkflowExecutionHistoryRequest {
        namespace: client.namespace(),
        execution: Some(WorkflowExecution {
            workflow_id: id.to_owned(),
            run_id: run_id.to_owned(),
        }),
        maximum_page_size: 1,
        ..Default::default()
    };
    let mut service = client.connection().workflow_service();
    let history = service
        .get_workflow_execution_history(tonic::Request::new(request))
        .await
        .map_err(|s| format!("reading {id}: {}", s.message()))?
        .into_inner();
    Ok(history
        .history
        .and_then(|h| h.events.into_iter().next())
        .and_then(|e| match e.attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a.input,
            _ => None,
        })
        .and_then(|p| p.payloads.into_iter().next())
        .and_then(|p| serde_json::from_slice(&p.data).ok()))
}
