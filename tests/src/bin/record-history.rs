//! Saves a rollout's history in the form the replay tests read.
//!
//! ```text
//! cargo run -p cutover-tests --bin record-history -- rollout/<service>/<env> <run-id> tests/histories/<name>.json
//! ```
//! Connects like `cutover` does (TEMPORAL_ADDRESS, default 127.0.0.1:7233).

use anyhow::{Context, bail};
use cutover_client::{ConnectOptions, connect};
use cutover_workflows::RolloutWorkflow;
use temporalio_client::{WorkflowExecutionInfo, WorkflowFetchHistoryOptions, WorkflowHandle};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [workflow_id, run_id, out] = args.as_slice() else {
        bail!("usage: record-history <workflow-id> <run-id> <output.json>");
    };
    let connected = connect(&ConnectOptions::default()).await?;
    let handle: WorkflowHandle<_, RolloutWorkflow> = WorkflowHandle::new(
        connected.client.clone(),
        WorkflowExecutionInfo::builder()
            .namespace(connected.namespace.clone())
            .workflow_id(workflow_id.clone())
            .run_id(run_id.clone())
            .build(),
    );
    let json = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .context("fetching the history")?;
    std::fs::write(out, json).with_context(|| format!("writing {out}"))?;
    println!("wrote {out}");
    Ok(())
}
