//! People steering a rollout: approvals, pause/resume across a worker restart, promote, and
//! the standard `temporal` CLI sending the same signals.

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use cutover_tests::{Harness, cutover, outcome, status, temporal_cli, wait_for};
use cutover_workflows::RolloutWorkflow;
use cutover_workflows::contracts::StepOutput;
use cutover_workflows::control::{ApproveRequest, PauseRequest, PromoteRequest, ResumeRequest};
use cutover_workflows::status::{RolloutState, StepState};
use temporalio_client::errors::WorkflowUpdateError;
use temporalio_client::{WorkflowExecuteUpdateOptions, WorkflowSignalOptions};

async fn approve(
    h: &Harness,
    id: &str,
    who: &str,
) -> Result<cutover_workflows::control::ApproveResult, WorkflowUpdateError> {
    h.client()
        .get_workflow_handle::<RolloutWorkflow>(id.to_owned())
        .execute_update(
            RolloutWorkflow::approve,
            ApproveRequest {
                approver: who.to_owned(),
                comment: Some(format!("{who} says ok")),
                assertion: None,
            },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
}

fn refusal(e: WorkflowUpdateError) -> String {
    match e {
        WorkflowUpdateError::Failed(f) => f.message.clone(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Waits until step `index` is running.
async fn at_step(h: &Harness, id: &str, index: usize) -> anyhow::Result<()> {
    wait_for(Duration::from_secs(30), "the step to run", || async move {
        let st = status(h.client(), id).await?;
        (st.steps[index].state == StepState::Running).then_some(())
    })
    .await
}

#[tokio::test]
async fn an_approval_step_needs_distinct_approvers_and_refuses_when_nothing_waits()
-> anyhow::Result<()> {
    let h = Harness::start("approval").await?;
    let id = h
        .start_rollout(&format!(
            "service: gate\nenvironment: test\nversion: \"1\"\nsteps:\n  - {{ name: sign-off, kind: approval, required: 2 }}\n  - {{ name: after, kind: command, command: touch, args: [released], workdir: \"{}\" }}\n",
            h.dir_str()
        ))
        .await?;
    at_step(&h, &id, 0).await?;
    let first = approve(&h, &id, "alice")
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert!(
        first.counted && first.approvals == 1 && first.required == 2,
        "{first:?}"
    );
    let again = approve(&h, &id, "alice")
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert!(
        !again.counted && again.approvals == 1,
        "the same person counts once: {again:?}"
    );
    assert!(
        !h.dir.path().join("released").exists(),
        "still waiting for a second approver"
    );
    let st = status(&h.client().clone(), &id).await.context("status")?;
    assert_eq!(st.steps[0].approvals.len(), 1);

    // Through the CLI, as a person would.
    let out = cutover(
        h.dir.path(),
        Some(&h.server.address),
        &[
            "rollout",
            "approve",
            &id,
            "--approver",
            "bob",
            "--comment",
            "ship it",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("bob approved step `sign-off`"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert!(h.dir.path().join("released").exists());

    let st = status(h.client(), &id).await.context("status")?;
    let Some(StepOutput::Approval(out)) = &st.steps[0].output else {
        panic!("approval output")
    };
    assert_eq!(out.approvers, ["alice", "bob"]);
    let actions: Vec<(&str, &str)> = st
        .actions
        .iter()
        .map(|a| (a.action.as_str(), a.by.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("approve", "alice"),
            ("approve", "alice"),
            ("approve", "bob")
        ],
        "every action is recorded"
    );
    assert_eq!(st.actions[2].reason.as_deref(), Some("ship it"));
    let history = cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "history", &id, "--output", "json"],
    );
    assert_eq!(
        history.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&history.stderr)
    );
    let events: Vec<serde_json::Value> = serde_json::from_slice(&history.stdout)?;
    let lines: Vec<&str> = events.iter().filter_map(|e| e["what"].as_str()).collect();
    let position = |needle: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or(usize::MAX)
    };
    assert!(
        position("approve by bob") < position("step `sign-off` succeeded"),
        "{lines:#?}"
    );
    assert!(
        position("step `after` succeeded") < position("rollout succeeded"),
        "{lines:#?}"
    );

    let late = cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "approve", &id, "--approver", "carol"],
    );
    assert_eq!(late.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&late.stderr)
            .contains("approval refused: rollout rollout/gate/test has already ended"),
        "{}",
        String::from_utf8_lossy(&late.stderr)
    );

    // A rollout busy with something else refuses approvals, saying where it is.
    let busy = h
        .start_rollout("service: busy\nenvironment: test\nversion: \"1\"\nsteps:\n  - { name: nap, kind: command, command: sleep, args: [\"30\"] }\n")
        .await?;
    at_step(&h, &busy, 0).await?;
    let err = approve(&h, &busy, "alice")
        .await
        .expect_err("nothing to approve");
    assert_eq!(
        refusal(err),
        "nothing is waiting for approval: the rollout is at step `nap`"
    );
    h.shutdown().await
}

