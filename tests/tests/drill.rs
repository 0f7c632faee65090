//! DR drills end to end: a real PostgreSQL primary and streaming standby on loopback, the
//! example service reading its database URL from an endpoint file, the real worker running
//! `DrillWorkflow`.

use anyhow::Context;
use std::time::Duration;

use cutover_tests::drill::{scene, streaming_standby};
use cutover_tests::{Harness, wait_for, write_file};
use cutover_workflows::drill::{DrillStatus, DrillWorkflow, parse_drill};
use temporalio_client::WorkflowGetResultOptions;
use temporalio_client::errors::WorkflowGetResultError;

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
    // Through the CLI, as an operator would; back to the original roles at the end.
    let plan_file = write_file(
        h.dir.path(),
        "drill.yaml",
        &format!("{}failback: {{ switch_back: true }}\n", s.plan),
    );
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
    // The evidence is in the ledger (the worker's default, under its directory).
    let report = evidence(&h)?;
    assert_eq!(report[0]["state"], "passed", "{report:#}");
    assert_eq!(report[0]["rto_ms"].as_i64(), status.rto_ms);
    assert_eq!(report[0]["rpo_markers"], 0);
    let phases = report[0]["phases"]
        .as_array()
        .context("phases is an array")?;
    assert!(phases.iter().any(|p| p["name"] == "promote"), "{phases:?}");
    let out = cutover_tests::cutover(
        h.dir.path(),
        None,
        &["drill", "report", "--html", "report.html"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(h.dir.path().join("report.html"))?;
    for needle in [
        "<svg",
        "drill/hello/test/db",
        "promote",
        "RTO (ms)",
        "objective 60000",
        "drills, oldest to newest",
    ] {
        assert!(html.contains(needle), "{needle} missing from the report");
    }
    // Each point is labelled with its value, and the axes with their scale.
    let rto_value = report[0]["rto_ms"].as_i64().context("rto")?;
    assert!(
        html.contains(&format!("text-anchor=\"middle\">{rto_value}</text>")),
        "the RTO point is labelled {rto_value}"
    );
    assert!(
        html.contains("text-anchor=\"end\">0</text>"),
        "the y axis starts at 0"
    );
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
            ("measure", "succeeded"),
            ("failback", "succeeded"),
            ("switch_back", "succeeded")
        ]
    );
    assert_eq!(status.state, "passed", "{status:#?}");
    assert!(status.markers > 10, "{status:#?}");
    assert_eq!(status.rpo_markers, Some(0));
    let rto = status.rto_ms.context("rto")?;
    assert!(rto > 0, "{status:#?}");
    println!("switchover: {} markers, RTO {rto} ms", status.markers);
    // Failback restored the original roles: the original primary takes writes (synchronously
    // replicated to the original standby again), the app reads and writes there.
    assert_eq!(
        s.primary.psql("postgres", "SELECT pg_is_in_recovery()")?,
        "f"
    );
    assert!(
        streaming_standby(&s.standby),
        "the standby is not streaming"
    );
    assert_eq!(
        s.primary.psql(
            "postgres",
            "SELECT application_name || ' ' || sync_state FROM pg_stat_replication"
        )?,
        "standby1 sync"
    );
    assert_eq!(
        std::fs::read_to_string(&s.endpoint)?.trim(),
        s.primary.url("postgres")
    );
    let items = reqwest::get(format!("http://127.0.0.1:{}/items", s.app_port))
        .await?
        .text()
        .await?;
    assert!(items.contains("drill db@"), "{items}");
    assert!(items.contains("switch back"), "{items}");
    // Every marker made it through both switchovers.
    assert_eq!(
        s.primary
            .psql("postgres", "SELECT count(*) FROM cutover_drill_markers")?,
        status.markers.to_string()
    );
    // Switched back, the same drill runs again; with `--output json` for a script.
    let out = cutover_tests::cutover(
        h.dir.path(),
        Some(&h.server.address),
        &[
            "drill",
            "run",
            plan_file.to_str().unwrap_or_default(),
            "--wait",
            "--output",
            "json",
            "--task-queue",
            &h.queue,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines[0]["workflow_id"], "drill/hello/test/db");
    assert_eq!(lines[1]["state"], "passed", "{:?}", lines[1]);
    assert!(lines[1]["rto_ms"].as_i64().is_some());
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
    // The new primary serves the app; failback rebuilt the old primary as its standby, and
    // the rewind took away what the old primary had and the new one lost.
    assert_eq!(
        s.standby.psql("postgres", "SELECT pg_is_in_recovery()")?,
        "f"
    );
    assert_eq!(
        std::fs::read_to_string(&s.endpoint)?.trim(),
        s.standby.url("postgres")
    );
    assert!(
        streaming_standby(&s.primary),
        "the old primary is not a standby: {status:#?}"
    );
    let failback = status.phases.last().context("phases")?;
    assert_eq!(
        (failback.name.as_str(), failback.state.as_str()),
        ("failback", "succeeded"),
        "{status:#?}"
    );
    s.standby.psql(
        "postgres",
        "INSERT INTO items (name) VALUES ('after failback')",
    )?;
    let on_old = wait_for(Duration::from_secs(30), "the old primary to replay", || {
        let rows = s
            .primary
            .psql(
                "postgres",
                "SELECT count(*) FROM items WHERE name = 'after failback'",
            )
            .unwrap_or_default();
        async move { (rows == "1").then_some(()) }
    })
    .await;
    on_old?;
    assert_eq!(
        s.primary
            .psql("postgres", "SELECT count(*) FROM cutover_drill_markers")?,
        present.to_string()
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_preflight_touches_nothing() -> anyhow::Result<()> {
    let h = Harness::start("drill-preflight").await?;
    let s = scene(&h, "failover", false).await?;
    // People are told: the drill's `notify:` hook hears it start and miss.
    let (hooks, inbox) = cutover_tests::hooks::serve().await?;
    let url = cutover_tests::write_file(h.dir.path(), "hook-url", &format!("{hooks}/drills"));
    let plan = format!(
        "{}notify:\n  - {{ name: dr, slack: {{ file: \"{}\" }} }}\n",
        s.plan,
        url.display()
    );
    s.standby.crash()?;
    let failure = run_drill(&h, &plan)
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
    let told: Vec<String> = inbox
        .on("drills")
        .iter()
        .map(|r| cutover_tests::hooks::header(r, "x-cutover-event"))
        .collect();
    assert_eq!(told, ["started", "missed"]);
    let text: serde_json::Value = serde_json::from_slice(&inbox.on("drills")[1].body)?;
    let text = text["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("DR drill `db` of hello/test: missed its objectives — preflight: "),
        "{text}"
    );
    let report = evidence(&h)?;
    assert_eq!(report[0]["state"], "failed", "{report:#}");
    assert!(
        report[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("preflight: ")
    );
    Ok(())
}

/// `cutover drill report --output json`, run in the harness' directory (the worker's ledger).
fn evidence(h: &Harness) -> anyhow::Result<serde_json::Value> {
    cutover_tests::cutover_json(h.dir.path(), None, &["drill", "report", "--output", "json"])
}

#[tokio::test]
async fn failback_rebuilds_from_a_base_backup_when_pg_rewind_cannot() -> anyhow::Result<()> {
    let h = Harness::start("drill-basebackup").await?;
    // No data checksums and wal_log_hints off on the primary: pg_rewind refuses it.
    let s = cutover_tests::drill::scene_of(&h, "failover", false, false).await?;
    let status = run_drill(&h, &s.plan)
        .await?
        .map_err(|e| anyhow::anyhow!("{e}\n{}", h.worker.log_text()))?;
    let failback = status.phases.last().context("phases")?;
    assert_eq!(failback.name, "failback", "{status:#?}");
    assert_eq!(failback.state, "succeeded", "{status:#?}");
    let note = failback.note.clone().unwrap_or_default();
    assert!(note.contains("pg_rewind could not ("), "{note}");
    assert!(note.contains("rebuilt from a fresh base backup"), "{note}");
    // It kept its own configuration (it answers on its own port, as a standby) and nothing
    // was left beside its data directory.
    assert!(streaming_standby(&s.primary), "{status:#?}");
    let dir = s.primary.data_dir();
    for leftover in [".cutover-old", ".cutover-config"] {
        let beside = format!("{}{leftover}", dir.display());
        assert!(!std::path::Path::new(&beside).exists(), "{beside} was left");
    }
    s.standby.psql(
        "postgres",
        "INSERT INTO items (name) VALUES ('after base backup')",
    )?;
    wait_for(
        Duration::from_secs(30),
        "the rebuilt standby to replay",
        || {
            let rows = s
                .primary
                .psql(
                    "postgres",
                    "SELECT count(*) FROM items WHERE name = 'after base backup'",
                )
                .unwrap_or_default();
            async move { (rows == "1").then_some(()) }
        },
    )
    .await?;
    Ok(())
}

/// The example service as the stack of region `b`: the same endpoint file, its own port and
/// version (so a response says which region served it).
fn region_b(endpoint: &std::path::Path) -> anyhow::Result<(std::process::Child, u16)> {
    let port = cutover_tests::free_port()?;
    let child = std::process::Command::new(cutover_tests::bin("hello-service"))
        .env("PORT", port.to_string())
        .env("DATABASE_URL_FILE", endpoint)
        .env("APP_VERSION", "region-b")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    Ok((child, port))
}

#[tokio::test]
async fn a_region_drill_moves_the_apps_traffic_and_reports_both_rtos() -> anyhow::Result<()> {
    // The worker is also the agent of `lb`, the host of the router in front of the regions.
    let h = Harness::start_with("drill-region", &["--also-host", "lb"]).await?;
    let s = scene(&h, "switchover", true).await?;
    let (mut b, b_port) = region_b(&s.endpoint)?;
    let router_port = cutover_tests::free_port()?;
    let through = format!("http://127.0.0.1:{router_port}");
    let plan = s
        .plan
        .replace(
            &format!("http://127.0.0.1:{}/health", s.app_port),
            &format!("{through}/health"),
        )
        .replace(
            &format!("http://127.0.0.1:{}/items", s.app_port),
            &format!("{through}/items"),
        );
    let region = |secondary: u16| {
        format!(
            "region:\n  from: a\n  to: b\n  secondary_checks: [{{ url: \"http://127.0.0.1:{secondary}/health\" }}]\n  router: {{ host: lb, root: \"{}\", listen: {router_port}, backends: {{ a: \"127.0.0.1:{}\", b: \"127.0.0.1:{b_port}\" }} }}\n",
            h.dir.path().join("router").display(),
            s.app_port
        )
    };

    // A secondary that does not answer stops the drill before anything is touched.
    let closed = cutover_tests::free_port()?;
    let refused = run_drill(&h, &format!("{plan}{}", region(closed))).await?;
    let why = refused.expect_err("the secondary is down");
    assert!(why.contains("secondary: region b is not ready"), "{why}");
    assert_eq!(
        s.primary.psql("postgres", "SELECT pg_is_in_recovery()")?,
        "f",
        "the primary was not touched"
    );

    let status = run_drill(&h, &format!("{plan}{}", region(b_port)))
        .await?
        .map_err(|e| anyhow::anyhow!("{e}\n{}", h.worker.log_text()))?;
    let names: Vec<&str> = status.phases.iter().map(|p| p.name.as_str()).collect();
    for (before, after) in [
        ("preflight", "secondary"),
        ("secondary", "fault"),
        ("switch", "move"),
        ("move", "verify"),
    ] {
        let (i, j) = (
            names.iter().position(|n| *n == before),
            names.iter().position(|n| *n == after),
        );
        assert!(i.is_some() && i < j, "{before} before {after}: {names:?}");
    }
    let (app, db) = (
        status.rto_ms.expect("app RTO"),
        status.database_rto_ms.expect("database RTO"),
    );
    assert!(
        0 < db && db <= app,
        "database {db} ms within the application's {app} ms"
    );
    // Users reach region b through the router now.
    let body = reqwest::get(format!("{through}/version"))
        .await?
        .text()
        .await?;
    assert!(body.contains("region-b"), "{body}");
    let _ = b.kill();
    let _ = b.wait();
    Ok(())
}
