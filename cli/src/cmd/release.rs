//! `cutover release validate|start|status`.

use std::path::Path;

use anyhow::anyhow;
use cutover_workflows::plan::{PlanLimits, parse_release};
use cutover_workflows::release::{
    ReleasePlan, ReleaseState, ReleaseStatus, ReleaseWorkflow, release_workflow_id,
};
use temporalio_client::WorkflowGetResultOptions;
use temporalio_client::errors::WorkflowGetResultError;

use super::{connect, read_text};
use crate::cli::{Global, Output};
use crate::exit::{Failure, Outcome};

/// Reads a release file and the plan files it names (relative to it); every problem is
/// printed with its file's name, exit 2.
pub(crate) fn load(path: &Path) -> Result<ReleasePlan, Failure> {
    let limits = PlanLimits::default();
    let shown = path.display().to_string();
    let text = read_text(path, "release", limits.max_bytes)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let read = |name: &str| -> Result<String, String> {
        let file = dir.join(name);
        let meta = std::fs::metadata(&file).map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("not a file".to_owned());
        }
        if meta.len() > limits.max_bytes as u64 {
            return Err(format!(
                "{} bytes; plans are limited to {} bytes",
                meta.len(),
                limits.max_bytes
            ));
        }
        std::fs::read_to_string(&file).map_err(|e| e.to_string())
    };
    parse_release(&text, limits, &read).map_err(|problems| super::reported(&shown, &problems))
}

/// Reports every problem, or a one-line summary of a good release.
pub(crate) fn validate(path: &Path) -> Outcome {
    let release = load(path)?;
    let order: Vec<String> = release
        .order()
        .unwrap_or_default()
        .iter()
        .map(|&i| {
            let p = &release.services[i].plan;
            format!("{} {}", p.service, p.version)
        })
        .collect();
    println!(
        "{}: ok — release {} to {}: {}{}",
        path.display(),
        release.name,
        release.environment,
        if release.migrate.is_some() {
            "shared migration, then "
        } else {
            ""
        },
        order.join(" → ")
    );
    Ok(())
}

/// Starts the release; with `wait`, follows it to the end and prints it.
pub(crate) async fn start(global: &Global, path: &Path, wait: bool) -> Outcome {
    let release = load(path)?;
    let connected = connect(global).await?;
    let started = cutover_client::start_release(&connected.client, &release, &global.task_queue)
        .await
        .map_err(|e| Failure::Failed(e.into()))?;
    println!("started {} (run {})", started.workflow_id, started.run_id);
    if !wait {
        println!(
            "follow it with `cutover release status {} --environment {}`",
            release.name, release.environment
        );
        return Ok(());
    }
    let handle = connected
        .client
        .get_workflow_handle::<ReleaseWorkflow>(started.workflow_id.clone());
    let result = handle.get_result(WorkflowGetResultOptions::default()).await;
    let status = cutover_client::release_status(&connected.client, &started.workflow_id).await;
    if let Ok(status) = &status {
        for line in tree(&connected.client, status).await {
            println!("{line}");
        }
    }
    match result {
        Ok(s) if s.state == ReleaseState::Succeeded => Ok(()),
        Ok(_) => Err(Failure::FailedReported),
        Err(WorkflowGetResultError::Failed(f)) => Err(Failure::Failed(anyhow!(
            "release {} failed: {}",
            started.workflow_id,
            f.failure().message
        ))),
        Err(e) => Err(Failure::Failed(anyhow!(
            "release {}: {e}",
            started.workflow_id
        ))),
    }
}

/// Follows the release, redrawing its tree, until it ends; exit 0 if it succeeded.
pub(crate) async fn watch(global: &Global, name: &str, environment: &str) -> Outcome {
    use std::io::IsTerminal;
    let connected = connect(global).await?;
    let id = release_workflow_id(name, environment);
    let mut screen = super::watch::Screen::new(std::io::stdout().is_terminal());
    loop {
        let status = cutover_client::release_status(&connected.client, &id)
            .await
            .map_err(|e| Failure::Failed(anyhow!("release {id}: {e}")))?;
        screen.draw_lines(tree(&connected.client, &status).await);
        match status.state {
            ReleaseState::Running => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await
            }
            ReleaseState::Succeeded => return Ok(()),
            ReleaseState::Failed => return Err(Failure::FailedReported),
        }
    }
}

/// The release, its services, and each service's steps.
pub(crate) async fn status(
    global: &Global,
    name: &str,
    environment: &str,
    output: Output,
) -> Outcome {
    let connected = connect(global).await?;
    let id = release_workflow_id(name, environment);
    let status = cutover_client::release_status(&connected.client, &id)
        .await
        .map_err(|e| Failure::Failed(anyhow!("release {id}: {e}")))?;
    if output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).unwrap_or_default()
        );
        return Ok(());
    }
    for line in tree(&connected.client, &status).await {
        println!("{line}");
    }
    Ok(())
}

/// Parent → services → steps. A service's steps come from its rollout's own status (the
/// latest run of `rollout/<service>/<environment>`: the release's rollout, or the rollback
/// that followed it).
async fn tree(client: &temporalio_client::Client, status: &ReleaseStatus) -> Vec<String> {
    let mut lines = vec![format!(
        "{}  {}{}",
        status.workflow_id,
        match status.state {
            ReleaseState::Running => "running",
            ReleaseState::Succeeded => "succeeded",
            ReleaseState::Failed => "failed",
        },
        status
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    )];
    if let Some(m) = &status.migrate {
        lines.push(format!("  migrate: {m}"));
    }
    for s in &status.services {
        lines.push(format!(
            "  {} {}  {}{}",
            s.service,
            s.version,
            s.state.as_str(),
            // A failed service's own rollout says why, below.
            s.note
                .as_deref()
                .filter(|_| s.state != cutover_workflows::release::ServiceState::Failed)
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        ));
        if matches!(
            s.state,
            cutover_workflows::release::ServiceState::Pending
                | cutover_workflows::release::ServiceState::Skipped
        ) {
            continue;
        }
        if let Some(rollout) = rollout_status(client, &s.workflow_id).await {
            for line in crate::render::status_lines(&rollout, None)
                .into_iter()
                .skip(1)
            {
                lines.push(format!("    {line}"));
            }
        }
    }
    lines
}

async fn rollout_status(
    client: &temporalio_client::Client,
    id: &str,
) -> Option<cutover_workflows::status::RolloutStatus> {
    client
        .get_workflow_handle::<cutover_workflows::RolloutWorkflow>(id.to_owned())
        .query(
            cutover_workflows::RolloutWorkflow::status,
            (),
            temporalio_client::WorkflowQueryOptions::default(),
        )
        .await
        .ok()
}
