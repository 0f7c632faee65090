//! Drills on a calendar: `cutover drill schedule …` against a real dev server's Temporal
//! Schedules, running real drills on a PostgreSQL primary and standby.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use cutover_tests::drill::scene;
use cutover_tests::{Harness, wait_for, write_file};
use cutover_workflows::drill::DrillWorkflow;
use temporalio_client::WorkflowGetResultOptions;

fn cli(h: &Harness, args: &[&str]) -> (bool, String) {
    let mut all = args.to_vec();
    all.extend(["--task-queue", h.queue.as_str()]);
    let out = cutover_tests::cutover(h.dir.path(), Some(&h.server.address), &all);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn describe(h: &Harness, name: &str) -> anyhow::Result<serde_json::Value> {
    let (ok, text) = cli(
        h,
        &["drill", "schedule", "describe", name, "--output", "json"],
    );
    anyhow::ensure!(ok, "{text}");
    Ok(serde_json::from_str(&text)?)
}

/// The workflow ID of the schedule's first run, once it has one.
async fn first_run(h: &Harness, name: &str) -> anyhow::Result<String> {
    wait_for(Duration::from_secs(30), "the schedule's first run", || {
        let d = describe(h, name).ok();
        async move {
            d.and_then(|d| {
                d["recent_runs"][0]["workflow_id"]
                    .as_str()
                    .map(str::to_owned)
            })
        }
    })
    .await
}

#[tokio::test]
async fn a_scheduled_drill_runs_when_triggered_is_reported_and_a_paused_one_does_not_run()
-> anyhow::Result<()> {
    let h = Harness::start("drill-schedule").await?;
    let s = scene(&h, "failover", false).await?;
    let plan = write_file(h.dir.path(), "drill.yaml", &s.plan);
    let plan = plan.to_str().context("path")?;

    // Bad input changes nothing.
    for (name, cron, extra, expect) in [
        ("weekly", "0 3 * * 9", None, "DayOfWeek is not in range"),
        ("Weekly!", "0 3 * * 1", None, "is not a schedule name"),
        ("weekly", "0 3 * * 1", Some("1s"), "under 10s"),
        ("weekly", "0 3 * *", None, "has 4 fields"),
    ] {
        let mut args = vec!["drill", "schedule", "create", name, "--cron", cron, plan];
        if let Some(window) = extra {
            args.extend(["--catchup-window", window]);
        }
        let (ok, text) = cli(&h, &args);
        assert!(!ok && text.contains(expect), "{args:?}: {text}");
    }
    let (ok, text) = cli(&h, &["drill", "schedule", "list"]);
    assert!(ok && text.contains("no drill schedules"), "{text}");

    // Weekly, Mondays 03:00 UTC; triggered now.
    let (ok, text) = cli(
        &h,
        &[
            "drill",
            "schedule",
            "create",
            "weekly",
            "--cron",
            "0 3 * * 1",
            plan,
        ],
    );
    assert!(ok, "{text}");
    assert!(text.contains("next run "), "{text}");
    let d = describe(&h, "weekly")?;
    assert_eq!(d["overlap"], "skip");
    assert_eq!(d["catchup_window_s"], 3600);
    assert_eq!(d["cron"], "0 3 * * 1");
    assert!(
        d["next_runs"][0]
            .as_str()
            .is_some_and(|t| t.ends_with("03:00:00 UTC")),
        "{d:#}"
    );
    let (ok, text) = cli(&h, &["drill", "schedule", "trigger", "weekly"]);
    assert!(ok, "{text}");
    let run = first_run(&h, "weekly").await?;
    assert!(run.starts_with("drill/hello/test/db-"), "{run}");
    let status = h
        .client()
        .get_workflow_handle::<DrillWorkflow>(run.clone())
        .get_result(WorkflowGetResultOptions::default())
        .await?;
    // An asynchronous failover may lose a marker against an RPO of 0: passed or missed.
    assert!(
        status.state == "passed" || status.state == "missed",
        "{status:#?}"
    );
    let out = cutover_tests::cutover(h.dir.path(), None, &["drill", "report", "--output", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report[0]["workflow_id"], run.as_str(), "{report:#}");
    assert_eq!(report[0]["state"], status.state.as_str());

    // Paused before its first run: the run does not happen. Its drill could not pass preflight
    // (the standby URL is a closed port), so even a run that should not happen touches nothing.
    let closed = cutover_tests::free_port()?;
    write_file(
        h.dir.path(),
        "closed_url",
        &format!("postgres://postgres@127.0.0.1:{closed}/postgres"),
    );
    let guarded = s
        .plan
        .replace("drill: db", "drill: guarded")
        .replace("standby_url", "closed_url");
    let guarded = write_file(h.dir.path(), "guarded.yaml", &guarded);
    // Every 10 s, the first run about 6 s from now.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs();
    let cron = format!("@every 10s/{}s", (now + 6) % 10);
    let (ok, text) = cli(
        &h,
        &[
            "drill",
            "schedule",
            "create",
            "guarded",
            "--cron",
            &cron,
            guarded.to_str().context("path")?,
        ],
    );
    assert!(ok, "{text}");
    let (ok, text) = cli(
        &h,
        &[
            "drill",
            "schedule",
            "pause",
            "guarded",
            "--note",
            "change freeze",
        ],
    );
    assert!(ok, "{text}");
    let d = describe(&h, "guarded")?;
    assert_eq!(d["paused"], true);
    assert_eq!(d["note"], "change freeze");
    assert_eq!(d["runs"], 0, "it ran before the pause: {d:#}");
    // The server's own next due time, plus 3 s of slack: then it would have run.
    let due = chrono::NaiveDateTime::parse_from_str(
        d["next_runs"][0].as_str().context("next run")?,
        "%Y-%m-%d %H:%M:%S UTC",
    )?
    .and_utc();
    let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(3);
    tokio::time::sleep(wait).await;
    let d = describe(&h, "guarded")?;
    assert_eq!(d["runs"], 0, "a paused schedule ran: {d:#}");
    assert_eq!(d["recent_runs"], serde_json::json!([]));
    // Unpaused, it runs at its next time (the control: the wait above could have seen a run).
    let (ok, text) = cli(&h, &["drill", "schedule", "unpause", "guarded"]);
    assert!(ok, "{text}");
    let run = first_run(&h, "guarded").await?;
    assert!(run.starts_with("drill/hello/test/guarded-"), "{run}");

    let (ok, text) = cli(&h, &["drill", "schedule", "list"]);
    assert!(ok, "{text}");
    assert!(text.contains("weekly") && text.contains("active"), "{text}");
    for name in ["weekly", "guarded"] {
        let (ok, text) = cli(&h, &["drill", "schedule", "delete", name]);
        assert!(ok, "{text}");
    }
    let (ok, text) = cli(&h, &["drill", "schedule", "describe", "weekly"]);
    assert!(!ok && text.contains("no schedule named `weekly`"), "{text}");
    Ok(())
}
