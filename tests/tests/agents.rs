//! Host agents: a plan's host steps run on the agent of the host it names and nowhere else.
//!
//! Each "machine" is a scratch directory with its own `cutover-worker --host NAME` running in
//! it, against one real dev server; the orchestrating worker (no `--host`) runs the workflows
//! and the steps that may run anywhere. A step that writes a relative file so shows by where
//! the file lands which process ran it, and the history's `identity` says the same.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use cutover_tests::{
    DevServer, WorkerProcess, cutover, cutover_json, outcome, plan, replays, status, unique_queue,
    wait_for,
};
use cutover_workflows::drill::DrillWorkflow;
use cutover_workflows::status::{RolloutState, StepState};
use temporalio_client::Client;
use temporalio_client::errors::WorkflowGetResultError;

/// A dev server, an orchestrating worker in `orchestrator/`, and one directory per host.
struct Site {
    server: DevServer,
    root: tempfile::TempDir,
    queue: String,
    _orchestrator: WorkerProcess,
}

impl Site {
    async fn start(name: &str) -> anyhow::Result<Self> {
        let server = DevServer::start().await?;
        let root = tempfile::tempdir()?;
        let queue = unique_queue(name);
        std::fs::create_dir(root.path().join("orchestrator"))?;
        let orchestrator =
            WorkerProcess::spawn(&server.address, &queue, &root.path().join("orchestrator"))?;
        Ok(Self {
            server,
            root,
            queue,
            _orchestrator: orchestrator,
        })
    }

    /// The directory standing for machine `name` (created on first use).
    fn machine(&self, name: &str) -> std::path::PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).expect("a machine directory");
        dir
    }

    fn agent(&self, host: &str, extra: &[&str]) -> anyhow::Result<WorkerProcess> {
        WorkerProcess::spawn_agent(&self.server.address, host, &self.machine(host), extra)
    }

    fn client(&self) -> &Client {
        self.server.client()
    }

    async fn start_rollout(&self, text: &str) -> anyhow::Result<String> {
        let started =
            cutover_client::start_rollout(self.client(), &plan(text), &self.queue, None).await?;
        Ok(started.workflow_id)
    }
}

fn exists(dir: &Path, name: &str) -> bool {
    dir.join(name).exists()
}

