//! `cutover locks`: the service locks held now (`lock/<service>/<environment>` workflows).

use anyhow::anyhow;
use futures::StreamExt;
use serde_json::json;
use temporalio_client::WorkflowListOptions;

use super::connect;
use crate::cli::{Global, Output};
use crate::exit::Outcome;

pub(crate) async fn list(global: &Global, output: Output) -> Outcome {
    let client = connect(global).await?.client;
    let mut stream = client.list_workflows(
        "WorkflowType = 'LockWorkflow' AND ExecutionStatus = 'Running'",
        WorkflowListOptions::default(),
    );
    let mut rows = Vec::new();
    while let Some(item) = stream.next().await {
        let lock = item.map_err(|e| anyhow!("listing locks: {e}"))?;
        let id = lock.id().to_owned();
        let holder = cutover_client::lock::holder_of(&client, &id, lock.run_id())
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let alive = cutover_client::lock::running(&client, &holder.workflow_id, &holder.run_id)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        rows.push(json!({
            "lock": id,
            "kind": holder.kind,
            "holder": holder.workflow_id,
            "run_id": holder.run_id,
            "state": if alive { "held" } else { "stale" },
        }));
    }
    rows.sort_by(|a, b| a["lock"].as_str().cmp(&b["lock"].as_str()));
    if super::json_or_empty(&rows, output, "no service is locked") {
        return Ok(());
    }
    println!("{:<32} {:<6} {:<8} HOLDER", "LOCK", "STATE", "KIND");
    for r in &rows {
        println!(
            "{:<32} {:<6} {:<8} {} (run {})",
            r["lock"].as_str().unwrap_or_default(),
            r["state"].as_str().unwrap_or_default(),
            r["kind"].as_str().unwrap_or_default(),
            r["holder"].as_str().unwrap_or_default(),
            r["run_id"].as_str().unwrap_or_default(),
        );
    }
    if rows.iter().any(|r| r["state"] == "stale") {
        println!("a stale lock's holder has ended; the next rollout or drill takes it over");
    }
    Ok(())
}
