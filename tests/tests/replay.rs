//! Determinism: histories recorded from real rollouts replay against today's workflow code.
//!
//! `tests/histories/` holds histories recorded from rollouts that succeeded after retries
//! (timers), failed non-retryably, and were cancelled mid-step; from drills recorded before
//! failback existed (`drill-v0-*`, which replay through the `drill-failback-v1` and
//! `service-lock-v1` patches); and with both patches (`drill-v1-*`: a switchover with switch
//! back, a failed promotion compensated; `rollout-service-lock`); with the rollback window as a
//! hold (`rollout-window-hold-*`, patch `rollback-window-hold-v1`); and with cancel-safe drill
//! compensation and the restore after a failed verify (`drill-v2-*`, patches
//! `drill-cancel-safe-v1` and `drill-verify-restore-v1`), recorded by the in-process tests
//! with `CUTOVER_RECORD_HISTORIES`. A change to RolloutWorkflow's
//! command sequence that is not guarded with `ctx.patched(...)` makes these fail. To add one,
//! run a rollout on `cutover dev up` and save it with
//! `cargo run -p cutover-tests --bin record-history -- <workflow-id> <run-id> tests/histories/<name>.json`.

use std::path::PathBuf;

use cutover_tests::{Harness, outcome};
use cutover_workflows::RolloutWorkflow;
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

fn replayer() -> anyhow::Result<WorkflowReplayer> {
    let options = cutover_workflows::register_workflows(WorkflowReplayerOptions::new())?.build();
    Ok(WorkflowReplayer::new(options)?)
}

#[tokio::test]
async fn recorded_histories_replay_without_nondeterminism() -> anyhow::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("histories");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected recorded histories in {}",
        dir.display()
    );
    let replayer = replayer()?;
    for file in files {
        let history = WorkflowHistory::from_json(&std::fs::read(&file)?)?;
        replayer
            .replay_workflow(history)
            .await
            .map_err(|e| anyhow::anyhow!("{} does not replay: {e}", file.display()))?;
    }
    Ok(())
}

#[tokio::test]
async fn a_fresh_history_replays_and_a_changed_workflow_would_be_caught() -> anyhow::Result<()> {
    let h = Harness::start("replay").await?;
    let id = h
        .start_rollout("service: replay\nenvironment: test\nversion: \"1\"\nsteps:\n  - { name: a, kind: command, command: \"true\" }\n  - { name: b, kind: command, command: \"true\" }\n")
        .await?;
    outcome(h.client(), &id).await?;
    let handle = h.client().get_workflow_handle::<RolloutWorkflow>(id);
    let json = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await?;
    replayer()?
        .replay_workflow(WorkflowHistory::from_json(&json)?)
        .await?;

    // The same history with one scheduled activity's type renamed is what a non-patched
    // change to the workflow looks like to the replayer: it must refuse it.
    let text = String::from_utf8(json)?;
    assert!(text.contains("process.run"));
    let tampered = text.replacen("\"process.run\"", "\"process.renamed\"", 1);
    let result = replayer()?
        .replay_workflow(WorkflowHistory::from_json(tampered.as_bytes())?)
        .await;
    assert!(
        result.is_err(),
        "a changed command sequence must be detected"
    );
    h.shutdown().await
}
