//! The worker process: graceful shutdown, JSON logs, and interoperability with the standard
//! `temporal` CLI.

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use cutover_tests::{Harness, outcome, status, temporal_cli, wait_for};
use cutover_workflows::status::RolloutState;

#[tokio::test]
async fn sigterm_lets_the_running_step_finish_before_the_worker_exits() -> anyhow::Result<()> {
    let mut h = Harness::start("drain").await?;
    let id = h
        .start_rollout(&format!(
            "service: drain\nenvironment: test\nversion: \"1\"\nsteps:\n  - {{ name: slow, kind: command, command: sh, args: [\"-c\", \"touch started; sleep 2; echo x >> finished\"], workdir: \"{}\" }}\n  - {{ name: next, kind: command, command: \"true\" }}\n",
            h.dir_str()
        ))
        .await?;
    let marker = h.dir.path().join("started");
    wait_for(Duration::from_secs(30), "the slow step to start", || {
        let exists = marker.exists();
        async move { exists.then_some(()) }
    })
    .await?;
    let exit = h.worker.terminate(Duration::from_secs(15)).await?;
    assert!(
        exit.success(),
        "the worker should exit cleanly on SIGTERM: {exit:?}\n{}",
        h.worker.log_text()
    );
    let finished = || std::fs::read_to_string(h.dir.path().join("finished")).unwrap_or_default();
    assert_eq!(
        finished().lines().count(),
        1,
        "the running step finished instead of being killed"
    );

    // The drained result was recorded: a new worker carries on without re-running the step.
    let _next = h.another_worker()?;
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert_eq!(summary.steps[0].attempts, 1);
    assert_eq!(finished().lines().count(), 1);
    h.shutdown().await
}

#[tokio::test]
async fn json_logs_carry_rollout_and_step_on_every_output_line() -> anyhow::Result<()> {
    let h = Harness::start_with("json", &["--log-format", "json"]).await?;
    let id = h
        .start_rollout("service: logs\nenvironment: test\nversion: \"1\"\nsteps:\n  - { name: talk, kind: command, command: sh, args: [\"-c\", \"echo hello-from-step; echo oops >&2\"] }\n")
        .await?;
    outcome(h.client(), &id).await?;
    let log = h.worker.log_text();
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "hello-from-step")
        .with_context(|| format!("no JSON line for the step's output in:\n{log}"))?;
    assert_eq!(line["rollout"], "rollout/logs/test");
    assert_eq!(line["step"], "talk");
    assert_eq!(line["stream"], "stdout");
    h.shutdown().await
}

#[tokio::test]
async fn the_temporal_cli_can_query_and_find_rollouts() -> anyhow::Result<()> {
    let h = Harness::start("cli-interop").await?;
    let id = h
        .start_rollout("service: interop\nenvironment: test\nversion: \"7.1\"\nsteps:\n  - { name: one, kind: command, command: \"true\" }\n")
        .await?;
    outcome(h.client(), &id).await?;
    assert!(status(h.client(), &id).await.is_some());
    let address = h.server.address.clone();

    let temporal = temporal_cli()?;
    let query = Command::new(&temporal)
        .args([
            "workflow",
            "query",
            "--address",
            &address,
            "-w",
            &id,
            "--type",
            "status",
            "-o",
            "json",
        ])
        .output()?;
    assert!(
        query.status.success(),
        "{}",
        String::from_utf8_lossy(&query.stderr)
    );
    let text = String::from_utf8_lossy(&query.stdout);
    assert!(
        text.contains("\"state\"") && text.contains("succeeded"),
        "{text}"
    );

    let listed = wait_for(
        Duration::from_secs(20),
        "visibility to list the rollout",
        || {
            let out = Command::new(&temporal)
                .args([
                    "workflow",
                    "list",
                    "--address",
                    &address,
                    "--query",
                    "CutoverService = 'interop' AND CutoverVersion = '7.1'",
                    "-o",
                    "json",
                ])
                .output();
            async move {
                let text = String::from_utf8_lossy(&out.ok()?.stdout).into_owned();
                text.contains("rollout/interop/test").then_some(text)
            }
        },
    )
    .await?;
    assert!(listed.contains("RolloutWorkflow"), "{listed}");
    h.shutdown().await
}

