//! DR drills end to end: a real PostgreSQL primary and streaming standby on loopback, the
//! example service reading its database URL from an endpoint file, the real worker running
//! `DrillWorkflow`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use cutover_tests::pg::PgCluster;
use cutover_tests::{Harness, bin, free_port, wait_for, write_file};
use cutover_workflows::drill::{DrillStatus, DrillWorkflow, parse_drill};
use temporalio_client::WorkflowGetResultOptions;
use temporalio_client::errors::WorkflowGetResultError;

/// A primary, its standby, and the app on top.
struct Scene {
    primary: PgCluster,
    standby: PgCluster,
    app: Child,
    app_port: u16,
    endpoint: std::path::PathBuf,
    plan: String,
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = self.app.kill();
        let _ = self.app.wait();
    }
}

async fn scene(h: &Harness, mode: &str, synchronous: bool) -> anyhow::Result<Scene> {
    let primary = if synchronous {
        PgCluster::start_with("-c synchronous_standby_names=standby1")?
    } else {
        PgCluster::start()?
    };
    let standby = PgCluster::standby_of(&primary, "standby1")?;
    let want = if synchronous { "sync" } else { "async" };
    wait_for(Duration::from_secs(30), "the standby to stream", || {
        let state = primary
            .psql(
                "postgres",
                "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'",
            )
            .unwrap_or_default();
        async move { (state == want).then_some(()) }
    })
    .await?;
    // After the standby is there: a synchronous primary waits for it to commit.
    primary.psql(
        "postgres",
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)",
    )?;
    let dir = h.dir.path();
    write_file(dir, "primary_url", &primary.url("postgres"));
    write_file(dir, "standby_url", &standby.url("postgres"));
    let endpoint = write_file(dir, "database_url", &primary.url("postgres"));
    let app_port = free_port()?;
    let app = Command::new(bin("hello-service"))
        .env("PORT", app_port.to_string())
        .env("DATABASE_URL_FILE", &endpoint)
        .env("APP_VERSION", "drill")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let health = format!("http://127.0.0.1:{app_port}/health");
    wait_for(Duration::from_secs(30), "the app to be healthy", || {
        let health = health.clone();
        async move {
            reqwest::get(&health)
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    })
    .await?;
    let plan = format!(
        "drill: db\nservice: hello\nenvironment: test\nmode: {mode}\ndatabase:\n  primary: {{ url: {{ file: \"{dir}/primary_url\" }}, data_dir: \"{pd}\" }}\n  standby: {{ url: {{ file: \"{dir}/standby_url\" }}, data_dir: \"{sd}\" }}\n  os_user: postgres\ntraffic: {{ endpoint_file: \"{ep}\" }}\nchecks:\n  - {{ url: \"http://127.0.0.1:{app_port}/health\" }}\nwrite_check: {{ url: \"http://127.0.0.1:{app_port}/items\" }}\nobjectives: {{ rto: 60s, rpo: 0 }}\n",
        dir = dir.display(),
        pd = primary.data_dir().display(),
        sd = standby.data_dir().display(),
        ep = endpoint.display(),
    );
    Ok(Scene {
        primary,
        standby,
        app,
        app_port,
        endpoint,
        plan,
    })
}

async fn run_drill(h: &Harness, plan_text: &str) -> anyhow::Result<Result<DrillStatus, String>> {
    let plan = parse_drill(plan_text).map_err(|d| anyhow::anyhow!("{d}"))?;
    let started = cutover_client::start_drill(h.client(), &plan, &h.queue).await?;
    let handle = h
        .client()
        .get_workflow_handle::<DrillWorkflow>(started.workflow_id.clone());
    let result = handle.get_result(WorkflowGetResultOptions::default()).await;
    cutover_tests::replays(h.client(), &started.workflow_id, "drill").await?;
    Ok(match result {
        Ok(status) => Ok(status),
        Err(WorkflowGetResultError::Failed(f)) => Err(f.failure().message.clone()),
        Err(e) => anyhow::bail!("{e:?}\n{}", h.worker.log_text()),
    })
}

