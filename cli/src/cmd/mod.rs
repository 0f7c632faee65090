//! One module per command group; each returns an [`Outcome`](crate::exit::Outcome).

pub(crate) mod agents;
pub(crate) mod audit;
pub(crate) mod control;
pub(crate) mod dev;
pub(crate) mod drill;
pub(crate) mod drill_report;
pub(crate) mod host;
pub(crate) mod ledger;
pub(crate) mod locks;
pub(crate) mod manifests;
pub(crate) mod plan;
pub(crate) mod release;
pub(crate) mod rollout;
pub(crate) mod schedule;
pub(crate) mod undo;
pub(crate) mod via;
pub(crate) mod wait;
pub(crate) mod watch;

use std::path::Path;

use anyhow::anyhow;
use cutover_client::{ConnectOptions, Connected};
use cutover_workflows::RolloutWorkflow;
use cutover_workflows::plan::{Plan, PlanLimits, parse_plan};
use temporalio_client::{Client, WorkflowHandle};

use crate::cli::Global;
use crate::exit::Failure;

/// Connects with the global flags layered over Temporal's environment configuration.
pub(crate) async fn connect(global: &Global) -> Result<Connected, Failure> {
    Ok(cutover_client::connect(&ConnectOptions {
        address: global.address.clone(),
        namespace: global.namespace.clone(),
        profile: global.profile.clone(),
        identity: None,
    })
    .await?)
}

/// A handle on the rollout `id` (checked and normalized), and its normalized ID.
pub(crate) async fn rollout_handle(
    global: &Global,
    id: &str,
) -> Result<(String, WorkflowHandle<Client, RolloutWorkflow>), Failure> {
    let id = rollout_id(id)?;
    let connected = connect(global).await?;
    let handle = connected
        .client
        .get_workflow_handle::<RolloutWorkflow>(id.clone());
    Ok((id, handle))
}

/// Accepts `rollout/<service>/<environment>` or the short `<service>/<environment>`.
pub(crate) fn rollout_id(id: &str) -> Result<String, Failure> {
    let full = if id.starts_with("rollout/") {
        id.to_owned()
    } else {
        format!("rollout/{id}")
    };
    let parts: Vec<&str> = full.split('/').collect();
    let ok = parts.len() == 3
        && parts[1..].iter().all(|p| {
            !p.is_empty()
                && p.len() <= 63
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        });
    if !ok {
        return Err(Failure::Input(anyhow!(
            "`{}` is not a rollout ID; rollout IDs look like `rollout/<service>/<environment>`",
            id.chars().take(100).collect::<String>()
        )));
    }
    Ok(full)
}

/// Reads a text file of at most `max` bytes; `what` names it in errors (exit 2).
pub(crate) fn read_text(path: &Path, what: &str, max: usize) -> Result<String, Failure> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::Input(anyhow!("cannot read {what} `{shown}`: {e}")))?;
    if !meta.is_file() {
        return Err(Failure::Input(anyhow!("{what} `{shown}` is not a file")));
    }
    if meta.len() > max as u64 {
        return Err(Failure::Input(anyhow!(
            "{what} `{shown}` is {} bytes; it is limited to {max} bytes",
            meta.len(),
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::Input(anyhow!("cannot read {what} `{shown}`: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        Failure::Input(anyhow!(
            "{what} `{shown}` is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Reads and validates a plan. Problems are printed with the file's name; exit 2.
pub(crate) fn load_plan(path: &Path) -> Result<Plan, Failure> {
    let limits = PlanLimits::default();
    let shown = path.display().to_string();
    let text = read_text(path, "plan", limits.max_bytes)?;
    let mut plan = parse_plan(&text, limits).map_err(|problems| reported(&shown, &problems))?;
    manifests::attach(&mut plan, path)?;
    Ok(plan)
}

/// Prints a file's problems (`file:line:col: path: message` and hints) and a count; exit 2.
pub(crate) fn reported(shown: &str, problems: &cutover_workflows::plan::Diagnostics) -> Failure {
    eprintln!("{}", problems.render(shown));
    eprintln!(
        "{shown}: {} problem{} found; nothing was started",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    Failure::InputReported
}

/// The shared start of a listing: with `--output json`, the rows as JSON; with none, `empty`.
/// Returns true when that was all there was to print.
pub(crate) fn json_or_empty<T: serde::Serialize>(
    rows: &[T],
    output: crate::cli::Output,
    empty: &str,
) -> bool {
    if output == crate::cli::Output::Json {
        println!("{}", serde_json::to_string_pretty(rows).unwrap_or_default());
        return true;
    }
    if rows.is_empty() {
        println!("{empty}");
        return true;
    }
    false
}
