//! DR drills that go wrong: a promotion that fails, and workers SIGKILLed in the middle of the
//! promotion and of the failback. Each must end with exactly one writable primary, the app
//! pointed at it and its checks passing. Real PostgreSQL primary and standby on loopback.

use std::time::Duration;

use anyhow::Context;
use cutover_tests::drill::{Scene, scene, status, streaming_standby};
use cutover_tests::{Harness, wait_for};
use cutover_workflows::drill::{DrillStatus, DrillWorkflow, parse_drill};
use temporalio_client::WorkflowGetResultOptions;
use temporalio_client::errors::WorkflowGetResultError;

const ID: &str = "drill/hello/test/db";

async fn start(h: &Harness, plan_text: &str) -> anyhow::Result<()> {
    let plan = parse_drill(plan_text).map_err(|d| anyhow::anyhow!("{d}"))?;
    cutover_client::start_drill(h.client(), &plan, &h.queue).await?;
    Ok(())
}

async fn result(h: &Harness, name: &str) -> anyhow::Result<Result<DrillStatus, String>> {
    let handle = h
        .client()
        .get_workflow_handle::<DrillWorkflow>(ID.to_owned());
    let result = handle.get_result(WorkflowGetResultOptions::default()).await;
    cutover_tests::replays(h.client(), ID, name).await?;
    Ok(match result {
        Ok(status) => Ok(status),
        Err(WorkflowGetResultError::Failed(f)) => Err(f.failure().message.clone()),
        Err(e) => anyhow::bail!("{e:?}\n{}", h.worker.log_text()),
    })
}

/// Attempts of each start of `activity` in the drill's history.
async fn attempts(h: &Harness, activity: &str) -> anyhow::Result<Vec<u64>> {
    let events = cutover_tests::history_events(h.client(), ID).await?;
    let scheduled: Vec<u64> = events
        .iter()
        .filter(|e| {
            e["attributes"]["ActivityTaskScheduledEventAttributes"]["activity_type"]["name"]
                == activity
        })
        .filter_map(|e| e["event_id"].as_u64())
        .collect();
    Ok(events
        .iter()
        .filter_map(|e| {
            let started = &e["attributes"]["ActivityTaskStartedEventAttributes"];
            let of = started["scheduled_event_id"].as_u64()?;
            scheduled
                .contains(&of)
                .then(|| started["attempt"].as_u64().unwrap_or(1))
        })
        .collect())
}

/// `cutover locks` shows none (visibility catches up with the closed lock within moments).
async fn no_locks(h: &Harness) -> anyhow::Result<()> {
    wait_for(
        Duration::from_secs(15),
        "`cutover locks` to show none",
        || {
            let out = cutover_tests::cutover(h.dir.path(), Some(&h.server.address), &["locks"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            async move { text.contains("no service is locked").then_some(()) }
        },
    )
    .await
}

/// Exactly one writable primary (`primary`), the other server its streaming standby, the
/// endpoint file on `primary`, and a write through the app lands there.
async fn one_primary(s: &Scene, primary_is_original: bool) -> anyhow::Result<()> {
    let (primary, standby) = if primary_is_original {
        (&s.primary, &s.standby)
    } else {
        (&s.standby, &s.primary)
    };
    assert_eq!(primary.psql("postgres", "SELECT pg_is_in_recovery()")?, "f");
    assert!(
        streaming_standby(standby),
        "the other server is not a standby"
    );
    assert_eq!(
        std::fs::read_to_string(&s.endpoint)?.trim(),
        primary.url("postgres")
    );
    let mark = format!(
        "after the drill {}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/items", s.app_port);
    let written = http
        .post(&url)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "name": mark }).to_string())
        .send()
        .await?;
    assert!(written.status().is_success(), "{}", written.status());
    assert_eq!(
        primary.psql(
            "postgres",
            &format!("SELECT count(*) FROM items WHERE name = '{mark}'")
        )?,
        "1"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_promotion_is_compensated_with_one_writable_primary() -> anyhow::Result<()> {
    let h = Harness::start("drill-promote-fails").await?;
    let s = scene(&h, "failover", false).await?;
    // The injected fault: the standby promotes, but then refuses every write.
    s.standby.set("default_transaction_read_only", "on")?;
    start(&h, &format!("{}promote_within: 2s\n", s.plan)).await?;
    let failure = result(&h, "drill-promote-fails")
        .await?
        .expect_err("the drill must fail");
    assert!(failure.starts_with("promote: "), "{failure}");
    assert!(
        failure.contains("did not accept a write within 2000 ms"),
        "{failure}"
    );
    // What compensation did, in order, is in the reason.
    for did in [
        "was stopped (fenced)",
        "was restarted",
        "now a streaming standby of the primary",
        "app checks passed",
    ] {
        assert!(failure.contains(did), "`{did}` missing from: {failure}");
    }
    let st = status(h.client(), ID).await.context("status")?;
    assert_eq!(st.state, "failed");
    let names: Vec<&str> = st.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["preflight", "mark", "fault", "promote", "restore"],
        "{st:#?}"
    );
    one_primary(&s, true).await?;
    Ok(())
}