#[tokio::test]
async fn the_worker_registers_missing_search_attributes_on_a_fresh_cluster() -> anyhow::Result<()> {
    let server = cutover_tests::DevServer::start_bare().await?;
    let dir = tempfile::tempdir()?;
    let queue = cutover_tests::unique_queue("attrs");
    let plan = cutover_tests::plan(
        "service: fresh\nenvironment: test\nversion: \"1\"\nsteps:\n  - { name: one, kind: command, command: \"true\" }\n",
    );
    let refused = cutover_client::start_rollout(server.client(), &plan, &queue, None).await;
    assert!(
        matches!(
            refused,
            Err(cutover_client::StartError::SearchAttributesMissing)
        ),
        "a fresh cluster lacks them: {refused:?}"
    );
    let worker = cutover_tests::WorkerProcess::spawn(&server.address, &queue, dir.path())?;
    wait_for(
        Duration::from_secs(30),
        "the worker to register the search attributes",
        || {
            let log = worker.log_text();
            async move {
                log.contains("registered Cutover's search attributes")
                    .then_some(())
            }
        },
    )
    .await?;
    let started = cutover_client::start_rollout(server.client(), &plan, &queue, None).await?;
    outcome(server.client(), &started.workflow_id).await?;
    drop(worker);
    server.shutdown().await
}

