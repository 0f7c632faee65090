//! Analysis end to end: real Prometheus scraping the example service's instances, real HTTP
//! probes through nginx, a real PostgreSQL for SQL metrics and for the migration a failed
//! analysis must roll back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use cutover_tests::host::{HostGuard, load};
use cutover_tests::prom::Prometheus;
use cutover_tests::site::{Site, migrate_step, rollout_failure, succeed, with_steps_before};
use cutover_tests::{Harness, bin, cutover, outcome, replays, status, wait_for};
use cutover_workflows::analysis::Verdict;
use cutover_workflows::contracts::StepOutput;
use cutover_workflows::status::{RolloutState, StepStatus};

/// The service's share of 500s over the last 10 s, per the version's own counters.
fn error_rate(version: &str) -> String {
    format!(
        "sum(rate(hello_http_requests_total{{version=\\\"{version}\\\",code=\\\"500\\\"}}[10s])) / sum(rate(hello_http_requests_total{{version=\\\"{version}\\\"}}[10s]))"
    )
}

/// A deploy of `version` whose instances fail `fail_percent` of requests.
fn failing(plan: String, fail_percent: u32) -> String {
    let start = format!(
        "start: {{ command: \"{}\" }}",
        bin("hello-service").display()
    );
    let with_env = format!(
        "start: {{ command: \"{}\", env: {{ FAIL_PERCENT: \"{fail_percent}\" }} }}",
        bin("hello-service").display()
    );
    assert!(plan.contains(&start));
    plan.replace(&start, &with_env)
}

fn analysis_of(status: &StepStatus) -> &cutover_workflows::status::AnalysisStatus {
    status.analysis.as_ref().expect("the step has an analysis")
}

