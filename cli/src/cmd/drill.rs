//! `cutover drill validate|run`.

use std::path::Path;

use anyhow::anyhow;
use cutover_workflows::drill::{DrillPlan, DrillStatus, DrillWorkflow, parse_drill};
use temporalio_client::WorkflowGetResultOptions;
use temporalio_client::errors::WorkflowGetResultError;

use super::{connect, read_text};
use crate::cli::{Global, Output};
use crate::exit::{Failure, Outcome};

pub(crate) fn load(path: &Path) -> Result<DrillPlan, Failure> {
    let shown = path.display().to_string();
    let text = read_text(path, "drill plan", 64 * 1024)?;
    parse_drill(&text).map_err(|problems| super::reported(&shown, &problems))
}

/// Reports every problem in a drill plan, or a one-line summary of a good one.
pub(crate) fn validate(path: &Path) -> Outcome {
    let plan = load(path)?;
    println!(
        "{}: ok — {} of {} in {}, objectives RTO {} and RPO {} marker{}",
        path.display(),
        plan.mode.as_str(),
        plan.service,
        plan.environment,
        humantime::format_duration(plan.objectives.rto),
        plan.objectives.rpo_markers,
        if plan.objectives.rpo_markers == 1 {
            ""
        } else {
            "s"
        }
    );
    Ok(())
}

/// Starts the drill; with `wait`, follows it to the end.
pub(crate) async fn run(global: &Global, path: &Path, wait: bool, output: Output) -> Outcome {
    let plan = load(path)?;
    let connected = connect(global).await?;
    let started = cutover_client::start_drill(&connected.client, &plan, &global.task_queue)
        .await
        .map_err(|e| Failure::Failed(e.into()))?;
    let json = output == Output::Json;
    if json {
        println!(
            "{}",
            serde_json::json!({"workflow_id": started.workflow_id, "run_id": started.run_id})
        );
    } else {
        println!("started {} (run {})", started.workflow_id, started.run_id);
    }
    if !wait {
        return Ok(());
    }
    let handle = connected
        .client
        .get_workflow_handle::<DrillWorkflow>(started.workflow_id.clone());
    match handle.get_result(WorkflowGetResultOptions::default()).await {
        Ok(status) => {
            if json {
                println!("{}", serde_json::to_string(&status).unwrap_or_default());
            } else {
                print_status(&status);
            }
            if status.state == cutover_workflows::drill::DrillState::Passed {
                Ok(())
            } else {
                Err(Failure::FailedReported)
            }
        }
        Err(WorkflowGetResultError::Failed(f)) => Err(Failure::Failed(anyhow!(
            "drill {} failed: {}",
            started.workflow_id,
            f.failure().message
        ))),
        Err(e) => Err(Failure::Failed(anyhow!(
            "drill {}: {e}",
            started.workflow_id
        ))),
    }
}

fn print_status(s: &DrillStatus) {
    for p in &s.phases {
        let took = match (p.started_at, p.finished_at) {
            (Some(a), Some(b)) => format!("{:>7} ms", (b - a).num_milliseconds()),
            _ => "        -".to_owned(),
        };
        println!(
            "  {:<10} {:<9} {took}  {}",
            p.name,
            p.state,
            p.note.as_deref().unwrap_or_default()
        );
    }
    println!(
        "drill {}: {} — RTO {} ms{}, RPO {} markers ({} bytes) of {} written{}",
        s.workflow_id,
        s.state,
        s.rto_ms.unwrap_or_default(),
        s.database_rto_ms
            .map(|d| format!(" (database alone {d} ms)"))
            .unwrap_or_default(),
        s.rpo_markers.unwrap_or_default(),
        s.rpo_bytes.unwrap_or_default(),
        s.markers,
        s.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
}