#[tokio::test]
async fn a_worker_killed_during_promote_leaves_the_drill_to_the_next_worker() -> anyhow::Result<()>
{
    let mut h = Harness::start("drill-kill-promote").await?;
    let s = scene(&h, "failover", false).await?;
    // Holds the promotion in its wait for a write, so the kill lands inside it.
    s.standby.set("default_transaction_read_only", "on")?;
    start(&h, &s.plan).await?;
    wait_for(
        Duration::from_secs(60),
        "the standby to be promoted",
        || {
            let promoted = s
                .standby
                .psql("postgres", "SELECT pg_is_in_recovery()")
                .is_ok_and(|v| v == "f");
            async move { promoted.then_some(()) }
        },
    )
    .await?;
    let running = status(h.client(), ID).await.context("status")?;
    assert_eq!(
        running
            .phases
            .last()
            .map(|p| (p.name.as_str(), p.state.as_str())),
        Some(("promote", "running")),
        "{running:#?}"
    );
    h.worker.kill9();
    s.standby.set("default_transaction_read_only", "off")?;
    let _next = h.another_worker()?;
    let done = result(&h, "drill-kill-promote")
        .await?
        .map_err(|e| anyhow::anyhow!("{e}\n{}", h.worker.log_text()))?;
    let promote = done
        .phases
        .iter()
        .find(|p| p.name == "promote")
        .context("promote")?;
    assert_eq!(
        promote.note.as_deref(),
        Some("already promoted"),
        "{done:#?}"
    );
    assert_eq!(attempts(&h, "drill.promote").await?.last(), Some(&2));
    assert_eq!(
        done.phases
            .last()
            .map(|p| (p.name.as_str(), p.state.as_str())),
        Some(("failback", "succeeded"))
    );
    one_primary(&s, false).await?;
    no_locks(&h).await?;
    Ok(())
}

#[tokio::test]
async fn a_worker_killed_during_failback_leaves_the_drill_to_the_next_worker() -> anyhow::Result<()>
{
    let mut h = Harness::start("drill-kill-failback").await?;
    let s = scene(&h, "failover", false).await?;
    start(&h, &s.plan).await?;
    wait_for(Duration::from_secs(60), "the failback to start", || {
        let client = h.client().clone();
        async move {
            let st = status(&client, ID).await?;
            st.phases
                .last()
                .filter(|p| p.name == "failback" && p.state == "running")
                .map(|_| ())
        }
    })
    .await?;
    h.worker.kill9();
    let _next = h.another_worker()?;
    let done = result(&h, "drill-kill-failback")
        .await?
        .map_err(|e| anyhow::anyhow!("{e}\n{}", h.worker.log_text()))?;
    assert_eq!(
        done.phases
            .last()
            .map(|p| (p.name.as_str(), p.state.as_str())),
        Some(("failback", "succeeded")),
        "{done:#?}"
    );
    // The rebuild was finished by the second worker.
    assert_eq!(attempts(&h, "drill.rebuild").await?.last(), Some(&2));
    one_primary(&s, false).await?;
    no_locks(&h).await?;
    Ok(())
}

#[tokio::test]
async fn a_drill_does_not_run_while_a_rollout_of_the_service_holds_its_lock() -> anyhow::Result<()>
{
    let h = Harness::start("drill-lock").await?;
    let s = scene(&h, "failover", false).await?;
    // A rollout of the same service and environment, waiting for an approval: it holds
    // lock/hello/test for as long as it waits.
    let rollout = h
        .start_rollout("service: hello\nenvironment: test\nversion: \"2\"\nsteps:\n  - { name: sign-off, kind: approval }\n")
        .await?;
    wait_for(
        Duration::from_secs(30),
        "the rollout to take the lock",
        || {
            let client = h.client().clone();
            let id = rollout.clone();
            async move {
                let st = cutover_tests::status(&client, &id).await?;
                st.steps[0].started_at.map(|_| ())
            }
        },
    )
    .await?;
    start(&h, &s.plan).await?;
    let failure = result(&h, "drill-locked")
        .await?
        .expect_err("the drill must not run");
    assert!(
        failure.starts_with(&format!(
            "lock: hello/test is busy: rollout {rollout} (run "
        )),
        "{failure}"
    );
    assert!(failure.ends_with("nothing was touched"), "{failure}");
    // `cutover locks` says who holds what.
    let locks = cutover_tests::cutover_json(
        h.dir.path(),
        Some(&h.server.address),
        &["locks", "--output", "json"],
    )?;
    assert_eq!(locks[0]["lock"], "lock/hello/test", "{locks}");
    assert_eq!(locks[0]["holder"], rollout.as_str());
    assert_eq!(locks[0]["kind"], "rollout");
    assert_eq!(locks[0]["state"], "held");
    // Nothing was touched: the primary is the primary, the standby streams, the app on it.
    one_primary(&s, true).await?;

    // The rollout ends without a goodbye (terminated): its lock is stale and the next drill
    // takes it over.
    h.client()
        .get_workflow_handle::<cutover_workflows::RolloutWorkflow>(rollout.clone())
        .terminate(
            temporalio_client::WorkflowTerminateOptions::builder()
                .reason("test: the holder dies")
                .build(),
        )
        .await?;
    let out = cutover_tests::cutover(h.dir.path(), Some(&h.server.address), &["locks"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("lock/hello/test") && text.contains("stale"),
        "{text}"
    );
    start(&h, &s.plan).await?;
    let done = result(&h, "drill-lock-taken-over")
        .await?
        .map_err(|e| anyhow::anyhow!("{e}\n{}", h.worker.log_text()))?;
    assert_eq!(done.phases[0].name, "preflight", "{done:#?}");
    one_primary(&s, false).await?;
    no_locks(&h).await?;
    Ok(())
}