#[tokio::test]
async fn a_failing_canary_analysis_rolls_back_traffic_and_the_migration() -> anyhow::Result<()> {
    let pg = cutover_tests::pg::PgCluster::start()?;
    let h = Harness::start("analysis").await?;
    let site = Site::new(&h)?;
    let _guard = HostGuard::new(std::path::Path::new(&site.root), "ana");
    let prom = Prometheus::start(&site.targets()).await?;
    let url = h.dir.path().join("db_url");
    std::fs::write(&url, pg.url("postgres"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(site.url(), 2, stop.clone()));

    // v1, then an analysis of it that passes: every source measured, two successes in a row.
    let v1 = format!(
        "{}  - name: check\n    kind: analysis\n    interval: 1s\n    duration: 20s\n    consecutive_successes: 2\n    inconclusive_limit: 10\n    metrics:\n      - {{ name: errors, prometheus: {{ address: \"{prom}\", query: \"(sum(rate(hello_http_requests_total{{code=\\\"500\\\"}}[10s])) or vector(0))\" }}, success_condition: \"result[0] < 0.05\" }}\n      - {{ name: probe, http: {{ url: \"{site_url}\", probes: 20 }}, success_condition: \"success_rate >= 0.99 && p95_ms < 1000\" }}\n      - {{ name: items, sql: {{ database_url: {{ file: \"{db}\" }}, query: \"SELECT count(*), 1.5 FROM items\" }}, success_condition: \"result[0] >= 0 && result[1] == 1.5\" }}\n",
        with_steps_before(
            &site.plan("ana", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
            &migrate_step(&url, Some(1), ""),
        ),
        prom = prom.address,
        site_url = site.url(),
        db = url.display(),
    );
    let id = h.start_rollout(&v1).await?;
    let summary = outcome(h.client(), &id)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}\n{}", h.worker.log_text()))?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    let st = status(h.client(), &id).await.context("status")?;
    let check = &st.steps[2];
    let a = analysis_of(check);
    assert_eq!(
        (a.taken, a.successful, a.verdict),
        (2, 2, Some(Verdict::Successful)),
        "{a:#?}"
    );
    let last = a.measurements.last().context("a measurement")?;
    let probe = last
        .metrics
        .iter()
        .find(|m| m.name == "probe")
        .context("probe")?;
    assert!(
        probe.value.contains("success_rate=1") && probe.value.contains("p95_ms="),
        "{probe:?}"
    );
    let items = last
        .metrics
        .iter()
        .find(|m| m.name == "items")
        .context("items")?;
    assert_eq!(items.value, "result[0]=0 result[1]=1.5");
    assert!(
        matches!(check.output, Some(StepOutput::Analysis(ref o)) if o.measurements == 2 && !o.promoted)
    );
    replays(h.client(), &id, "rollout-analysis-passed").await?;

    // v2 fails every request but passes its health check: the canary analysis catches it.
    let v2 = with_steps_before(
        &failing(
            site.plan(
                "ana",
                "2.0.0",
                "canary",
                &format!(
                    "    rollback_window: 0s\n    canary: [{{ weight: 50, bake: 1s }}, {{ weight: 100 }}]\n    analysis:\n      interval: 2s\n      duration: 30s\n      failure_limit: 2\n      inconclusive_limit: 10\n      metrics:\n        - {{ name: errors, prometheus: {{ address: \"{prom}\", query: \"{q}\" }}, success_condition: \"result[0] < 0.05\" }}\n        - {{ name: probe, http: {{ url: \"{site_url}\", probes: 20 }}, success_condition: \"success_rate >= 0.95\" }}\n",
                    prom = prom.address,
                    q = error_rate("2.0.0"),
                    site_url = site.url(),
                ),
            ),
            100,
        ),
        &migrate_step(&url, None, ""),
    );
    let id = h.start_rollout(&v2).await?;
    let message = rollout_failure(&h, &id).await;
    stop.store(true, Ordering::Relaxed);
    let seen = loader.await?;
    assert!(
        message.starts_with(
            "step `deploy` failed after 1 attempt: AnalysisFailed: measurement 3 failed: metric `"
        ),
        "{message}"
    );
    assert!(
        message.contains("3 of 3 measurements failed (failure_limit 2)"),
        "{message}"
    );
    // The failed canary is withdrawn by the deploy step itself (the reason says what serves
    // now); the saga then only has the migration left to undo.
    assert!(
        message.contains("undone: stopped 2.0.0 instances on ports")
            && message.contains("ana 1.0.0 serves all traffic on ports")
            && message.contains("rolled back: migrations [2] reverted"),
        "{message}"
    );
    let st = status(h.client(), &id).await.context("status")?;
    assert_eq!(st.state, RolloutState::RolledBack);
    assert_eq!(st.reason.as_deref(), Some(message.as_str()));
    let a = analysis_of(&st.steps[1]);
    assert_eq!(
        (a.weight, a.failed, a.verdict),
        (Some(50), 3, Some(Verdict::Failed)),
        "{a:#?}"
    );
    // By the third measurement Prometheus has scraped v2's 500s: the real metric says so.
    let errors = a.measurements[2]
        .metrics
        .iter()
        .find(|m| m.name == "errors")
        .context("errors")?;
    assert_eq!(
        (errors.verdict, errors.value.as_str()),
        (Verdict::Failed, "result[0]=1"),
        "{errors:?}"
    );
    assert!(seen.versions.contains_key("1.0.0"), "{seen:?}");
    assert_eq!(site.serving().await?, "1.0.0");
    assert_eq!(
        pg.psql("postgres", "SELECT max(version) FROM _sqlx_migrations")?,
        "1"
    );
    replays(h.client(), &id, "rollout-analysis-failed-rolled-back").await?;
    Ok(())
}

#[tokio::test]
async fn an_unreachable_prometheus_pauses_the_canary_for_a_person_instead_of_rolling_back()
-> anyhow::Result<()> {
    let h = Harness::start("inconclusive").await?;
    let site = Site::new(&h)?;
    let _guard = HostGuard::new(std::path::Path::new(&site.root), "inc");
    succeed(
        &h,
        &site.plan("inc", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    // Nothing listens on this port: every measurement is inconclusive.
    let nowhere = format!("http://127.0.0.1:{}", cutover_tests::free_port()?);
    let v2 = site.plan(
        "inc",
        "2.0.0",
        "canary",
        &format!(
            "    rollback_window: 0s\n    canary: [{{ weight: 50 }}, {{ weight: 100 }}]\n    analysis:\n      interval: 500ms\n      duration: 5s\n      inconclusive_limit: 1\n      metrics:\n        - {{ name: errors, prometheus: {{ address: \"{nowhere}\", query: \"up\" }}, success_condition: \"result[0] < 0.05\" }}\n"
        ),
    );
    let id = h.start_rollout(&v2).await?;
    let paused = wait_for(Duration::from_secs(60), "the rollout to pause", || {
        let (client, id) = (h.client().clone(), id.clone());
        async move { status(&client, &id).await.filter(|s| s.paused.is_some()) }
    })
    .await?;
    let reason = paused
        .paused
        .as_ref()
        .map(|p| p.reason.clone())
        .unwrap_or_default();
    assert!(
        reason.starts_with("analysis inconclusive: measurement 2 inconclusive: metric `errors` not measured (Prometheus at http://127.0.0.1:"),
        "{reason}"
    );
    assert!(reason.contains("is unreachable: "), "{reason}");
    assert_eq!(
        paused.state,
        RolloutState::Running,
        "paused, not rolled back"
    );
    assert_eq!(analysis_of(&paused.steps[0]).inconclusive, 2);
    // Still at the canary weight: both versions serve.
    let upstream =
        std::fs::read_to_string(std::path::Path::new(&site.root).join("inc/nginx/upstream.conf"))?;
    assert_eq!(
        upstream.lines().filter(|l| l.contains("server ")).count(),
        4,
        "{upstream}"
    );

    // `resume` measures again (and pauses again); `promote` accepts the release.
    let dir = h.dir.path();
    let addr = h.server.address.as_str();
    let out = cutover(
        dir,
        Some(addr),
        &["rollout", "resume", &id, "--by", "alice"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(Duration::from_secs(60), "the second pause", || {
        let (client, id) = (h.client().clone(), id.clone());
        async move {
            status(&client, &id)
                .await
                .filter(|s| s.paused.is_some() && s.actions.iter().any(|a| a.action == "resume"))
        }
    })
    .await?;
    let out = cutover(
        dir,
        Some(addr),
        &["rollout", "promote", &id, "--by", "alice"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert_eq!(site.serving().await?, "2.0.0");
    replays(
        h.client(),
        &id,
        "rollout-analysis-inconclusive-resume-promote",
    )
    .await?;
    Ok(())
}
