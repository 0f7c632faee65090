//! Canary scripts end to end: weights with gates between them (approval by two people, an
//! analysis, pauses), on the real worker, the example service as real processes, real nginx
//! moving real traffic — and `promote` / `promote --full` through the CLI.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cutover_tests::host::{HostGuard, load};
use cutover_tests::site::{Site, succeed};
use cutover_tests::{Harness, approve, cutover, outcome, replays, status, wait_for};
use cutover_workflows::RolloutWorkflow;
use cutover_workflows::control::PromoteRequest;
use cutover_workflows::status::{RolloutState, RolloutStatus};
use temporalio_client::WorkflowExecuteUpdateOptions;

/// Waits until the rollout's canary is at entry `position`, and returns its status.
async fn at_entry(h: &Harness, id: &str, position: usize) -> anyhow::Result<RolloutStatus> {
    wait_for(
        Duration::from_secs(60),
        &format!("canary entry {position}"),
        || async {
            let s = status(h.client(), id).await?;
            let c = s.steps[0].canary.as_ref()?;
            (c.position == position).then_some(s)
        },
    )
    .await
}

/// The weights a deploy step's shifts went through.
fn shifts(s: &RolloutStatus) -> Vec<u8> {
    match &s.steps[0].output {
        Some(cutover_workflows::contracts::StepOutput::Deploy(d)) => {
            d.shifts.iter().map(|s| s.weight).collect()
        }
        other => panic!("a deploy's output, not {other:?}"),
    }
}

#[tokio::test]
async fn a_canary_waits_for_two_approvers_between_weights_and_is_judged_before_100()
-> anyhow::Result<()> {
    let h = Harness::start("canary-script").await?;
    let site = Site::new(&h)?;
    let _guard = HostGuard::new(Path::new(&site.root), "cs");
    succeed(
        &h,
        &site.plan("cs", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(site.url(), 4, stop.clone()));
    let script = format!(
        "    rollback_window: 0s\n    canary:\n      - weight: 10\n      - approval: {{ required: 2 }}\n      - weight: 50\n      - analysis:\n          interval: 300ms\n          duration: 900ms\n          metrics:\n            - {{ name: probe, http: {{ url: \"{}\", probes: 10 }}, success_condition: \"success_rate >= 0.95\" }}\n      - weight: 100\n",
        site.url()
    );
    let id = h
        .start_rollout(&site.plan("cs", "2.0.0", "canary", &script))
        .await?;

    // At the approval gate: traffic stays at 10%, and a promote cannot skip it.
    let s = at_entry(&h, &id, 1).await?;
    let canary = s.steps[0].canary.clone().expect("the script in status");
    assert_eq!(
        canary.script,
        [
            "weight 10",
            "approval (2)",
            "weight 50",
            "analysis",
            "weight 100"
        ]
    );
    assert_eq!(canary.weight, 10);
    wait_for(Duration::from_secs(10), "the gate waiting", || async {
        let s = status(h.client(), &id).await?;
        (s.steps[0].required_approvals == Some(2)).then_some(())
    })
    .await?;
    let promote = h
        .client()
        .get_workflow_handle::<RolloutWorkflow>(id.clone())
        .execute_update(
            RolloutWorkflow::promote,
            PromoteRequest {
                by: "eve".to_owned(),
                full: true,
                assertion: None,
            },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await;
    assert!(promote.is_err(), "a promote must not pass an approval gate");

    assert_eq!(approve(h.client(), &id, "ana").await?, (true, 1));
    assert_eq!(
        approve(h.client(), &id, "ana").await?,
        (false, 1),
        "ana counts once"
    );
    let s = status(h.client(), &id).await.expect("status");
    assert_eq!(s.steps[0].canary.as_ref().map(|c| c.position), Some(1));
    assert_eq!(approve(h.client(), &id, "bob").await?, (true, 2));

    let summary = outcome(h.client(), &id).await?;
    stop.store(true, Ordering::Relaxed);
    let seen = loader.await?;
    println!(
        "canary script under load: {} requests, {} failed, versions {:?}",
        seen.requests, seen.failures, seen.versions
    );
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert_eq!(seen.failures, 0, "{:?}", seen.errors);
    assert_eq!(site.serving().await?, "2.0.0");

    let s = status(h.client(), &id).await.expect("status");
    let step = &s.steps[0];
    let approvers: Vec<&str> = step.approvals.iter().map(|a| a.approver.as_str()).collect();
    assert_eq!(approvers, ["ana", "bob"]);
    let analysis = step.analysis.as_ref().expect("the gate's analysis");
    assert_eq!(analysis.weight, Some(50));
    assert!(!analysis.measurements.is_empty());
    assert_eq!(step.canary.as_ref().map(|c| c.position), Some(5));
    let shifts = shifts(&s);
    assert_eq!(shifts, [10, 50, 100]);
    let approvals: Vec<&str> = s
        .actions
        .iter()
        .filter(|a| a.action == "approve")
        .map(|a| a.by.as_str())
        .collect();
    assert_eq!(
        approvals,
        ["ana", "ana", "bob"],
        "every approval is recorded"
    );
    replays(h.client(), &id, "rollout-canary-script-approval-analysis").await?;
    Ok(())
}

#[tokio::test]
async fn promote_skips_to_the_next_gate_and_promote_full_to_the_end() -> anyhow::Result<()> {
    let h = Harness::start("canary-promote").await?;
    let site = Site::new(&h)?;
    let _guard = HostGuard::new(Path::new(&site.root), "cp2");
    succeed(
        &h,
        &site.plan("cp2", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    let script = "    rollback_window: 0s\n    canary:\n      - weight: 10\n      - bake: 1h\n      - weight: 25\n      - bake: 1h\n      - pause\n      - { weight: 50, bake: 1h }\n      - pause\n      - weight: 100\n";
    let id = h
        .start_rollout(&site.plan("cp2", "2.0.0", "canary", script))
        .await?;
    at_entry(&h, &id, 1).await?;
    wait_for(Duration::from_secs(10), "the bake's clock", || async {
        let s = status(h.client(), &id).await?;
        s.steps[0].ends_at.map(|_| ())
    })
    .await?;

    // `promote` ends the bake and skips the 25% bake too, stopping at the pause — at 25%.
    let dir = h.dir.path();
    let out = cutover(
        dir,
        Some(&h.server.address),
        &["rollout", "promote", &id, "--by", "ana"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("next gate"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = at_entry(&h, &id, 4).await?;
    assert_eq!(s.steps[0].canary.as_ref().map(|c| c.weight), Some(25));
    let text = cutover(dir, Some(&h.server.address), &["rollout", "status", &id]);
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains("canary at 25%"), "{text}");
    assert!(text.contains("▶ pause"), "{text}");

    // `promote --full` passes the remaining pause and bake: straight to 100%.
    let out = cutover(
        dir,
        Some(&h.server.address),
        &["rollout", "promote", &id, "--by", "ana", "--full"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert_eq!(site.serving().await?, "2.0.0");
    let shifts = shifts(&status(h.client(), &id).await.expect("status"));
    assert_eq!(
        shifts,
        [10, 25, 100],
        "no weight between the gates was visited"
    );
    replays(h.client(), &id, "rollout-canary-script-promote").await?;
    Ok(())
}
