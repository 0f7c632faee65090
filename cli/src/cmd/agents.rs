//! `cutover agents`: the host agents Temporal has seen polling in the last few minutes, and
//! whether each still polls.

use anyhow::anyhow;
use chrono::Utc;

use super::connect;
use crate::cli::{Global, Output};
use crate::exit::Outcome;

pub(crate) async fn list(global: &Global, output: Output) -> Outcome {
    let client = connect(global).await?.client;
    let agents = cutover_client::agents::list(&client)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let rows: Vec<serde_json::Value> = agents
        .iter()
        .map(|a| serde_json::to_value(a).unwrap_or_default())
        .collect();
    if super::json_or_empty(
        &rows,
        output,
        "no agent has polled recently; start one on each target machine with `cutover-worker --host NAME`",
    ) {
        return Ok(());
    }
    println!(
        "{:<20} {:<28} {:<12} {:<12} AGENT",
        "HOST", "TASK QUEUE", "LAST POLL", "STATE"
    );
    let now = Utc::now();
    for a in &agents {
        let last = match a.last_poll {
            Some(at) => {
                let secs = (now - at).num_seconds().max(0);
                format!("{secs}s ago")
            }
            None => "never".to_owned(),
        };
        // A live agent re-polls every minute at most; older than that, it has stopped.
        let state = if a.polling { "polling" } else { "stopped" };
        println!(
            "{:<20} {:<28} {:<12} {:<12} {}",
            a.host, a.task_queue, last, state, a.identity
        );
    }
    Ok(())
}