/// Starts a workflow the way another client would: the `temporal` CLI with raw JSON.
fn start_raw(
    h: &Harness,
    workflow_type: &str,
    id: &str,
    input: &serde_json::Value,
) -> anyhow::Result<()> {
    let out = Command::new(temporal_cli()?)
        .args(["workflow", "start", "--type", workflow_type])
        .args(["--address", &h.server.address, "--task-queue", &h.queue])
        .args(["--workflow-id", id, "--input", &input.to_string()])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "temporal workflow start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Bad input from any client fails the rollout at once, non-retryably, naming the field,
/// instead of failing its first workflow task forever.
#[tokio::test]
async fn a_malformed_input_from_another_client_fails_at_once_naming_the_field() -> anyhow::Result<()>
{
    let h = Harness::start("bad-input").await?;
    let mut valid = serde_json::to_value(cutover_tests::plan(
        "service: fine\nenvironment: test\nversion: \"1\"\nsteps:\n  - { name: a, kind: command, command: \"true\" }\n",
    ))?;
    let cases = [
        (
            "rollout/missing/test",
            serde_json::json!({ "service": "missing", "environment": "test" }),
            "missing field `version`",
        ),
        (
            "rollout/wrongtype/test",
            serde_json::json!({ "service": "wrongtype", "environment": "test", "version": "1", "steps": "all of them" }),
            "steps: invalid type: string",
        ),
        (
            "rollout/badname/test",
            {
                valid["service"] = serde_json::json!("Bad Name!");
                valid.clone()
            },
            "service: `Bad Name!` is not a valid name",
        ),
    ];
    for (id, input, expect) in cases {
        start_raw(&h, "RolloutWorkflow", id, &input)?;
        let ended = tokio::time::timeout(Duration::from_secs(20), outcome(h.client(), id))
            .await
            .with_context(|| format!("{id} did not end within 20 s"))?;
        let err = format!("{:?}", ended.expect_err("an invalid input must fail"));
        assert!(err.contains(expect), "{id}: {err}");
        assert!(err.contains("InvalidInput"), "{id}: {err}");
        let s = status(h.client(), id).await.context("status answers")?;
        assert_eq!(s.state, RolloutState::Failed);
        assert!(s.reason.is_some_and(|r| r.contains(expect)), "{id}");
    }
    // A drill too: it fails at once and touches nothing.
    let id = "drill/bad/test/x";
    start_raw(
        &h,
        "DrillWorkflow",
        id,
        &serde_json::json!({ "drill": "x", "service": "bad", "environment": "test", "mode": "sideways" }),
    )?;
    let handle = h
        .client()
        .get_workflow_handle::<cutover_workflows::drill::DrillWorkflow>(id.to_owned());
    let ended = tokio::time::timeout(
        Duration::from_secs(20),
        handle.get_result(temporalio_client::WorkflowGetResultOptions::default()),
    )
    .await
    .context("the drill did not end within 20 s")?;
    let err = format!("{:?}", ended.expect_err("an invalid drill must fail"));
    assert!(err.contains("mode: unknown variant `sideways`"), "{err}");
    assert!(err.contains("InvalidInput"), "{err}");
    h.shutdown().await
}

/// After a SIGKILL the step's attempt is lost to a missed heartbeat, which is already at least
/// `heartbeat_timeout` old: a backoff no longer than that is not waited again. The history
/// shows no timer between the timeout and the next attempt (the server fires short timers
/// about a second late, which was most of what a crash cost beyond the heartbeat timeout).
#[tokio::test]
async fn a_step_lost_to_a_killed_worker_is_retried_without_another_backoff() -> anyhow::Result<()> {
    let mut h = Harness::start("crash-retry").await?;
    let id = h
        .start_rollout(&format!(
            "service: crashretry\nenvironment: test\nversion: \"1\"\nsteps:\n  - {{ name: slow, kind: command, command: sh, args: [\"-c\", \"echo x >> runs; sleep 2\"], workdir: \"{}\", heartbeat_timeout: 2s, retry: {{ initial_interval: 1s, maximum_attempts: 3 }} }}\n",
            h.dir_str()
        ))
        .await?;
    let runs = h.dir.path().join("runs");
    wait_for(
        Duration::from_secs(30),
        "the first attempt to start",
        || {
            let there = runs.exists();
            async move { there.then_some(()) }
        },
    )
    .await?;
    h.worker.kill9();
    let _next = h.another_worker()?;
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert_eq!(summary.steps[0].attempts, 2);

    let events = cutover_tests::history_events(h.client(), &id).await?;
    let types: Vec<&str> = events
        .iter()
        .filter_map(|e| {
            e["attributes"]
                .as_object()?
                .keys()
                .next()
                .map(String::as_str)
        })
        .collect();
    let timed_out = types
        .iter()
        .position(|t| t.contains("ActivityTaskTimedOut"))
        .with_context(|| format!("no activity timed out: {types:?}"))?;
    let next = types[timed_out..]
        .iter()
        .position(|t| t.contains("ActivityTaskScheduled"))
        .with_context(|| format!("no next attempt: {types:?}"))?;
    assert!(
        !types[timed_out..timed_out + next]
            .iter()
            .any(|t| t.contains("TimerStarted")),
        "a backoff timer ran after the missed heartbeat: {types:?}"
    );
    cutover_tests::replays(h.client(), &id, "crash-retry").await?;
    h.shutdown().await
}

#[tokio::test]
async fn health_probes_say_ready_once_connected_and_a_taken_port_fails_the_start()
-> anyhow::Result<()> {
    let port = cutover_tests::free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let h = Harness::start_with("health", &["--health-listen", &listen]).await?;
    let ready = format!("http://{listen}/readyz");
    wait_for(Duration::from_secs(30), "/readyz to answer 200", || {
        let ready = ready.clone();
        async move {
            let r = reqwest::get(&ready).await.ok()?;
            (r.status() == 200).then_some(())
        }
    })
    .await?;
    let live = reqwest::get(format!("http://{listen}/healthz")).await?;
    assert_eq!(live.status(), 200);

    // A second worker asking for the same port stops with a message naming the flag.
    let mut second = cutover_tests::WorkerProcess::spawn_with(
        &h.server.address,
        &h.queue,
        h.dir.path(),
        &["--health-listen", &listen],
    )?;
    let status = wait_for(Duration::from_secs(30), "the second worker to exit", || {
        let exited = second.exited();
        async move { exited }
    })
    .await?;
    assert!(!status.success());
    assert!(
        second.log_text().contains("--health-listen"),
        "{}",
        second.log_text()
    );
    h.shutdown().await
}
