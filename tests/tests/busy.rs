//! Starting while a rollout of the same service and environment runs: `--on-busy reject`
//! (the default), `queue_latest` (only the newest waiting release runs next) and `supersede`
//! (the running one rolls back, the new one runs), on a real dev server and worker.

use std::process::Output;
use std::time::Duration;

use anyhow::Context;
use cutover_tests::{Harness, count_runs, cutover, status, wait_for, write_file};
use cutover_workflows::status::RolloutState;

/// A plan of `svc` in `test` at `version`: a marker file, then an approval that waits (when
/// `held`), then a command step that records the version in `ran`.
fn plan(h: &Harness, version: &str, held: bool) -> String {
    let d = h.dir_str();
    let hold = if held {
        "  - { name: hold, kind: approval }\n"
    } else {
        ""
    };
    format!(
        "service: svc\nenvironment: test\nversion: \"{version}\"\nsteps:\n  - {{ name: mark, kind: command, command: touch, args: [\"{d}/marker-{version}\"], undo: {{ command: rm, args: [\"{d}/marker-{version}\"] }} }}\n{hold}  - {{ name: record, kind: command, command: sh, args: [\"-c\", \"echo {version} >> {d}/ran\"] }}\n"
    )
}

fn start(h: &Harness, file: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--task-queue", &h.queue, "rollout", "start", file];
    args.extend_from_slice(extra);
    cutover(h.dir.path(), Some(&h.server.address), &args)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits until rollout/svc/test waits at its approval.
async fn held(h: &Harness) -> anyhow::Result<()> {
    wait_for(Duration::from_secs(30), "the approval", || async {
        let s = status(h.client(), "rollout/svc/test").await?;
        (s.current_step.as_deref() == Some("hold")).then_some(())
    })
    .await
}

#[tokio::test]
async fn queue_latest_runs_only_the_newest_of_three_pushes_next() -> anyhow::Result<()> {
    let h = Harness::start("queue-latest").await?;
    write_file(h.dir.path(), "v1.yaml", &plan(&h, "1", true));
    let out = start(&h, "v1.yaml", &[]);
    assert!(out.status.success(), "{}", text(&out));
    held(&h).await?;

    // The default refuses, naming the running rollout and changing nothing.
    write_file(h.dir.path(), "v2.yaml", &plan(&h, "2", false));
    let out = start(&h, "v2.yaml", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("already running: rollout/svc/test"),
        "{}",
        text(&out)
    );
    let out = start(&h, "v2.yaml", &["--on-busy", "later"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("queue_latest"), "{}", text(&out));

    // Three pushes while it waits: each queued, each replacing the one before.
    for v in ["2", "3", "4"] {
        write_file(h.dir.path(), &format!("v{v}.yaml"), &plan(&h, v, false));
        let out = start(&h, &format!("v{v}.yaml"), &["--on-busy", "queue_latest"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("queued in queue/svc/test"),
            "{}",
            text(&out)
        );
    }
    assert_eq!(
        count_runs(h.client(), "rollout/svc/test").await?,
        1,
        "nothing started yet"
    );

    cutover_tests::approve(h.client(), "rollout/svc/test", "ana").await?;
    // v1 ends, then the queue starts 4 — and only 4.
    wait_for(Duration::from_secs(60), "version 4 to run", || async {
        let s = status(h.client(), "rollout/svc/test").await?;
        (s.version == "4" && s.state == RolloutState::Succeeded).then_some(())
    })
    .await?;
    let ran = std::fs::read_to_string(h.dir.path().join("ran"))?;
    assert_eq!(ran, "1\n4\n", "exactly the last push ran after the first");
    assert_eq!(count_runs(h.client(), "rollout/svc/test").await?, 2);
    assert_eq!(count_runs(h.client(), "queue/svc/test").await?, 3);
    Ok(())
}

#[tokio::test]
async fn supersede_rolls_the_running_rollout_back_and_runs_the_new_one() -> anyhow::Result<()> {
    let h = Harness::start("supersede").await?;
    write_file(h.dir.path(), "v1.yaml", &plan(&h, "1", true));
    let out = start(&h, "v1.yaml", &[]);
    assert!(out.status.success(), "{}", text(&out));
    held(&h).await?;
    assert!(h.dir.path().join("marker-1").exists());

    write_file(h.dir.path(), "v2.yaml", &plan(&h, "2", false));
    let out = start(&h, "v2.yaml", &["--on-busy", "supersede", "--wait"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("is being aborted"), "{}", text(&out));

    // v1 was rolled back (its marker undone) before v2 ran; v2 succeeded.
    assert!(
        !h.dir.path().join("marker-1").exists(),
        "v1's step was undone"
    );
    assert!(h.dir.path().join("marker-2").exists());
    assert_eq!(std::fs::read_to_string(h.dir.path().join("ran"))?, "2\n");
    let s = status(h.client(), "rollout/svc/test")
        .await
        .context("status")?;
    assert_eq!(
        (s.version.as_str(), s.state),
        ("2", RolloutState::Succeeded)
    );
    let list = cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "list", "--service", "svc", "--output", "json"],
    );
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout)?;
    let states: Vec<&str> = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(states, ["completed", "rolled_back"], "{rows}");
    Ok(())
}

/// A plan of `svc` in `frozen` with one command step and a freeze window `[from, until)`.
fn frozen_plan(
    h: &Harness,
    from: chrono::DateTime<chrono::Utc>,
    secs: i64,
    during: &str,
) -> String {
    let d = h.dir_str();
    let until = from + chrono::Duration::seconds(secs);
    format!(
        "service: svc\nenvironment: frozen\nversion: \"1\"\nfreeze:\n  - {{ name: year-end, from: \"{}\", until: \"{}\", during: {during} }}\nsteps:\n  - {{ name: record, kind: command, command: sh, args: [\"-c\", \"date +%s >> {d}/ran\"] }}\n",
        from.to_rfc3339(),
        until.to_rfc3339()
    )
}

#[tokio::test]
async fn a_start_inside_a_freeze_is_refused_and_an_override_is_recorded() -> anyhow::Result<()> {
    let h = Harness::start("freeze").await?;
    let now = chrono::Utc::now();
    write_file(
        h.dir.path(),
        "f.yaml",
        &frozen_plan(&h, now - chrono::Duration::hours(1), 7200, "refuse"),
    );
    let out = start(&h, "f.yaml", &["--wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("freeze window `year-end` is on until")
            && text(&out).contains("--override-freeze"),
        "{}",
        text(&out)
    );
    assert!(!h.dir.path().join("ran").exists(), "nothing ran");

    // An empty reason is refused before anything starts.
    let out = start(&h, "f.yaml", &["--override-freeze", " "]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let out = start(
        &h,
        "f.yaml",
        &["--override-freeze", "hotfix for INC-42", "--wait"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(h.dir.path().join("ran").exists());
    let s = status(h.client(), "rollout/svc/frozen")
        .await
        .context("status")?;
    let action = s
        .actions
        .iter()
        .find(|a| a.action == "override_freeze")
        .context("the override is recorded")?;
    let reason = action.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("year-end") && reason.contains("hotfix for INC-42"),
        "{reason}"
    );
    // … and in the ledger's audit trail.
    let ledger = format!("sqlite://{}/.cutover/ledger.db", h.dir_str());
    wait_for(
        Duration::from_secs(30),
        "the override in the audit trail",
        || async {
            let out = cutover(
                h.dir.path(),
                None,
                &["audit", "--output", "json", "--ledger", &ledger],
            );
            let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
            rows.iter()
                .any(|r| r["action"] == "override_freeze")
                .then_some(())
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_start_inside_a_waiting_freeze_runs_when_the_window_ends() -> anyhow::Result<()> {
    let h = Harness::start("freeze-wait").await?;
    let now = chrono::Utc::now();
    let until = now + chrono::Duration::seconds(4);
    write_file(
        h.dir.path(),
        "f.yaml",
        &frozen_plan(&h, now - chrono::Duration::minutes(1), 64, "wait"),
    );
    let out = start(&h, "f.yaml", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let paused = wait_for(Duration::from_secs(10), "the freeze's pause", || async {
        let s = status(h.client(), "rollout/svc/frozen").await?;
        s.paused.filter(|p| p.by == "freeze")
    })
    .await?;
    assert!(paused.reason.contains("year-end"), "{}", paused.reason);
    wait_for(Duration::from_secs(30), "the rollout to run", || async {
        let s = status(h.client(), "rollout/svc/frozen").await?;
        (s.state == RolloutState::Succeeded).then_some(())
    })
    .await?;
    let ran: i64 = std::fs::read_to_string(h.dir.path().join("ran"))?
        .trim()
        .parse()?;
    assert!(
        ran >= until.timestamp() - 1,
        "ran at {ran}, the window ended at {}",
        until.timestamp()
    );
    Ok(())
}

#[tokio::test]
async fn a_rollout_schedule_starts_the_rollout_and_a_busy_service_refuses_a_run()
-> anyhow::Result<()> {
    let h = Harness::start("rollout-schedule").await?;
    let cli = |args: &[&str]| {
        let mut all = vec!["--task-queue", h.queue.as_str()];
        all.extend_from_slice(args);
        cutover(h.dir.path(), Some(&h.server.address), &all)
    };
    write_file(h.dir.path(), "v5.yaml", &plan(&h, "5", false));
    // Bad input changes nothing.
    let out = cli(&[
        "rollout", "schedule", "create", "nightly", "--cron", "0 3 * *", "v5.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = cli(&[
        "rollout",
        "schedule",
        "create",
        "nightly",
        "--cron",
        "0 3 * * *",
        "v5.yaml",
        "--on-busy",
        "later",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = cli(&[
        "drill",
        "schedule",
        "create",
        "nightly",
        "--cron",
        "0 3 * * *",
        "v5.yaml",
        "--on-busy",
        "supersede",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = cli(&["rollout", "schedule", "list"]);
    assert!(
        text(&out).contains("no rollout schedules"),
        "{}",
        text(&out)
    );

    let out = cli(&[
        "rollout",
        "schedule",
        "create",
        "nightly",
        "--cron",
        "0 3 * * *",
        "v5.yaml",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("rollout rollout/svc/test at 5"),
        "{}",
        text(&out)
    );
    let out = cli(&["rollout", "schedule", "list", "--output", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(rows[0]["rollout"], "rollout/svc/test", "{rows}");
    let out = cli(&["drill", "schedule", "list"]);
    assert!(
        text(&out).contains("no drill schedules"),
        "a rollout schedule is not a drill's"
    );

    // Triggered: the rollout runs under its usual ID, started by the schedule.
    let out = cli(&["rollout", "schedule", "trigger", "nightly"]);
    assert!(out.status.success(), "{}", text(&out));
    let s = wait_for(Duration::from_secs(30), "the scheduled rollout", || async {
        let s = status(h.client(), "rollout/svc/test").await?;
        (s.state == RolloutState::Succeeded).then_some(s)
    })
    .await?;
    assert_eq!(s.version, "5");
    assert_eq!(std::fs::read_to_string(h.dir.path().join("ran"))?, "5\n");
    // `succeeded` shows before the run closes (its lock is given back last); `rollout wait
    // --for done` answers once it has closed, so the next start is not refused.
    let out = cli(&[
        "rollout",
        "wait",
        "rollout/svc/test",
        "--for",
        "done",
        "--timeout",
        "30s",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    // While a rollout holds the service, a scheduled run with on_busy reject does not start.
    write_file(h.dir.path(), "v6.yaml", &plan(&h, "6", true));
    assert!(start(&h, "v6.yaml", &[]).status.success());
    held(&h).await?;
    let out = cli(&["rollout", "schedule", "trigger", "nightly"]);
    assert!(out.status.success(), "{}", text(&out));
    let refused = wait_for(Duration::from_secs(30), "the refused run", || async {
        let out = cli(&[
            "rollout", "schedule", "describe", "nightly", "--output", "json",
        ]);
        let d: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let runs = d["recent_runs"].as_array()?.clone();
        (runs.len() == 2).then_some(runs)
    })
    .await?;
    let queue_run = refused[1]["workflow_id"]
        .as_str()
        .context("a run")?
        .to_owned();
    assert!(queue_run.starts_with("queue/svc/test"), "{queue_run}");
    let handle = h
        .client()
        .get_workflow_handle::<cutover_workflows::queue::QueueWorkflow>(queue_run.clone());
    let end = handle
        .get_result(temporalio_client::WorkflowGetResultOptions::default())
        .await;
    let why = format!("{end:?}");
    assert!(why.contains("is running, and on_busy is reject"), "{why}");
    let s = status(h.client(), "rollout/svc/test")
        .await
        .context("status")?;
    assert_eq!(s.version, "6", "the running rollout was left alone");
    let out = cli(&["rollout", "schedule", "delete", "nightly"]);
    assert!(out.status.success(), "{}", text(&out));
    Ok(())
}