#[tokio::test]
async fn a_synchronous_switchover_loses_nothing_and_the_app_serves_from_the_new_primary()
-> anyhow::Result<()> {
    let h = Harness::start("drill-switchover").await?;
    let s = scene(&h, "switchover", true).await?;
    // Through the CLI, as an operator would.
    let plan_file = write_file(h.dir.path(), "drill.yaml", &s.plan);
    let out = cutover_tests::cutover(
        h.dir.path(),
        Some(&h.server.address),
        &[
            "drill",
            "run",
            plan_file.to_str().unwrap_or_default(),
            "--wait",
            "--task-queue",
            &h.queue,
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        h.worker.log_text()
    );
    assert!(
        stdout.contains("drill drill/hello/test/db: passed — RTO "),
        "{stdout}"
    );
    let status = h
        .client()
        .get_workflow_handle::<DrillWorkflow>("drill/hello/test/db".to_owned())
        .get_result(WorkflowGetResultOptions::default())
        .await?;
    cutover_tests::replays(h.client(), "drill/hello/test/db", "drill-switchover").await?;
    let phases: Vec<(&str, &str)> = status
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.state.as_str()))
        .collect();
    assert_eq!(
        phases,
        [
            ("preflight", "succeeded"),
            ("mark", "succeeded"),
            ("fault", "succeeded"),
            ("promote", "succeeded"),
            ("switch", "succeeded"),
            ("verify", "succeeded"),
            ("measure", "succeeded")
        ]
    );
    assert_eq!(status.state, "passed", "{status:#?}");
    assert!(status.markers > 10, "{status:#?}");
    assert_eq!(status.rpo_markers, Some(0));
    let rto = status.rto_ms.context("rto")?;
    assert!(rto > 0, "{status:#?}");
    println!("switchover: {} markers, RTO {rto} ms", status.markers);
    // The new primary takes writes, and the app reads and writes there.
    assert_eq!(
        s.standby.psql("postgres", "SELECT pg_is_in_recovery()")?,
        "f"
    );
    assert_eq!(
        std::fs::read_to_string(&s.endpoint)?.trim(),
        s.standby.url("postgres")
    );
    let items = reqwest::get(format!("http://127.0.0.1:{}/items", s.app_port))
        .await?
        .text()
        .await?;
    assert!(items.contains("drill db@"), "{items}");
    assert_eq!(
        s.standby
            .psql("postgres", "SELECT count(*) FROM cutover_drill_markers")?,
        status.markers.to_string()
    );
    Ok(())
}

#[tokio::test]
async fn an_asynchronous_failover_under_writes_reports_the_markers_really_lost()
-> anyhow::Result<()> {
    let h = Harness::start("drill-failover").await?;
    let s = scene(&h, "failover", false).await?;
    let status = run_drill(&h, &s.plan)
        .await?
        .map_err(|e| anyhow::anyhow!("{e}\n{}", h.worker.log_text()))?;
    let lost = status.rpo_markers.context("rpo")?;
    println!(
        "failover: {} markers acknowledged, {lost} lost ({} bytes), RTO {:?} ms",
        status.markers,
        status.rpo_bytes.unwrap_or_default(),
        status.rto_ms
    );
    assert!(status.markers > 10, "{status:#?}");
    // Honest: each marker reported lost is really missing, and every other one is there.
    let present: u64 = s
        .standby
        .psql("postgres", "SELECT count(*) FROM cutover_drill_markers")?
        .parse()?;
    for n in &status.lost_markers {
        assert_eq!(
            s.standby.psql(
                "postgres",
                &format!("SELECT count(*) FROM cutover_drill_markers WHERE n = {n}")
            )?,
            "0",
            "marker {n} reported lost is present"
        );
    }
    // At most one more marker than acknowledged-and-kept can be present (committed, not acked).
    assert!(
        present >= status.markers - lost && present <= status.markers - lost + 1,
        "present {present}, {status:#?}"
    );
    assert_eq!(status.state, if lost == 0 { "passed" } else { "missed" });
    // The old primary is down; the new one serves the app.
    assert!(
        s.primary.psql("postgres", "SELECT 1").is_err(),
        "the fault stopped the primary"
    );
    assert_eq!(
        s.standby.psql("postgres", "SELECT pg_is_in_recovery()")?,
        "f"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_preflight_touches_nothing() -> anyhow::Result<()> {
    let h = Harness::start("drill-preflight").await?;
    let s = scene(&h, "failover", false).await?;
    s.standby.crash()?;
    let failure = run_drill(&h, &s.plan)
        .await?
        .expect_err("the drill must fail");
    assert!(failure.starts_with("preflight: "), "{failure}");
    assert!(failure.ends_with("nothing was touched"), "{failure}");
    assert!(
        failure.contains("no standby is streaming")
            || failure.contains("the standby cannot be reached"),
        "{failure}"
    );
    assert_eq!(
        s.primary.psql("postgres", "SELECT pg_is_in_recovery()")?,
        "f"
    );
    s.primary.psql(
        "postgres",
        "INSERT INTO items (name) VALUES ('still writable')",
    )?;
    assert_eq!(
        std::fs::read_to_string(&s.endpoint)?.trim(),
        s.primary.url("postgres")
    );
    Ok(())
}
