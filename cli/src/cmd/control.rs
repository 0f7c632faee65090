//! `cutover rollout approve|pause|resume|promote`: people steering a running rollout.
//!
//! `approve` and `promote` are Temporal updates: the workflow validates them and the command
//! prints its answer, or its reason for refusing (exit 1). `pause` and `resume` are signals.

use anyhow::anyhow;
use cutover_workflows::RolloutWorkflow;
use cutover_workflows::contracts::AbortRequest;
use cutover_workflows::control::{ApproveRequest, PauseRequest, PromoteRequest, ResumeRequest};
use temporalio_client::errors::{WorkflowInteractionError, WorkflowUpdateError};
use temporalio_client::{WorkflowExecuteUpdateOptions, WorkflowSignalOptions};

use super::rollout_handle;
use crate::cli::Global;
use crate::exit::{Failure, Outcome};

pub(crate) async fn approve(
    global: &Global,
    id: &str,
    approver: String,
    comment: Option<String>,
) -> Outcome {
    let (id, handle) = rollout_handle(global, id).await?;
    let answer = handle
        .execute_update(
            RolloutWorkflow::approve,
            ApproveRequest {
                approver: approver.clone(),
                comment,
                assertion: None,
            },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .map_err(|e| refused(&id, "approval", e))?;
    if answer.counted {
        println!(
            "{approver} approved step `{}` of {id} ({} of {} approvals)",
            answer.step, answer.approvals, answer.required
        );
    } else {
        println!(
            "{approver} had already approved step `{}` of {id}; still {} of {} approvals",
            answer.step, answer.approvals, answer.required
        );
    }
    Ok(())
}

pub(crate) async fn promote(global: &Global, id: &str, by: String, full: bool) -> Outcome {
    let (id, handle) = rollout_handle(global, id).await?;
    let answer = handle
        .execute_update(
            RolloutWorkflow::promote,
            PromoteRequest {
                by,
                full,
                assertion: None,
            },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .map_err(|e| refused(&id, "promotion", e))?;
    if full {
        println!(
            "promoted {id}: step `{}` skips to the end of its canary (approvals still wait)",
            answer.step
        );
    } else {
        println!(
            "promoted {id}: step `{}` goes on to its next gate",
            answer.step
        );
    }
    Ok(())
}

pub(crate) async fn pause(global: &Global, id: &str, by: String, reason: String) -> Outcome {
    let (id, handle) = rollout_handle(global, id).await?;
    handle
        .signal(
            RolloutWorkflow::pause,
            PauseRequest {
                by,
                reason,
                assertion: None,
            },
            WorkflowSignalOptions::default(),
        )
        .await
        .map_err(|e| signal_failed(&id, e))?;
    println!(
        "pause requested for {id}: it stops before its next step; resume with `cutover rollout resume {id}`"
    );
    Ok(())
}

pub(crate) async fn resume(global: &Global, id: &str, by: String) -> Outcome {
    let (id, handle) = rollout_handle(global, id).await?;
    handle
        .signal(
            RolloutWorkflow::resume,
            ResumeRequest {
                by,
                assertion: None,
            },
            WorkflowSignalOptions::default(),
        )
        .await
        .map_err(|e| signal_failed(&id, e))?;
    println!("resume requested for {id}");
    Ok(())
}

pub(crate) async fn abort(global: &Global, id: &str, by: String, reason: String) -> Outcome {
    let (id, handle) = rollout_handle(global, id).await?;
    handle
        .signal(
            RolloutWorkflow::abort,
            AbortRequest {
                by,
                reason,
                assertion: None,
            },
            WorkflowSignalOptions::default(),
        )
        .await
        .map_err(|e| signal_failed(&id, e))?;
    println!(
        "abort requested for {id}: it stops at its next checkpoint and rolls back; follow it with `cutover rollout watch {id}`"
    );
    Ok(())
}

pub(crate) async fn retry(global: &Global, id: &str, by: String) -> Outcome {
    let (id, handle) = rollout_handle(global, id).await?;
    let step = handle
        .execute_update(
            RolloutWorkflow::retry,
            ResumeRequest {
                by,
                assertion: None,
            },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .map_err(|e| refused(&id, "retry", e))?;
    println!("retrying step `{step}` of {id}");
    Ok(())
}

/// Any action through the `control` update (`refuse` has no update of its own).
pub(crate) async fn control(
    global: &Global,
    id: &str,
    action: cutover_workflows::guard::Action,
    by: String,
    reason: Option<String>,
    full: bool,
    output: crate::cli::Output,
) -> Outcome {
    let (id, handle) = rollout_handle(global, id).await?;
    let answer = handle
        .execute_update(
            RolloutWorkflow::control,
            cutover_workflows::control::ControlRequest {
                action,
                by,
                reason,
                full,
                assertion: None,
            },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .map_err(|e| refused(&id, action.as_str(), e))?;
    if output == crate::cli::Output::Json {
        let mut json = serde_json::to_value(&answer).unwrap_or_default();
        json["id"] = id.clone().into();
        println!("{json}");
        return if answer.accepted {
            Ok(())
        } else {
            Err(Failure::FailedReported)
        };
    }
    if !answer.accepted {
        return Err(Failure::Failed(anyhow!(
            "{} refused: {}",
            action.as_str(),
            answer.message
        )));
    }
    println!("{}: {}", answer.by, answer.message);
    Ok(())
}

/// The workflow's reason for refusing, without the transport's wrapping.
fn refused(id: &str, what: &str, e: WorkflowUpdateError) -> Failure {
    match e {
        WorkflowUpdateError::NotFound(s) if s.message().contains("already completed") => {
            Failure::Failed(anyhow!("{what} refused: rollout {id} has already ended"))
        }
        WorkflowUpdateError::NotFound(_) => Failure::Failed(anyhow!("no rollout with ID {id}")),
        WorkflowUpdateError::Failed(f) => Failure::Failed(anyhow!("{what} refused: {}", f.message)),
        other => Failure::Failed(anyhow!("{what} of {id} failed: {other}")),
    }
}

fn signal_failed(id: &str, e: WorkflowInteractionError) -> Failure {
    match e {
        WorkflowInteractionError::NotFound(_) => {
            Failure::Failed(anyhow!("no running rollout with ID {id}"))
        }
        other => Failure::Failed(anyhow!("signalling {id} failed: {other}")),
    }
}