#[tokio::test]
async fn host_steps_run_on_the_named_hosts_agent_and_nowhere_else() -> anyhow::Result<()> {
    let site = Site::start("agents-route").await?;
    let _web1 = site.agent("web-1", &[])?;
    let _web2 = site.agent("web-2", &[])?;
    // Both agents are listed once Temporal has seen them poll.
    let listed = wait_for(Duration::from_secs(90), "two agents listed", || {
        let out = cutover_json(
            site.root.path(),
            Some(&site.server.address),
            &["agents", "--output", "json"],
        );
        async move {
            let hosts: Vec<String> = out
                .ok()?
                .as_array()?
                .iter()
                .filter(|a| a["last_poll"].is_string() && a["polling"] == true)
                .filter_map(|a| a["host"].as_str().map(str::to_owned))
                .collect();
            (hosts.len() >= 2).then_some(hosts)
        }
    })
    .await?;
    assert_eq!(listed, ["web-1", "web-2"]);

    let id = site
        .start_rollout(
            r#"
service: routed
environment: test
version: "1"
target: { host: web-2 }
steps:
  - { name: on-host, kind: command, command: sh, args: ["-c", "echo here > placed"], on: host }
  - { name: anywhere, kind: command, command: sh, args: ["-c", "echo here > plain"] }
"#,
        )
        .await?;
    let summary = outcome(site.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert!(exists(&site.machine("web-2"), "placed"), "ran on web-2");
    assert!(!exists(&site.machine("web-1"), "placed"), "not on web-1");
    assert!(!exists(&site.machine("orchestrator"), "placed"));
    assert!(exists(&site.machine("orchestrator"), "plain"));
    assert!(!exists(&site.machine("web-2"), "plain"));

    let started = cutover_tests::activities_started(site.client(), &id).await?;
    let on_host: Vec<_> = started
        .iter()
        .filter(|(queue, _, _)| queue == "cutover-host-web-2")
        .collect();
    assert_eq!(on_host.len(), 1, "one host activity: {started:?}");
    for (queue, identity, _) in &started {
        assert_eq!(
            identity.starts_with("cutover-agent/web-2/"),
            queue == "cutover-host-web-2",
            "only web-2's agent ran web-2's work, and nothing else: {started:?}"
        );
    }
    let st = status(site.client(), &id).await.context("status")?;
    assert_eq!(st.steps[0].host.as_deref(), Some("web-2"));
    assert_eq!(st.steps[1].host, None);
    replays(site.client(), &id, "agents-routed").await?;
    site.server.shutdown().await
}

#[tokio::test]
async fn a_step_waits_visibly_for_its_host_then_runs_when_the_agent_comes() -> anyhow::Result<()> {
    let site = Site::start("agents-wait").await?;
    let id = site
        .start_rollout(
            r#"
service: waits
environment: test
version: "1"
target: { host: web-3 }
steps:
  - { name: on-host, kind: command, command: sh, args: ["-c", "echo here > placed"], on: host }
"#,
        )
        .await?;
    let address = site.server.address.clone();
    let dir = site.root.path().to_owned();
    let waiting = wait_for(
        Duration::from_secs(30),
        "the status to say it waits",
        || {
            let out = cutover_json(
                &dir,
                Some(&address),
                &["rollout", "status", &id, "--output", "json"],
            );
            async move { out.ok()?["waiting_for_host"].as_str().map(str::to_owned) }
        },
    )
    .await?;
    assert!(
        waiting.starts_with("waiting for host web-3 (no agent has polled cutover-host-web-3"),
        "{waiting}"
    );
    assert!(waiting.contains("cutover-worker --host web-3"), "{waiting}");
    // The human form says the same.
    let text = cutover(&dir, Some(&address), &["rollout", "status", &id]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("waiting for host web-3"), "{stdout}");
    assert!(!exists(&site.machine("orchestrator"), "placed"));

    let _web3 = site.agent("web-3", &[])?;
    let summary = outcome(site.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert!(exists(&site.machine("web-3"), "placed"));
    assert!(!exists(&site.machine("orchestrator"), "placed"));
    replays(site.client(), &id, "agents-waited").await?;
    site.server.shutdown().await
}

#[tokio::test]
async fn a_host_that_never_comes_fails_the_step_as_host_unavailable() -> anyhow::Result<()> {
    let site = Site::start("agents-absent").await?;
    // An agent of another host is up: it must not take web-9's work.
    let _web1 = site.agent("web-1", &[])?;
    let id = site
        .start_rollout(
            r#"
service: absent
environment: test
version: "1"
target: { host: web-9 }
on_failure: fail
steps:
  - name: on-host
    kind: command
    command: sh
    args: ["-c", "echo here > placed"]
    on: host
    schedule_to_start_timeout: 2s
    retry: { maximum_attempts: 5, initial_interval: 100ms }
"#,
        )
        .await?;
    let failed = match outcome(site.client(), &id).await {
        Err(WorkflowGetResultError::Failed(f)) => f.failure().message.clone(),
        other => anyhow::bail!("expected the rollout to fail, got {other:?}"),
    };
    assert!(failed.contains("HostUnavailable"), "{failed}");
    let st = status(site.client(), &id).await.context("status")?;
    let step = &st.steps[0];
    assert_eq!(step.state, StepState::Failed);
    assert_eq!(step.attempts, 1, "an absent host is not retried");
    let err = step.last_error.as_ref().context("an error")?;
    assert_eq!(err.kind, "HostUnavailable");
    assert!(
        err.message.contains("web-9") && err.message.contains("cutover-worker --host web-9"),
        "{}",
        err.message
    );
    for machine in ["orchestrator", "web-1", "web-9"] {
        assert!(
            !exists(&site.machine(machine), "placed"),
            "ran on {machine}"
        );
    }
    replays(site.client(), &id, "agents-absent").await?;
    site.server.shutdown().await
}

#[tokio::test]
async fn an_agent_killed_mid_step_is_replaced_and_the_step_finishes_once() -> anyhow::Result<()> {
    let site = Site::start("agents-crash").await?;
    let mut first = site.agent("web-2", &[])?;
    let id = site
        .start_rollout(
            r#"
service: crash
environment: test
version: "1"
target: { host: web-2 }
steps:
  - name: on-host
    kind: command
    command: sh
    args: ["-c", "echo run >> runs; touch started; sleep 3; echo done >> finished"]
    on: host
    heartbeat_timeout: 2s
    retry: { initial_interval: 100ms }
"#,
        )
        .await?;
    let machine = site.machine("web-2");
    let started = machine.join("started");
    wait_for(
        Duration::from_secs(30),
        "the step to start on web-2",
        || {
            let there = started.exists();
            async move { there.then_some(()) }
        },
    )
    .await?;
    first.kill9();
    let _second = site.agent("web-2", &[])?;
    let summary = outcome(site.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    let read = |name: &str| std::fs::read_to_string(machine.join(name)).unwrap_or_default();
    assert_eq!(
        read("runs").lines().count(),
        2,
        "the killed attempt was retried"
    );
    assert_eq!(read("finished").lines().count(), 1, "and finished once");
    assert!(!exists(&site.machine("orchestrator"), "runs"));
    let st = status(site.client(), &id).await.context("status")?;
    assert_eq!(st.steps[0].attempts, 2);
    replays(site.client(), &id, "agents-crash").await?;
    site.server.shutdown().await
}

#[tokio::test]
async fn a_bad_host_name_is_refused_before_the_agent_connects() {
    let dir = tempfile::tempdir().expect("a directory");
    // No server at this address: the flag must be refused before any connection is tried.
    for bad in ["../etc", "", "web 2", "x".repeat(300).as_str()] {
        let out = std::process::Command::new(cutover_tests::bin("cutover-worker"))
            .args(["--address", "127.0.0.1:1", "--host", bad])
            .current_dir(dir.path())
            .output()
            .expect("running cutover-worker");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains("--host"), "{bad:?}: {stderr}");
    }
    let out = std::process::Command::new(cutover_tests::bin("cutover-worker"))
        .args([
            "--address",
            "127.0.0.1:1",
            "--host",
            "web-1",
            "--task-queue",
            "q",
        ])
        .current_dir(dir.path())
        .output()
        .expect("running cutover-worker");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    for args in [
        ["--host", "web-1", "--also-host", "web-2"],
        ["--also-host", "../x", "--task-queue", "q"],
    ] {
        let out = std::process::Command::new(cutover_tests::bin("cutover-worker"))
            .args(["--address", "127.0.0.1:1"])
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("running cutover-worker");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// A drill whose database nodes and endpoint file live on three machines: each stop, promote,
/// fence, rebuild and switch runs on the agent of the machine it acts on; the checks, markers
/// and evidence on the orchestrating worker.
#[tokio::test]
async fn a_drill_acts_on_each_database_node_through_its_hosts_agent() -> anyhow::Result<()> {
    let h = cutover_tests::Harness::start("agents-drill").await?;
    let scene = cutover_tests::drill::scene(&h, "switchover", true).await?;
    let mut agents = Vec::new();
    for host in ["db-1", "db-2", "app-1"] {
        let dir = h.dir.path().join(host);
        std::fs::create_dir_all(&dir)?;
        agents.push(WorkerProcess::spawn_agent(
            &h.server.address,
            host,
            &dir,
            &[],
        )?);
    }
    let text = scene
        .plan
        .replace(
            "application_name: primary1 }",
            "application_name: primary1, host: db-1 }",
        )
        .replace(
            "application_name: standby1 }",
            "application_name: standby1, host: db-2 }",
        )
        .replace(
            "traffic: { endpoint_file:",
            "traffic: { host: app-1, endpoint_file:",
        );
    let plan = cutover_workflows::drill::parse_drill(&text).map_err(|d| anyhow::anyhow!("{d}"))?;
    assert_eq!(plan.database.primary.host.as_deref(), Some("db-1"));
    let started = cutover_client::start_drill(h.client(), &plan, &h.queue).await?;
    let status = h
        .client()
        .get_workflow_handle::<DrillWorkflow>(started.workflow_id.clone())
        .get_result(temporalio_client::WorkflowGetResultOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}\n{}", h.worker.log_text()))?;
    assert_eq!(status.state.as_str(), "passed", "{status:?}");
    assert!(
        cutover_tests::drill::streaming_standby(&scene.primary),
        "failback rebuilt db-1"
    );

    let ran = cutover_tests::activities_started(h.client(), &started.workflow_id).await?;
    let by = |activity: &str| -> Vec<String> {
        ran.iter()
            .filter(|(_, _, name)| name == activity)
            .map(|(_, identity, _)| {
                cutover_workflows::hosts::host_of_identity(identity)
                    .unwrap_or("orchestrator")
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(by("drill.fault"), ["db-1"], "{ran:#?}");
    assert_eq!(by("drill.promote"), ["db-2"], "{ran:#?}");
    assert_eq!(by("drill.switch"), ["app-1"], "{ran:#?}");
    assert_eq!(by("drill.rebuild"), ["db-1"], "{ran:#?}");
    assert_eq!(by("drill.preflight"), ["orchestrator"], "{ran:#?}");
    assert_eq!(by("drill.record"), ["orchestrator"], "{ran:#?}");
    cutover_tests::replays(h.client(), &started.workflow_id, "agents-drill").await?;
    h.shutdown().await
}
