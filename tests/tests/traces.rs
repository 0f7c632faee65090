//! One trace from webhook to activity, for real: a real OTLP/gRPC receiver (the protocol's own
//! generated collector service) gets the spans of the real `cutover serve` and the real
//! `cutover-worker`, exported by the standard `OTEL_*` variables. The rollout waits at an
//! approval while its worker is stopped and another takes over: the trace continues.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use cutover_tests::otlp::{Collector, Span};
use cutover_tests::serve::{Receiver, github_push, post_github};
use cutover_tests::{
    DevServer, WorkerProcess, approve, bin, outcome, status, unique_queue, wait_for, write_file,
};
use cutover_workflows::status::StepState;

/// A worker exporting traces to `endpoint`, its resource tagged `instance`.
fn worker(
    server: &DevServer,
    queue: &str,
    dir: &std::path::Path,
    endpoint: &str,
    instance: &str,
) -> anyhow::Result<WorkerProcess> {
    let mut command = Command::new(bin("cutover-worker"));
    command
        .args(["--address", &server.address, "--task-queue", queue])
        .args(["--shutdown-grace", "5s", "--log-format", "json"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            format!("worker.instance={instance}"),
        );
    WorkerProcess::spawn_command(command, dir)
}

/// The chain of span names from `span` up to its trace's root, through the spans received;
/// `None` when a parent is missing.
fn ancestry<'a>(span: &'a Span, by_id: &HashMap<&str, &'a Span>) -> Option<Vec<&'a Span>> {
    let mut chain = vec![span];
    let mut at = span;
    while !at.parent_span_id.is_empty() {
        at = by_id.get(at.parent_span_id.as_str())?;
        if at.trace_id != span.trace_id || chain.len() > 64 {
            return None;
        }
        chain.push(at);
    }
    Some(chain)
}

#[tokio::test]
async fn one_trace_runs_from_the_webhook_to_a_command_across_a_worker_restart() -> anyhow::Result<()>
{
    let (collector, endpoint) = Collector::start().await?;
    let server = DevServer::start().await?;
    let dir = tempfile::tempdir()?;
    let queue = unique_queue("traces");
    let mut first = worker(&server, &queue, dir.path(), &endpoint, "first")?;
    write_file(
        dir.path(),
        "plan.yaml",
        "service: traced\nenvironment: placeholder\nversion: \"0\"\nsteps:\n  - { name: sign-off, kind: approval, required: 1 }\n  - { name: hello, kind: command, command: echo, args: [traced-output] }\n",
    );
    let rules = write_file(
        dir.path(),
        "triggers.yaml",
        "rules:\n  - { name: main, provider: github, repository: acme/hello, event: push, branch: main, plan: plan.yaml, environment: staging }\n",
    );
    let ledger = format!("sqlite://{}/.cutover/ledger.db", dir.path().display());
    let rx = Receiver::start_with_env(
        dir.path(),
        &rules,
        &ledger,
        &server.address,
        &queue,
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await?;
    let body = github_push(
        "acme/hello",
        "main",
        "2f1c5a0d9e8b7c6a5f4e3d2c1b0a998877665544",
    );
    let answer = post_github(&reqwest::Client::new(), &rx.url, "push", "trace-1", body).await?;
    assert_eq!(answer.status().as_u16(), 202);
    let id = "rollout/traced/staging";
    wait_for(Duration::from_secs(30), "the approval to wait", || async {
        let st = status(server.client(), id).await?;
        (st.steps[0].state == StepState::Running).then_some(())
    })
    .await?;

    // The worker is replaced while the rollout waits.
    first.terminate(Duration::from_secs(15)).await?;
    let second = worker(&server, &queue, dir.path(), &endpoint, "second")?;
    approve(server.client(), id, "alice").await?;
    outcome(server.client(), id).await?;

    // The webhook's span is the root; the command the second worker ran is in its trace,
    // under the activity attempt's span, under the workflow, under the start.
    let found = wait_for(Duration::from_secs(30), "the spans", || async {
        let spans = collector.spans();
        let root = spans
            .iter()
            .find(|s| s.name == "webhook" && s.service == "cutover-serve")?
            .clone();
        let command = spans
            .iter()
            .find(|s| {
                s.name == "command"
                    && s.trace_id == root.trace_id
                    && s.resource
                        .iter()
                        .any(|(k, v)| k == "worker.instance" && v == "second")
            })?
            .clone();
        Some((root, command))
    })
    .await;
    let (root, command) = found.map_err(|e| {
        let seen: Vec<_> = collector
            .spans()
            .iter()
            .map(|s| {
                format!(
                    "{} {} trace={} id={} parent={} {:?}",
                    s.service, s.name, s.trace_id, s.span_id, s.parent_span_id, s.resource
                )
            })
            .collect();
        anyhow::anyhow!("{e}; received:\n{}", seen.join("\n"))
    })?;
    let spans = collector.spans();
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    assert!(root.parent_span_id.is_empty(), "{root:?}");
    assert_eq!(root.attribute("provider"), Some("github"));
    assert_eq!(root.attribute("outcome"), Some("started"));
    assert_eq!(root.attribute("service"), Some("traced"));
    assert_eq!(root.attribute("environment"), Some("staging"));
    assert!(
        root.attribute("version").is_some_and(|v| !v.is_empty()),
        "{root:?}"
    );
    let chain = ancestry(&command, &by_id).unwrap_or_else(|| {
        panic!(
            "a parent of {command:?} is missing: {:#?}",
            spans
                .iter()
                .filter(|s| s.trace_id == root.trace_id)
                .map(|s| (&s.name, &s.span_id, &s.parent_span_id, &s.service))
                .collect::<Vec<_>>()
        )
    });
    let names: Vec<&str> = chain.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        chain.last().map(|s| s.span_id.as_str()),
        Some(root.span_id.as_str()),
        "{names:?}"
    );
    assert!(
        names[1].starts_with("RunActivity:process.run"),
        "the command's parent is its activity attempt: {names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("RunWorkflow:RolloutWorkflow")),
        "{names:?}"
    );
    assert_eq!(command.attribute("step"), Some("hello"));
    assert_eq!(command.attribute("attempt"), Some("1"));
    // The worker's JSON log lines under the command carry its trace and span.
    let logged = second
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["step"] == "hello" && v["trace_id"].is_string())
        .unwrap_or_else(|| panic!("no JSON line with a trace ID:\n{}", second.log_text()));
    assert_eq!(logged["trace_id"], root.trace_id.as_str(), "{logged}");
    // The receiver's human log line of the delivery ends with the trace and span IDs.
    let line = rx
        .log_text()
        .lines()
        .find(|l| l.contains("delivery=\"trace-1\"") && l.contains("started"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no delivery line:\n{}", rx.log_text()));
    assert!(
        line.contains(&format!(
            "trace_id={} span_id={}",
            root.trace_id, root.span_id
        )),
        "{line}"
    );
    // Spans of both workers are in the one trace.
    let instances: std::collections::BTreeSet<&str> = spans
        .iter()
        .filter(|s| s.trace_id == root.trace_id && s.service == "cutover-worker")
        .flat_map(|s| {
            s.resource
                .iter()
                .filter(|(k, _)| k == "worker.instance")
                .map(|(_, v)| v.as_str())
        })
        .collect();
    assert_eq!(instances.len(), 2, "{instances:?}");
    // No secret in any attribute: the GitHub secret the receiver verifies with never appears.
    for s in &spans {
        for (_, v) in s.attributes.iter().chain(s.resource.iter()) {
            assert!(!v.contains(cutover_tests::serve::GITHUB_SECRET), "{s:?}");
        }
    }
    server.shutdown().await
}

#[tokio::test]
async fn a_cli_start_begins_the_rollouts_trace() -> anyhow::Result<()> {
    let (collector, endpoint) = Collector::start().await?;
    let server = DevServer::start().await?;
    let dir = tempfile::tempdir()?;
    let queue = unique_queue("clitrace");
    let _worker = worker(&server, &queue, dir.path(), &endpoint, "only")?;
    let plan = write_file(
        dir.path(),
        "plan.yaml",
        "service: clitraced\nenvironment: staging\nversion: \"1.4.2\"\nsteps:\n  - { name: hello, kind: command, command: \"true\" }\n",
    );
    // Run without blocking the test's runtime: the collector receiving the CLI's spans
    // runs on it.
    let out = tokio::process::Command::new(bin("cutover"))
        .args(["--address", &server.address, "--task-queue", &queue])
        .args(["rollout", "start", "--wait"])
        .arg(&plan)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .current_dir(dir.path())
        .output()
        .await?;
    assert!(out.status.success(), "{out:?}");
    // The CLI logs nothing of its own by default: what it says, it prints.
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(" INFO "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (root, command) = wait_for(Duration::from_secs(30), "the CLI's trace", || async {
        let spans = collector.spans();
        let root = spans
            .iter()
            .find(|s| s.name == "rollout.start" && s.service == "cutover")?
            .clone();
        let command = spans
            .iter()
            .find(|s| s.name == "command" && s.trace_id == root.trace_id)?
            .clone();
        Some((root, command))
    })
    .await
    .map_err(|e| {
        let seen: Vec<_> = collector
            .spans()
            .iter()
            .map(|s| {
                format!(
                    "{} {} trace={} parent={}",
                    s.service, s.name, s.trace_id, s.parent_span_id
                )
            })
            .collect();
        anyhow::anyhow!("{e}; received:\n{}", seen.join("\n"))
    })?;
    assert!(root.parent_span_id.is_empty(), "{root:?}");
    for (key, value) in [
        ("trigger", "cli"),
        ("service", "clitraced"),
        ("environment", "staging"),
        ("version", "1.4.2"),
    ] {
        assert_eq!(root.attribute(key), Some(value), "{key}: {root:?}");
    }
    let spans = collector.spans();
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let chain = ancestry(&command, &by_id).expect("every parent of the command was exported");
    assert_eq!(
        chain.last().map(|s| s.span_id.as_str()),
        Some(root.span_id.as_str())
    );
    server.shutdown().await
}
