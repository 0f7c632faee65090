//! `cutover rollout start|list|cancel`.

use opentelemetry::trace::FutureExt as _;
use std::path::Path;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use anyhow::{Context, anyhow};
use cutover_client::{Begun, begin_rollout};
use futures::StreamExt;
use temporalio_client::{WorkflowCancelOptions, WorkflowListOptions};

use super::{connect, load_plan, rollout_handle};
use crate::cli::{Global, Output};
use crate::exit::{Failure, Outcome};
use crate::render;

/// How `rollout start` starts.
pub(crate) struct StartHow<'a> {
    /// Follow the rollout to its end.
    pub(crate) wait: bool,
    /// `--var NAME=VALUE`.
    pub(crate) vars: &'a [String],
    /// `--on-busy`.
    pub(crate) on_busy: cutover_workflows::queue::OnBusy,
    /// `--override-freeze REASON`.
    pub(crate) override_freeze: Option<String>,
}

/// Starts a plan; with `wait`, follows it to the end.
pub(crate) async fn start(
    global: &Global,
    plan: &Path,
    how: StartHow<'_>,
    output: Output,
) -> Outcome {
    let StartHow {
        wait,
        vars,
        on_busy,
        override_freeze,
    } = how;
    let mut plan = load_plan(plan)?;
    cutover_workflows::plan::vars::apply_overrides(&mut plan.vars, vars)
        .map_err(|e| Failure::Input(anyhow!(e)))?;
    if let Some(reason) = override_freeze {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control)
        {
            return Err(Failure::Input(anyhow!(
                "--override-freeze needs a reason of 1 to 200 printable characters; it is recorded with your name"
            )));
        }
        plan.freeze_override = Some(cutover_workflows::plan::freeze::FreezeOverride {
            by: std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "cli".to_owned()),
            reason: reason.to_owned(),
        });
    }
    plan.trigger = Some(cutover_workflows::plan::Trigger {
        kind: cutover_workflows::plan::TriggerKind::Cli,
        detail: std::env::var("USER").ok().filter(|u| !u.is_empty()),
        delivery: None,
        author: std::env::var("USER").ok().filter(|u| !u.is_empty()),
    });
    let connected = connect(global).await?;
    // A refusal (e.g. a rollout of this service and environment is running) names the
    // running rollout and how to follow or cancel it.
    // Who asked, for the abort a `supersede` sends: the person, or Cutover itself.
    let by = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "cutover".to_owned());
    // The root of the rollout's trace (traces on): the workflow's spans continue it.
    let span = tracing::info_span!(
        "rollout.start",
        trigger = "cli",
        service = %plan.service,
        environment = %plan.environment,
        version = %plan.version,
    );
    let begun = begin_rollout(
        &connected.client,
        &plan,
        &global.task_queue,
        None,
        on_busy,
        &by,
    )
    .with_context(span.context())
    .instrument(span)
    .await
    .map_err(|e| Failure::Failed(e.into()))?;
    let started = match begun {
        Begun::Started(started) => started,
        Begun::Queued {
            queue_id,
            queue_run,
            behind,
            behind_run,
        } => {
            if output == Output::Json {
                println!(
                    "{}",
                    serde_json::json!({
                        "queued": queue_id,
                        "behind": behind,
                        "behind_run": behind_run,
                        "on_busy": on_busy.as_str(),
                        "service": plan.service,
                        "environment": plan.environment,
                        "version": plan.version,
                    })
                );
            } else {
                let how = if on_busy == cutover_workflows::queue::OnBusy::Supersede {
                    format!(
                        "{behind} is being aborted (it rolls back); {} starts when it has ended",
                        plan.version
                    )
                } else {
                    format!("{} starts when {behind} ends", plan.version)
                };
                println!("queued in {queue_id}: {how}; a newer queued release replaces this one");
            }
            if !wait {
                return Ok(());
            }
            queued_start(&connected, &queue_id, &queue_run, &plan).await?
        }
    };
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

/// Waits for the queued release's rollout to start (the queue workflow's result); a queue
/// entry replaced by a newer release says so.
async fn queued_start(
    connected: &cutover_client::Connected,
    queue_id: &str,
    queue_run: &str,
    plan: &cutover_workflows::plan::Plan,
) -> Result<cutover_client::Started, Failure> {
    use temporalio_client::NamespacedClient;
    let info = temporalio_client::WorkflowExecutionInfo::builder()
        .namespace(connected.client.namespace())
        .workflow_id(queue_id)
        .run_id(queue_run.to_owned())
        .build();
    let handle =
        temporalio_client::WorkflowHandle::<_, cutover_workflows::queue::QueueWorkflow>::new(
            connected.client.clone(),
            info,
        );
    match handle
        .get_result(temporalio_client::WorkflowGetResultOptions::default())
        .await
    {
        Ok(run_id) => Ok(cutover_client::Started {
            workflow_id: plan.workflow_id(),
            run_id,
        }),
        Err(e) => Err(Failure::Failed(anyhow!(
            "{} did not start from {queue_id} (a newer release may have replaced it): {e}",
            plan.version
        ))),
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
    // A rolled-back rollout ends as a failed workflow; its close event says which it was.
    for row in rows.iter_mut().filter(|r| r.status == "failed") {
        if rolled_back(&connected.client, &row.workflow_id, &row.run_id).await {
            row.status = "rolled_back".to_owned();
        }
    }
    render::list(&rows, output);
    Ok(())
}

/// Whether the run ended with the failure a rollback ends with (its close event only: one
/// small request per failed row).
async fn rolled_back(client: &temporalio_client::Client, workflow_id: &str, run_id: &str) -> bool {
    use temporalio_client::{
        HistoryEventFilterType, NamespacedClient, WorkflowExecutionInfo,
        WorkflowFetchHistoryOptions,
    };
    use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;
    use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
    let handle = WorkflowExecutionInfo::builder()
        .namespace(client.namespace())
        .workflow_id(workflow_id)
        .run_id(run_id.to_owned())
        .build()
        .bind_untyped(client.clone());
    let options = WorkflowFetchHistoryOptions::builder()
        .event_filter_type(HistoryEventFilterType::CloseEvent)
        .build();
    let Ok(events) = handle.fetch_history(options).into_events().await else {
        return false;
    };
    events.into_iter().any(|e| match e.attributes {
        Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
            matches!(
                a.failure.and_then(|f| f.failure_info),
                Some(FailureInfo::ApplicationFailureInfo(info))
                    if info.r#type == cutover_workflows::rollout::ROLLED_BACK
            )
        }
        _ => false,
    })
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
