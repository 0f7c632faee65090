//! The service lock (`cutover_workflows::lock`): taking it is starting `LockWorkflow` under
//! `lock/<service>/<environment>`; Temporal refuses a second open run of that ID, so two
//! holders cannot both succeed, whichever workers they run on.
//!
//! Here rather than in the activities so that the webhook receiver can say who holds a lock
//! before it starts a rollout. Taking and releasing are safe to repeat: a holder that already
//! holds the lock is told so, and releasing a lock that is gone (or held by another) changes
//! nothing.

use cutover_workflows::lock::contracts::LockRequest;
use cutover_workflows::lock::{LockHolder, LockWorkflow, lock_id};
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{
    Client, NamespacedClient, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowSignalOptions, WorkflowStartOptions, tonic,
};
use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_common::protos::temporal::api::enums::v1::WorkflowExecutionStatus;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeWorkflowExecutionRequest, TerminateWorkflowExecutionRequest,
};

/// Why the lock was not taken or given back.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another running workflow holds it.
    #[error("{0}")]
    Held(String),
    /// Temporal could not be asked (retry).
    #[error("the lock could not be checked: {0}")]
    Unavailable(String),
}

/// Takes the lock for `input.holder`, on `task_queue` (the lock workflow runs on the holder's
/// workers). Returns what happened.
pub async fn acquire(
    client: &Client,
    task_queue: &str,
    input: &LockRequest,
) -> Result<String, LockError> {
    let id = lock_id(&input.service, &input.environment);
    // A stale lock is taken over at most twice before giving up (each takeover is a race
    // another acquirer may win).
    for _ in 0..3 {
        let options = WorkflowStartOptions::new(task_queue.to_owned(), id.clone())
            .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
            .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
            .build();
        let run_id = match client
            .start_workflow(LockWorkflow::run, input.holder.clone(), options)
            .await
        {
            Ok(_) => return Ok(format!("took {id}")),
            Err(WorkflowStartError::AlreadyStarted { run_id, .. }) => run_id.unwrap_or_default(),
            Err(e) => return Err(unavailable(&format!("starting {id}: {e}"))),
        };
        let holder = holder_of(client, &id, &run_id).await?;
        if holder.run_id == input.holder.run_id {
            return Ok(format!("already held {id}"));
        }
        if running(client, &holder.workflow_id, &holder.run_id).await? {
            return Err(LockError::Held(format!(
                "{}/{} is busy: {} {} (run {}) holds {id}; try again when it has ended",
                input.service, input.environment, holder.kind, holder.workflow_id, holder.run_id
            )));
        }
        // Its holder ended without releasing it (terminated, timed out): take it over.
        let request = TerminateWorkflowExecutionRequest {
            namespace: client.namespace(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: id.clone(),
                run_id: run_id.clone(),
            }),
            reason: format!(
                "its holder {} ended without releasing it; taken over by {}",
                holder.workflow_id, input.holder.workflow_id
            ),
            identity: client.identity(),
            ..Default::default()
        };
        let mut service = client.connection().workflow_service();
        match service
            .terminate_workflow_execution(tonic::Request::new(request))
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(unavailable(&format!("taking over {id}: {}", s.message()))),
        }
    }
    Err(unavailable(&format!(
        "{id} changed hands three times while taking it over"
    )))
}

/// Ends the lock if `input.holder` holds it, and returns once it has ended.
pub async fn release(client: &Client, input: &LockRequest) -> Result<(), LockError> {
    let id = lock_id(&input.service, &input.environment);
    let handle = client.get_workflow_handle::<LockWorkflow>(id.clone());
    match handle
        .signal(
            LockWorkflow::release,
            input.holder.run_id.clone(),
            WorkflowSignalOptions::default(),
        )
        .await
    {
        Ok(()) => {}
        Err(temporalio_client::errors::WorkflowInteractionError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(unavailable(&format!("releasing {id}: {e}"))),
    }
    // Released means the lock run has ended, so that whoever comes next finds it free.
    crate::poll::try_until(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(20),
        || async {
            Ok(
                match holder(client, &input.service, &input.environment).await? {
                    Some(h) if h.run_id == input.holder.run_id => None,
                    _ => Some(()),
                },
            )
        },
        || unavailable(&format!("{id} did not end within 10 s of its release")),
    )
    .await
}

fn unavailable(text: &str) -> LockError {
    LockError::Unavailable(text.to_owned())
}

/// Who holds the lock of `service` in `environment`, if anyone (a lock whose holder has ended
/// counts as free: the next acquirer takes it over).
pub async fn holder(
    client: &Client,
    service: &str,
    environment: &str,
) -> Result<Option<LockHolder>, LockError> {
    let id = lock_id(service, environment);
    let request = DescribeWorkflowExecutionRequest {
        namespace: client.namespace(),
        execution: Some(WorkflowExecution {
            workflow_id: id.clone(),
            run_id: String::new(),
        }),
    };
    let mut service_client = client.connection().workflow_service();
    let info = match service_client
        .describe_workflow_execution(tonic::Request::new(request))
        .await
    {
        Ok(r) => r.into_inner().workflow_execution_info,
        Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
        Err(s) => return Err(unavailable(&format!("describing {id}: {}", s.message()))),
    };
    let Some(info) = info.filter(|i| i.status == WorkflowExecutionStatus::Running as i32) else {
        return Ok(None);
    };
    let run_id = info.execution.map(|e| e.run_id).unwrap_or_default();
    let holder = holder_of(client, &id, &run_id).await?;
    Ok(running(client, &holder.workflow_id, &holder.run_id)
        .await?
        .then_some(holder))
}

/// The holder a lock run was started for: the input of its first event.
pub async fn holder_of(client: &Client, id: &str, run_id: &str) -> Result<LockHolder, LockError> {
    crate::history::started_input(client, id, run_id)
        .await
        .map_err(|why| unavailable(&why))?
        .ok_or_else(|| unavailable(&format!("{id} does not name its holder")))
}

/// Whether that run is still open.
pub async fn running(client: &Client, workflow_id: &str, run_id: &str) -> Result<bool, LockError> {
    let request = DescribeWorkflowExecutionRequest {
        namespace: client.namespace(),
        execution: Some(WorkflowExecution {
            workflow_id: workflow_id.to_owned(),
            run_id: run_id.to_owned(),
        }),
    };
    let mut service = client.connection().workflow_service();
    match service
        .describe_workflow_execution(tonic::Request::new(request))
        .await
    {
        Ok(r) => Ok(r
            .into_inner()
            .workflow_execution_info
            .is_some_and(|i| i.status == WorkflowExecutionStatus::Running as i32)),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
        Err(s) => Err(unavailable(&format!(
            "describing {workflow_id}: {}",
            s.message()
        ))),
    }
}
