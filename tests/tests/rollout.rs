//! RolloutWorkflow end to end: a real dev server per test, the real `cutover-worker` binary,
//! steps that really run commands. Marker files count what ran.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use cutover_client::{StartError, start_rollout};
use cutover_tests::{DevServer, Harness, outcome, plan, status, unique_queue, wait_for};
use cutover_workflows::contracts::StepOutput;
use cutover_workflows::status::{RolloutState, StepState};
use temporalio_client::errors::WorkflowGetResultError;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn steps_run_in_order_and_status_shows_their_timings() -> anyhow::Result<()> {
    let h = Harness::start("order").await?;
    let id = h
        .start_rollout(&format!(
            r#"
service: order
environment: test
version: "1"
steps:
  - {{ name: first, kind: command, command: sh, args: ["-c", "echo first >> order.txt"], workdir: "{d}" }}
  - {{ name: second, kind: command, command: sh, args: ["-c", "sleep 0.2; echo second >> order.txt"], workdir: "{d}" }}
  - {{ name: third, kind: command, command: sh, args: ["-c", "echo third >> order.txt"], workdir: "{d}" }}
"#,
            d = h.dir_str()
        ))
        .await?;
    assert_eq!(id, "rollout/order/test");
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert_eq!(
        lines(&h.dir.path().join("order.txt")),
        ["first", "second", "third"]
    );

    let st = status(h.client(), &id).await.context("status query")?;
    assert_eq!(st.state, RolloutState::Succeeded);
    assert_eq!(st.current_step, None);
    let names: Vec<&str> = st.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["first", "second", "third"]);
    for pair in st.steps.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(a.state, StepState::Succeeded);
        assert!(a.finished_at.is_some() && b.started_at.is_some());
        assert!(
            a.finished_at <= b.started_at,
            "{} ended after {} started",
            a.name,
            b.name
        );
    }
    for step in &st.steps {
        assert_eq!(step.attempts, 1);
        assert!(step.started_at <= step.finished_at);
    }
    assert!(
        st.steps[1].duration_ms().unwrap_or(0) >= 200,
        "second step slept 200ms"
    );
    assert_eq!(summary.steps.len(), 3);
    assert!(summary.steps.iter().all(|s| s.duration_ms.is_some()));
    h.shutdown().await
}

