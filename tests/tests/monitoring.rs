//! The shipped monitoring: `monitoring/alerts.yml` passes the real `promtool check rules`
//! (and a broken copy fails it), and every metric the alert rules and the Grafana dashboard
//! query is one that Cutover exports — `cutover_*` from the worker (the list its unit test
//! proves against the real exporter) and from a real `cutover serve`, `temporal_*` scraped
//! from a real worker that ran a rollout with a retried step.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cutover_tests::serve::Receiver;
use cutover_tests::{Harness, free_port, outcome, wait_for, write_file};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// `promtool check rules FILE`: (success, output).
fn promtool(file: &Path) -> anyhow::Result<(bool, String)> {
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(file)
        .output()
        .map_err(|e| anyhow::anyhow!("running promtool (apt-get install prometheus): {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

#[test]
fn promtool_accepts_the_alert_rules_and_refuses_a_broken_one() -> anyhow::Result<()> {
    let rules = repo().join("monitoring/alerts.yml");
    let (ok, text) = promtool(&rules)?;
    assert!(ok, "{text}");
    assert!(text.contains("SUCCESS"), "{text}");

    let dir = tempfile::tempdir()?;
    let broken = std::fs::read_to_string(&rules)?.replacen(
        "expr: cutover_drill_objectives_met == 0",
        "expr: cutover_drill_objectives_met == == 0",
        1,
    );
    let file = write_file(dir.path(), "broken.yml", &broken);
    let (ok, text) = promtool(&file)?;
    assert!(!ok, "a broken expression passed: {text}");
    assert!(text.contains("parse error"), "{text}");
    Ok(())
}

/// Metric names in PromQL `text`: `cutover_…` and `temporal_…` words, with histogram suffixes
/// taken off.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if word.starts_with("cutover_") || word.starts_with("temporal_") {
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| word.strip_suffix(s))
                .unwrap_or(&word);
            names.insert(base.to_owned());
        }
        word.clear();
    }
    names
}

/// The series names in a Prometheus text page (from `# TYPE` lines).
fn served(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_metric_the_dashboard_and_alerts_query_is_exported() -> anyhow::Result<()> {
    let metrics = format!("127.0.0.1:{}", free_port()?);
    let h = Harness::start_with("monitoring", &["--metrics-listen", &metrics]).await?;
    // A step that fails once, so the SDK's failure counters exist too.
    let id = h
        .start_rollout(&format!(
            "service: watched\nenvironment: test\nversion: \"1\"\nsteps:\n  - name: flaky\n    kind: command\n    command: sh\n    args: [\"-c\", \"test -f tried || {{ touch tried; exit 1; }}\"]\n    workdir: \"{}\"\n    retry: {{ maximum_attempts: 3, initial_interval: 100ms }}\n",
            h.dir_str()
        ))
        .await?;
    outcome(h.client(), &id).await?;
    let worker = wait_for(Duration::from_secs(10), "the SDK's metrics", || async {
        let text = reqwest::get(format!("http://{metrics}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains("temporal_activity_execution_failed_total")
            .then_some(text)
    })
    .await?;

    write_file(
        h.dir.path(),
        "plan.yaml",
        "service: watched\nenvironment: placeholder\nversion: \"0\"\nsteps:\n  - { name: hello, kind: command, command: \"true\" }\n",
    );
    let rules = write_file(
        h.dir.path(),
        "triggers.yaml",
        "rules:\n  - { name: main, provider: github, repository: acme/hello, event: push, branch: main, plan: plan.yaml, environment: staging }\n",
    );
    let ledger = format!("sqlite://{}/.cutover/ledger.db", h.dir.path().display());
    let rx = Receiver::start(
        h.dir.path(),
        &rules,
        &ledger,
        &h.server.address,
        &h.queue,
        &[],
    )
    .await?;
    // One rejected delivery, so the receiver's families have samples.
    reqwest::Client::new()
        .post(format!("{}/webhooks/github", rx.url))
        .body("{}")
        .send()
        .await?;
    let receiver = reqwest::get(format!("{}/metrics", rx.url))
        .await?
        .text()
        .await?;

    let mut exported: BTreeSet<String> = served(&worker)
        .into_iter()
        .chain(served(&receiver))
        .chain(
            cutover_activities::metrics::EXPORTED
                .iter()
                .map(|s| (*s).to_owned()),
        )
        .collect();
    // OpenMetrics names counters without `_total` in `# TYPE`; the series carry it.
    let totals: Vec<String> = exported
        .iter()
        .filter(|n| receiver.contains(&format!("{n}_total")))
        .map(|n| format!("{n}_total"))
        .collect();
    exported.extend(totals);

    let alerts = std::fs::read_to_string(repo().join("monitoring/alerts.yml"))?;
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        repo().join("monitoring/grafana-dashboard.json"),
    )?)?;
    let mut exprs: Vec<String> = alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(str::to_owned)
        .collect();
    assert!(exprs.len() >= 9, "the rules' expressions: {exprs:?}");
    let panels = dashboard["panels"].as_array().expect("panels");
    let dashboard_exprs: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    assert!(dashboard_exprs.len() >= 20, "{dashboard_exprs:?}");
    exprs.extend(dashboard_exprs);
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if let Some(q) = var["definition"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    let queried: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let missing: Vec<&String> = queried.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "queried but not exported: {missing:?}\nexported: {exported:?}"
    );
    // And the dashboard covers each area the issue names.
    for needle in [
        "cutover_rollouts_finished_total",
        "cutover_step_duration_seconds",
        "cutover_drill_rto_seconds",
        "cutover_drill_rto_objective_seconds",
        "cutover_webhook_deliveries_total",
        "temporal_worker_task_slots_available",
    ] {
        assert!(queried.contains(needle), "the dashboard lacks {needle}");
    }
    h.shutdown().await
}
