//! `cutover rollout wait ID --for approval|paused|done [--timeout D]`: for scripts that need
//! to act at a point of a rollout ("approve once it waits for approval") without polling
//! `status` themselves. The status query is asked every 300 ms; a query reads the workflow's
//! state and adds nothing to its history.

use std::time::Duration;

use anyhow::anyhow;
use cutover_workflows::status::{RolloutState, RolloutStatus, StepState};
use serde_json::json;
use tokio::time::Instant;

use super::watch::{QueryProblem, query};
use super::{connect, rollout_id};
use crate::cli::{Global, Output, WaitFor};
use crate::exit::{Failure, Outcome};

const POLL: Duration = Duration::from_millis(300);

/// Whether `status` is at `until`: `Some(true)` reached, `Some(false)` never will be (the
/// rollout ended otherwise), `None` not yet.
fn reached(status: &RolloutStatus, until: WaitFor) -> Option<bool> {
    let now = match until {
        WaitFor::Approval => status
            .steps
            .iter()
            .any(|s| s.required_approvals.is_some() && s.state == StepState::Running),
        WaitFor::Paused => status.paused.is_some(),
        WaitFor::Done => status.state == RolloutState::Succeeded,
    };
    if now {
        Some(true)
    } else if status.state.is_final() {
        Some(false)
    } else {
        None
    }
}

/// Waits (until `deadline`) for the rollout's run to close; whether it did.
async fn closed(
    connected: &cutover_client::Connected,
    id: &str,
    deadline: Option<Instant>,
) -> bool {
    let handle = connected
        .client
        .get_workflow_handle::<cutover_workflows::RolloutWorkflow>(id.to_owned());
    let result = handle.get_result(temporalio_client::WorkflowGetResultOptions::default());
    match deadline {
        Some(d) => tokio::time::timeout_at(d, result).await.is_ok(),
        None => {
            let _ = result.await;
            true
        }
    }
}

fn name(until: WaitFor) -> &'static str {
    match until {
        WaitFor::Approval => "waiting for approval",
        WaitFor::Paused => "paused",
        WaitFor::Done => "succeeded",
    }
}

pub(crate) async fn wait(
    global: &Global,
    id: &str,
    until: WaitFor,
    timeout: Option<Duration>,
    output: Output,
) -> Outcome {
    let id = rollout_id(id)?;
    let connected = connect(global).await?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut last_problem = String::new();
    loop {
        match query(&connected, &id, Duration::from_secs(5)).await {
            // The state is final before the run closes (its lock and ledger record come last):
            // a script told "done" must be able to start the next rollout at once.
            Ok(status) => {
                let settled = !status.state.is_final() || closed(&connected, &id, deadline).await;
                match reached(&status, until).filter(|_| settled) {
                    Some(true) => {
                        let step = status.current_step.clone();
                        match output {
                            Output::Json => println!(
                                "{}",
                                json!({"id": id, "reached": name(until), "state": status.state.as_str(), "step": step})
                            ),
                            Output::Human => println!(
                                "{id} is {}{}",
                                name(until),
                                step.map(|s| format!(" (step `{s}`)")).unwrap_or_default()
                            ),
                        }
                        return Ok(());
                    }
                    Some(false) => {
                        return Err(Failure::Failed(anyhow!(
                            "{id} ended {} without being {}{}",
                            status.state.as_str(),
                            name(until),
                            status.reason.map(|r| format!(": {r}")).unwrap_or_default()
                        )));
                    }
                    None => {}
                }
            }
            Err(QueryProblem::NotFound) => {
                return Err(Failure::Failed(anyhow!("no rollout with ID {id}")));
            }
            Err(QueryProblem::NoAnswer(why)) => last_problem = why,
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let why = if last_problem.is_empty() {
                String::new()
            } else {
                format!(" (last problem: {last_problem})")
            };
            return Err(Failure::Failed(anyhow!(
                "{id} was not {} within {}{why}",
                name(until),
                humantime::format_duration(timeout.unwrap_or_default())
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}