#[tokio::test]
async fn a_step_that_fails_twice_is_retried_and_status_shows_three_attempts() -> anyhow::Result<()>
{
    let h = Harness::start("retry").await?;
    let id = h
        .start_rollout(&format!(
            r#"
service: retry
environment: test
version: "1"
steps:
  - name: flaky
    kind: command
    command: sh
    args: ["-c", "echo x >> tries; [ $(wc -l < tries) -ge 3 ] || {{ echo not yet >&2; exit 7; }}"]
    workdir: "{d}"
    retry: {{ initial_interval: 100ms, backoff_coefficient: 2, maximum_attempts: 5 }}
"#,
            d = h.dir_str()
        ))
        .await?;
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert_eq!(lines(&h.dir.path().join("tries")).len(), 3);
    let st = status(h.client(), &id).await.context("status")?;
    let step = &st.steps[0];
    assert_eq!(step.attempts, 3);
    assert_eq!(step.max_attempts, 5);
    assert_eq!(step.state, StepState::Succeeded);
    let err = step
        .last_error
        .as_ref()
        .context("the failures are remembered")?;
    assert_eq!(err.kind, "CommandFailed");
    assert!(
        err.message.contains("exited with code 7"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("not yet"),
        "stderr tail: {}",
        err.message
    );
    h.shutdown().await
}

#[tokio::test]
async fn a_non_retryable_failure_fails_the_rollout_naming_the_step() -> anyhow::Result<()> {
    let h = Harness::start("fatal").await?;
    // The activity knows a missing program cannot succeed on retry.
    let id = h
        .start_rollout(&format!(
            r#"
service: fatal
environment: test
version: "1"
steps:
  - {{ name: tool, kind: command, command: no-such-program-cutover }}
  - {{ name: never, kind: command, command: touch, args: [never-ran], workdir: "{d}" }}
"#,
            d = h.dir_str()
        ))
        .await?;
    let Err(WorkflowGetResultError::Failed(failure)) = outcome(h.client(), &id).await else {
        panic!("the rollout should fail");
    };
    let message = &failure.failure().message;
    assert!(
        message.starts_with("step `tool` failed after 1 attempt: CommandNotFound: cannot run `no-such-program-cutover`"),
        "{message}"
    );
    assert!(
        !h.dir.path().join("never-ran").exists(),
        "later steps must not run"
    );
    let st = status(h.client(), &id).await.context("status")?;
    assert_eq!(st.state, RolloutState::Failed);
    assert_eq!(st.steps[0].state, StepState::Failed);
    assert_eq!(st.steps[0].attempts, 1);
    assert_eq!(st.steps[1].state, StepState::Pending);
    assert_eq!(st.reason.as_deref(), Some(message.as_str()));

    // The plan can make an otherwise retryable kind final.
    let id = h
        .start_rollout(
            r#"
service: fatal2
environment: test
version: "1"
steps:
  - name: exits
    kind: command
    command: "false"
    retry: { initial_interval: 100ms, maximum_attempts: 5, non_retryable: [CommandFailed] }
"#,
        )
        .await?;
    assert!(matches!(
        outcome(h.client(), &id).await,
        Err(WorkflowGetResultError::Failed(_))
    ));
    let st = status(h.client(), &id).await.context("status")?;
    assert_eq!(
        st.steps[0].attempts, 1,
        "CommandFailed was listed as non-retryable"
    );
    h.shutdown().await
}

#[tokio::test]
async fn a_worker_killed_mid_build_is_replaced_and_nothing_runs_twice() -> anyhow::Result<()> {
    let mut h = Harness::start("crash").await?;
    let id = h
        .start_rollout(&format!(
            r#"
service: crash
environment: test
version: "1"
steps:
  - {{ name: prepare, kind: command, command: sh, args: ["-c", "echo x >> prepare.count"], workdir: "{d}" }}
  - name: build
    kind: build
    command: sh
    args: ["-c", "date +%s%N >> build.starts; sleep 3; echo ok > artifact.bin"]
    workdir: "{d}"
    artifact: artifact.bin
    timeout: 2m
    heartbeat_timeout: 2s
    retry: {{ initial_interval: 100ms, maximum_attempts: 3 }}
  - {{ name: after, kind: command, command: sh, args: ["-c", "echo x >> after.count"], workdir: "{d}" }}
"#,
            d = h.dir_str()
        ))
        .await?;
    let starts = h.dir.path().join("build.starts");
    wait_for(Duration::from_secs(30), "the build to start", || {
        let n = lines(&starts).len();
        async move { (n == 1).then_some(()) }
    })
    .await?;
    let killed_at = now_nanos();
    h.worker.kill9();

    let _second = h.another_worker()?;
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);

    assert_eq!(
        lines(&h.dir.path().join("prepare.count")).len(),
        1,
        "completed steps are not re-run"
    );
    assert_eq!(lines(&h.dir.path().join("after.count")).len(), 1);
    let build_starts: Vec<u128> = lines(&starts)
        .iter()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert_eq!(build_starts.len(), 2, "the build ran once per worker");
    let waited = Duration::from_nanos((build_starts[1] - killed_at) as u64);
    assert!(
        waited >= Duration::from_millis(1500),
        "the build was re-run {waited:?} after the kill; it must wait for the 2s heartbeat timeout"
    );
    assert!(
        waited < Duration::from_secs(60),
        "re-run came only after {waited:?}: the heartbeat timeout, not the 2m step timeout, must trigger it"
    );

    let st = status(h.client(), &id).await.context("status")?;
    let build = &st.steps[1];
    assert_eq!(build.attempts, 2);
    assert_eq!(
        build.last_error.as_ref().map(|e| e.kind.as_str()),
        Some("Timeout")
    );
    let Some(StepOutput::Build(out)) = &build.output else {
        panic!("build output expected, got {:?}", build.output)
    };
    let artifact = out.artifact.as_ref().context("artifact")?;
    assert_eq!(artifact.size, 3);
    // Checked against coreutils' sha256sum, an independent implementation.
    assert_eq!(
        artifact.sha256,
        sha256sum(&h.dir.path().join("artifact.bin"))
    );
    h.shutdown().await
}

#[tokio::test]
async fn a_second_rollout_of_the_same_service_and_environment_is_refused() -> anyhow::Result<()> {
    let server = DevServer::start().await?;
    let queue = unique_queue("dup");
    // No worker: the first rollout stays running, which is all this test needs.
    let plan = plan(
        r#"
service: dup
environment: prod
version: "1"
steps:
  - { name: wait, kind: command, command: sleep, args: ["60"] }
"#,
    );
    let first = start_rollout(server.client(), &plan, &queue, None).await?;
    match start_rollout(server.client(), &plan, &queue, None).await {
        Err(StartError::AlreadyRunning {
            workflow_id,
            run_id,
        }) => {
            assert_eq!(workflow_id, "rollout/dup/prod");
            assert_eq!(run_id, first.run_id, "the refusal names the running run");
        }
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    server.shutdown().await
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn sha256sum(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}