#[tokio::test]
async fn a_paused_bake_keeps_its_remaining_time_across_a_worker_restart() -> anyhow::Result<()> {
    let mut h = Harness::start("bake").await?;
    let id = h
        .start_rollout("service: baker\nenvironment: test\nversion: \"1\"\nsteps:\n  - { name: soak, kind: bake, duration: 6s }\n")
        .await?;
    at_step(&h, &id, 0).await?;
    let handle = h
        .client()
        .get_workflow_handle::<RolloutWorkflow>(id.clone());
    // Let about two seconds of the bake pass, then pause.
    let st = status(h.client(), &id).await.context("status")?;
    let ends_at = st.steps[0]
        .ends_at
        .context("a running bake shows when it ends")?;
    wait_for(Duration::from_secs(10), "two seconds of baking", || async {
        (ends_at - chrono::Utc::now() <= chrono::Duration::seconds(4)).then_some(())
    })
    .await?;
    handle
        .signal(
            RolloutWorkflow::pause,
            PauseRequest {
                by: "ops".to_owned(),
                reason: "checking graphs".to_owned(),
                assertion: None,
            },
            WorkflowSignalOptions::default(),
        )
        .await?;
    let remaining = wait_for(
        Duration::from_secs(10),
        "the bake's clock to stop",
        || async { status(h.client(), &id).await?.steps[0].remaining_ms },
    )
    .await?;
    assert!(
        (500..=4500).contains(&remaining),
        "about 4 s were left when paused: {remaining} ms"
    );

    // The worker dies while paused; a new one takes over. The pause holds.
    h.worker.kill9();
    let _next = h.another_worker()?;
    let st = wait_for(
        Duration::from_secs(20),
        "the new worker to answer",
        || async { status(h.client(), &id).await },
    )
    .await?;
    assert_eq!(
        st.paused.as_ref().map(|p| p.reason.as_str()),
        Some("checking graphs")
    );
    assert_eq!(st.state, RolloutState::Running);
    assert_eq!(
        st.steps[0].remaining_ms,
        Some(remaining),
        "the clock stays stopped"
    );

    let resumed_at = chrono::Utc::now();
    handle
        .signal(
            RolloutWorkflow::resume,
            ResumeRequest {
                by: "ops".to_owned(),
                assertion: None,
            },
            WorkflowSignalOptions::default(),
        )
        .await?;
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    let st = status(h.client(), &id).await.context("status")?;
    let finished = st.steps[0].finished_at.context("finished")?;
    let after_resume = (finished - resumed_at).num_milliseconds();
    assert!(
        after_resume >= remaining - 1000 && after_resume < 5500,
        "the bake ended {after_resume} ms after resume; it should continue with the {remaining} ms left, not start over at 6 s"
    );
    let kinds: Vec<&str> = st.actions.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(kinds, ["pause", "resume"]);
    h.shutdown().await
}

#[tokio::test]
async fn promote_ends_a_bake_and_is_refused_once_the_rollout_is_over() -> anyhow::Result<()> {
    let h = Harness::start("promote").await?;
    let id = h
        .start_rollout("service: prom\nenvironment: test\nversion: \"1\"\nsteps:\n  - { name: soak, kind: bake, duration: 1h }\n  - { name: done, kind: command, command: \"true\" }\n")
        .await?;
    at_step(&h, &id, 0).await?;
    let out = cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "promote", &id, "--by", "lead"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    let st = status(h.client(), &id).await.context("status")?;
    assert!(matches!(&st.steps[0].output, Some(StepOutput::Bake(b)) if b.promoted));

    let late = cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "promote", &id, "--by", "lead"],
    );
    assert_eq!(late.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&late.stderr)
            .contains("promotion refused: rollout rollout/prom/test has already ended"),
        "{}",
        String::from_utf8_lossy(&late.stderr)
    );
    // While running but not baking, the workflow itself refuses, saying where it is.
    let busy = h
        .start_rollout("service: prom2\nenvironment: test\nversion: \"1\"\nsteps:\n  - { name: nap, kind: command, command: sleep, args: [\"30\"] }\n")
        .await?;
    at_step(&h, &busy, 0).await?;
    let err = h
        .client()
        .get_workflow_handle::<RolloutWorkflow>(busy.clone())
        .execute_update(
            RolloutWorkflow::promote,
            PromoteRequest {
                by: "lead".to_owned(),
                full: false,
                assertion: None,
            },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .expect_err("nothing to promote");
    assert_eq!(
        refusal(err),
        "nothing to promote: no bake or canary step is waiting (the rollout is at step `nap`)"
    );
    h.shutdown().await
}

#[tokio::test]
async fn the_temporal_cli_can_pause_a_rollout() -> anyhow::Result<()> {
    let h = Harness::start("tcli-pause").await?;
    let id = h
        .start_rollout("service: tcli\nenvironment: test\nversion: \"1\"\nsteps:\n  - { name: soak, kind: bake, duration: 1h }\n")
        .await?;
    at_step(&h, &id, 0).await?;
    let out = Command::new(temporal_cli()?)
        .args([
            "workflow",
            "signal",
            "--address",
            &h.server.address,
            "-w",
            &id,
            "--name",
            "pause",
            "--input",
            r#"{"by":"oncall","reason":"from temporal"}"#,
        ])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paused = wait_for(Duration::from_secs(10), "the pause", || async {
        status(h.client(), &id).await?.paused
    })
    .await?;
    assert_eq!(
        (paused.by.as_str(), paused.reason.as_str()),
        ("oncall", "from temporal")
    );
    h.shutdown().await
}
