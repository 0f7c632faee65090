//! Releases of several services: starting `ReleaseWorkflow` and reading its status.

use cutover_workflows::release::{ReleasePlan, ReleaseStatus, ReleaseWorkflow};
use temporalio_client::{Client, WorkflowQueryOptions};

use crate::{StartError, Started};

/// Starts `plan` as `ReleaseWorkflow` on `task_queue` under `release/<name>/<environment>`;
/// refused while the same release runs (each service's rollout also refuses to run twice).
///
/// # Errors
///
/// [`StartError::AlreadyRunning`], and the server's other refusals.
pub async fn start_release(
    client: &Client,
    plan: &ReleasePlan,
    task_queue: &str,
) -> Result<Started, StartError> {
    crate::rollout::start_one(
        client,
        ReleaseWorkflow::run,
        plan.clone().into(),
        task_queue,
        plan.workflow_id(),
    )
    .await
}

/// The release's status (from its latest run, running or ended).
///
/// # Errors
///
/// No such release, or Temporal could not be asked.
pub async fn release_status(
    client: &Client,
    workflow_id: &str,
) -> Result<ReleaseStatus, temporalio_client::errors::WorkflowQueryError> {
    client
        .get_workflow_handle::<ReleaseWorkflow>(workflow_id.to_owned())
        .query(ReleaseWorkflow::status, (), WorkflowQueryOptions::default())
        .await
}
