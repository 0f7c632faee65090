//! `cutover rollout undo SERVICE ENVIRONMENT [--to VERSION]`: back to an earlier successful
//! release, as a rollout of its own (see [`cutover_workflows::plan::undo`]).
//!
//! The ledger says which releases succeeded; the release's own plan is the input its rollout
//! was started with (from Temporal's history), and the schema version it left is its
//! migrate steps' output (its `status`, answered by a worker replaying it).

use std::collections::BTreeMap;

use anyhow::anyhow;
use cutover_client::{Begun, begin_rollout};
use cutover_workflows::RolloutWorkflow;
use cutover_workflows::contracts::StepOutput;
use cutover_workflows::plan::{Direction, Plan, StepAction, Trigger, TriggerKind};
use temporalio_client::{
    NamespacedClient, WorkflowExecutionInfo, WorkflowHandle, WorkflowQueryOptions,
};

use super::connect;
use crate::cli::{Global, Output};
use crate::exit::{Failure, Outcome};

/// What `rollout undo` was asked.
pub(crate) struct Undo<'a> {
    pub(crate) service: &'a str,
    pub(crate) environment: &'a str,
    pub(crate) to: Option<&'a str>,
    pub(crate) ledger: Option<&'a str>,
    pub(crate) wait: bool,
}

pub(crate) async fn undo(global: &Global, ask: Undo<'_>, output: Output) -> Outcome {
    for (what, value) in [("SERVICE", ask.service), ("ENVIRONMENT", ask.environment)] {
        cutover_workflows::name::Name::parse(value)
            .map_err(|e| Failure::Input(anyhow!("{what}: {e}")))?;
    }
    let ledger = super::ledger::open(ask.ledger).await?;
    let releases = ledger
        .releases(Some(ask.service), Some(ask.environment), 200)
        .await
        .map_err(|e| Failure::Failed(e.into()))?;
    let succeeded: Vec<_> = releases
        .iter()
        .filter(|r| r.outcome == "succeeded")
        .collect();
    let Some(current) = succeeded.first() else {
        return Err(Failure::Failed(anyhow!(
            "the ledger has no successful release of {} in {}: nothing to go back from",
            ask.service,
            ask.environment
        )));
    };
    let target = match ask.to {
        Some(v) if v == current.version => {
            return Err(Failure::Failed(anyhow!(
                "{v} is the release {} in {} runs now (its latest successful one)",
                ask.service,
                ask.environment
            )));
        }
        Some(v) => succeeded.iter().find(|r| r.version == v).ok_or_else(|| {
            let known: Vec<&str> = succeeded.iter().map(|r| r.version.as_str()).take(10).collect();
            Failure::Failed(anyhow!(
                "no successful release {v} of {} in {} in the ledger; successful ones, newest first: {}",
                ask.service,
                ask.environment,
                known.join(", ")
            ))
        })?,
        None => succeeded
            .iter()
            .find(|r| r.version != current.version)
            .ok_or_else(|| {
                Failure::Failed(anyhow!(
                    "{} in {} has had one successful release ({}): there is no earlier one to go back to",
                    ask.service,
                    ask.environment,
                    current.version
                ))
            })?,
    };
    let connected = connect(global).await?;
    let client = &connected.client;
    let plan: Plan = cutover_client::history::started_input(client, &target.workflow_id, &target.run_id)
        .await
        .map_err(|why| Failure::Failed(anyhow!("{why}")))?
        .ok_or_else(|| {
            Failure::Failed(anyhow!(
                "the history of release {} ({} run {}) is gone from Temporal (retention), so its plan is unknown; start its plan again with `cutover rollout start`",
                target.version,
                target.workflow_id,
                target.run_id
            ))
        })?;
    let schema = schema_left(client, &plan, &target.workflow_id, &target.run_id).await?;
    let mut undo = cutover_workflows::plan::undo::undo_plan(&plan, &schema)
        .map_err(|why| Failure::Failed(anyhow!(why)))?;
    let by = std::env::var("USER").ok().filter(|u| !u.is_empty());
    undo.trigger = Some(Trigger {
        kind: TriggerKind::Cli,
        detail: Some(format!(
            "undo of {} to {}{}",
            current.version,
            target.version,
            by.as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default()
        )),
        delivery: None,
        author: by.clone(),
    });
    let started = match begin_rollout(
        client,
        &undo,
        &global.task_queue,
        None,
        cutover_workflows::queue::OnBusy::Reject,
        by.as_deref().unwrap_or("cutover"),
    )
    .await
    .map_err(|e| Failure::Failed(e.into()))?
    {
        Begun::Started(s) => s,
        Begun::Queued { .. } => unreachable!("an undo never queues"),
    };
    let steps: Vec<&str> = undo.steps.iter().map(|s| s.name.as_str()).collect();
    if output == Output::Json {
        println!(
            "{}",
            serde_json::json!({
                "workflow_id": started.workflow_id,
                "run_id": started.run_id,
                "from": current.version,
                "to": target.version,
                "steps": steps,
            })
        );
    } else {
        println!(
            "undoing {} {} → {} in {}: started {} (run {}), steps {}",
            ask.service,
            current.version,
            target.version,
            ask.environment,
            started.workflow_id,
            started.run_id,
            steps.join(", ")
        );
    }
    if ask.wait {
        return super::watch::follow(&connected, &started.workflow_id, &global.task_queue).await;
    }
    Ok(())
}

/// The schema version each migrate step of release `run_id` left its database at, from its
/// status (a closed rollout's query is answered by a worker replaying its history).
async fn schema_left(
    client: &temporalio_client::Client,
    plan: &Plan,
    workflow_id: &str,
    run_id: &str,
) -> Result<BTreeMap<String, i64>, Failure> {
    let migrates: Vec<_> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            StepAction::Migrate(m) if !m.dry_run => Some((s.name.clone(), m.clone())),
            _ => None,
        })
        .collect();
    if migrates.is_empty() {
        return Ok(BTreeMap::new());
    }
    let info = WorkflowExecutionInfo::builder()
        .namespace(client.namespace())
        .workflow_id(workflow_id)
        .run_id(run_id.to_owned())
        .build();
    let status = WorkflowHandle::<_, RolloutWorkflow>::new(client.clone(), info)
        .query(RolloutWorkflow::status, (), WorkflowQueryOptions::default())
        .await
        .map_err(|e| {
            Failure::Failed(anyhow!(
                "asking release {workflow_id} (run {run_id}) which schema version it left: {e}; is a worker running?"
            ))
        })?;
    let mut out = BTreeMap::new();
    for (name, spec) in migrates {
        let Some(StepOutput::Migrate(m)) = status
            .steps
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.output.as_ref())
        else {
            continue;
        };
        let version = if spec.direction == Direction::Down {
            spec.target_version.unwrap_or(0)
        } else {
            m.applied
                .iter()
                .map(|a| a.version)
                .max()
                .unwrap_or(0)
                .max(m.previous_version)
        };
        out.insert(name, version);
    }
    Ok(out)
}
