//! Observability for real: the real worker with `--metrics-listen`, scraped by a real
//! Prometheus while a rollout retries a step and waits at an approval; PromQL then finds the
//! step histogram for that rollout's service. The SDK's own worker metrics come from the same
//! endpoint.

use std::time::Duration;

use cutover_tests::prom::Prometheus;
use cutover_tests::{Harness, approve, free_port, outcome, status, wait_for};
use cutover_workflows::status::StepState;

/// The worker's `/metrics` text.
async fn scrape(addr: &str) -> anyhow::Result<String> {
    Ok(reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// The value of the first line of `text` that starts with `series` (name and labels, exact).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn prometheus_scrapes_the_workers_rollout_step_and_approval_metrics() -> anyhow::Result<()> {
    let metrics = format!("127.0.0.1:{}", free_port()?);
    let h = Harness::start_with("metrics", &["--metrics-listen", &metrics]).await?;
    let prom = Prometheus::start(std::slice::from_ref(&metrics)).await?;
    let id = h
        .start_rollout(&format!(
            "service: observed\nenvironment: test\nversion: \"1\"\nsteps:\n  - name: flaky\n    kind: command\n    command: sh\n    args: [\"-c\", \"test -f tried || {{ touch tried; exit 1; }}\"]\n    workdir: \"{dir}\"\n    retry: {{ maximum_attempts: 3, initial_interval: 100ms }}\n  - {{ name: sign-off, kind: approval, required: 1 }}\n  - {{ name: after, kind: command, command: \"true\" }}\n",
            dir = h.dir_str()
        ))
        .await?;
    wait_for(Duration::from_secs(30), "the approval to wait", || async {
        let st = status(h.client(), &id).await?;
        (st.steps[1].state == StepState::Running).then_some(())
    })
    .await?;

    // While it waits: the worker counts one approval waiting for this service, since a
    // moment ago.
    let waiting = "cutover_approvals_waiting{environment=\"test\",service=\"observed\"}";
    let text = wait_for(Duration::from_secs(10), "the approval gauge", || async {
        let text = scrape(&metrics).await.ok()?;
        (sample(&text, waiting) == Some(1.0)).then_some(text)
    })
    .await?;
    let since = sample(
        &text,
        "cutover_approval_waiting_since_timestamp_seconds{environment=\"test\",service=\"observed\"}",
    )
    .expect("the oldest wait's start");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    assert!(
        since > now - 120.0 && since <= now + 1.0,
        "began {since}, now {now}"
    );
    // The retried step: one failed attempt, then one retry that succeeded.
    assert_eq!(
        sample(
            &text,
            "cutover_step_attempts_total{kind=\"command\",outcome=\"failed\",retry=\"false\",service=\"observed\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "cutover_step_attempts_total{kind=\"command\",outcome=\"succeeded\",retry=\"true\",service=\"observed\"}"
        ),
        Some(1.0),
        "{text}"
    );

    approve(h.client(), &id, "alice").await?;
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome.as_str(), "succeeded");

    let text = wait_for(Duration::from_secs(10), "the finished rollout", || async {
        let text = scrape(&metrics).await.ok()?;
        (sample(
            &text,
            "cutover_rollouts_finished_total{environment=\"test\",outcome=\"succeeded\",service=\"observed\"}",
        ) == Some(1.0))
        .then_some(text)
    })
    .await?;
    assert_eq!(sample(&text, waiting), Some(0.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "cutover_rollouts_started_total{environment=\"test\",service=\"observed\"}"
        ),
        Some(1.0)
    );
    // The SDK's worker metrics share the endpoint.
    assert!(
        text.contains("temporal_workflow_completed_total"),
        "the SDK's metrics: {text}"
    );
    assert!(text.contains("temporal_activity_execution_latency_seconds_bucket"));

    // PromQL, through the real Prometheus: the step histogram of this service, by kind.
    let commands = "sum(cutover_step_duration_seconds_count{service=\"observed\",kind=\"command\",outcome=\"succeeded\"})";
    let n = wait_for(
        Duration::from_secs(20),
        "Prometheus to scrape the steps",
        || async { prom.value(commands).await.filter(|n| *n >= 2.0) },
    )
    .await?;
    assert_eq!(n, 2.0, "two command steps succeeded");
    let approvals = prom
        .value("sum(cutover_step_duration_seconds_count{service=\"observed\",kind=\"approval\"})")
        .await;
    assert_eq!(approvals, Some(1.0));
    // The approval took longer than 0 s and is in the histogram's sum.
    let waited = prom
        .value("sum(cutover_step_duration_seconds_sum{service=\"observed\",kind=\"approval\"})")
        .await
        .unwrap_or_default();
    assert!(waited > 0.0, "approval duration {waited}");
    h.shutdown().await
}

#[tokio::test]
async fn a_taken_metrics_port_fails_the_start_and_names_the_flag() -> anyhow::Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let out = std::process::Command::new(cutover_tests::bin("cutover-worker"))
        .args(["--metrics-listen", &addr, "--address", "127.0.0.1:1"])
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--metrics-listen") && err.contains(&addr),
        "{err}"
    );
    let out = std::process::Command::new(cutover_tests::bin("cutover-worker"))
        .args(["--metrics-listen", "not-an-address"])
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--metrics-listen") && err.contains("not-an-address"),
        "{err}"
    );
    Ok(())
}
