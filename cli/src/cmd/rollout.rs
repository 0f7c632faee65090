//! `cutover rollout start|list|cancel`.

use std::path::Path;

use anyhow::{Context, anyhow};
use cutover_client::start_rollout;
use futures::StreamExt;
use temporalio_client::{WorkflowCancelOptions, WorkflowListOptions};

use super::{connect, load_plan, rollout_handle};
use crate::cli::{Global, Output};
use crate::exit::{Failure, Outcome};
use crate::render;

/// Starts a plan; with `wait`, follows it to the end.
pub(crate) async fn start(
    global: &Global,
    plan: &Path,
    wait: bool,
    vars: &[String],
    output: Output,
) -> Outcome {
    let mut plan = load_plan(plan)?;
    cutover_workflows::plan::vars::apply_overrides(&mut plan.vars, vars)
        .map_err(|e| Failure::Input(anyhow!(e)))?;
    plan.trigger = Some(cutover_workflows::plan::Trigger {
        kind: cutover_workflows::plan::TriggerKind::Cli,
        detail: std::env::var("USER").ok().filter(|u| !u.is_empty()),
        delivery: None,
        author: std::env::var("USER").ok().filter(|u| !u.is_empty()),
    });
    let connected = connect(global).await?;
    // A refusal (e.g. a rollout of this service and environment is running) names the
    // running rollout and how to follow or cancel it.
    let started = start_rollout(&connected.client, &plan, &global.task_queue, None)
        .await
        .map_err(|e| Failure::Failed(e.into()))?;
    if output == Output::Json {
        return start_json(&connected, &started, &plan, wait).await;
    }
    println!(
        "started {} (run {}) — {} {} → {}",
        started.workflow_id, started.run_id, plan.service, plan.version, plan.environment
    );
    if wait {
        super::watch::follow(&connected, &started.workflow_id, &global.task_queue).await
    } else {
        println!(
            "  follow it:  cutover rollout watch {}",
            started.workflow_id
        );
        println!(
            "  status:     cutover rollout status {}",
            started.workflow_id
        );
        Ok(())
    }
}

/// `start --output json`: one object when started, and with `--wait` one more when it ended
/// (`outcome`, `reason`); exit 0 only if it succeeded.
async fn start_json(
    connected: &cutover_client::Connected,
    started: &cutover_client::Started,
    plan: &cutover_workflows::plan::Plan,
    wait: bool,
) -> Outcome {
    println!(
        "{}",
        serde_json::json!({
            "workflow_id": started.workflow_id,
            "run_id": started.run_id,
            "service": plan.service,
            "environment": plan.environment,
            "version": plan.version,
        })
    );
    if !wait {
        return Ok(());
    }
    let handle = connected
        .client
        .get_workflow_handle::<cutover_workflows::RolloutWorkflow>(started.workflow_id.clone());
    // The end, then the state as the rollout itself names it (`rolled_back`, not the
    // workflow's `failed`).
    let _ = handle
        .get_result(temporalio_client::WorkflowGetResultOptions::default())
        .await;
    let status = handle
        .query(
            cutover_workflows::RolloutWorkflow::status,
            (),
            temporalio_client::WorkflowQueryOptions::default(),
        )
        .await
        .map_err(|e| Failure::Failed(anyhow!("{}: {e}", started.workflow_id)))?;
    let (outcome, reason) = (status.state.as_str(), status.reason);
    println!(
        "{}",
        serde_json::json!({"workflow_id": started.workflow_id, "outcome": outcome, "reason": reason})
    );
    if outcome == "succeeded" {
        Ok(())
    } else {
        Err(Failure::FailedReported)
    }
}

/// Lists rollouts through the visibility store, filtered by search attributes.
pub(crate) async fn list(
    global: &Global,
    service: Option<String>,
    environment: Option<String>,
    limit: u32,
    output: Output,
) -> Outcome {
    let mut query = "WorkflowType = 'RolloutWorkflow'".to_owned();
    for (key, value, what) in [
        (
            cutover_workflows::search_attributes::SERVICE,
            &service,
            "--service",
        ),
        (
            cutover_workflows::search_attributes::ENVIRONMENT,
            &environment,
            "--environment",
        ),
    ] {
        if let Some(v) = value {
            let v = cutover_workflows::name::Name::parse(v)
                .map_err(|e| Failure::Input(anyhow!("{what}: {e}")))?;
            query.push_str(&format!(" AND {key} = '{v}'"));
        }
    }
    let connected = connect(global).await?;
    let mut stream = connected.client.list_workflows(
        query,
        WorkflowListOptions::builder().limit(limit as usize).build(),
    );
    let mut rows = Vec::new();
    while let Some(item) = stream.next().await {
        let execution = item.context("listing rollouts")?;
        rows.push(render::ListRow::from_execution(&execution));
    }
    render::list(&rows, output);
    Ok(())
}

/// Requests cancellation; the workflow stops the running step and ends `cancelled`.
pub(crate) async fn cancel(global: &Global, id: &str, reason: &str) -> Outcome {
    let (id, handle) = rollout_handle(global, id).await?;
    handle
        .cancel(
            WorkflowCancelOptions::builder()
                .reason(reason.to_owned())
                .build(),
        )
        .await
        .map_err(|e| Failure::Failed(anyhow!("cancelling {id}: {e}")))?;
    println!("cancellation requested for {id}; follow it with `cutover rollout watch {id}`");
    Ok(())
}
