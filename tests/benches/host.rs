//! The host driver's costs on this machine.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p cutover-tests --bench host
//! ```
//!
//! - blue-green switch time: from "green healthy" (prepare done) to "all traffic on green"
//!   (upstream rewritten, nginx reloaded, last old worker gone), median and p99 over repeated
//!   switches, with a client loop sending requests through nginx the whole time and the
//!   failed requests counted;
//! - migration overhead: the `migrate` step per migration versus `psql -f` of the same files.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use cutover_activities::{RolloutActivityImpls, TargetActivityImpls};
use cutover_tests::bench::percentile;
use cutover_tests::bin;
use cutover_tests::host::{HostGuard, load, port_block};
use cutover_tests::pg::PgCluster;
use cutover_workflows::contracts::{DeployInput, MigrateInput, ShiftInput, StepRef};
use cutover_workflows::plan::{
    CommandSpec, DeploySpec, HealthCheck, MigrateSpec, SecretRef, Strategy,
};
use temporalio_sdk::testing::ActivityEnvironment;

const SWITCHES: usize = 20;
const MIGRATIONS: usize = 30;
const REPEATS: usize = 5;

fn step() -> StepRef {
    StepRef {
        rollout: "bench".to_owned(),
        step: "bench".to_owned(),
        attempt: 1,
    }
}

async fn switches() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("releases").display().to_string();
    let _guard = HostGuard::new(Path::new(&root), "bench");
    let (base, listen) = port_block(4)?;
    let env = ActivityEnvironment::builder()
        .register_activities(TargetActivityImpls::default())
        .build();
    let spec = DeploySpec {
        root: root.clone(),
        strategy: Strategy::BlueGreen,
        start: CommandSpec {
            command: bin("hello-service").display().to_string(),
            ..CommandSpec::default()
        },
        instances: 2,
        base_port: base,
        listen,
        listen_address: None,
        health: HealthCheck {
            path: "/health".to_owned(),
            expect_status: 200,
            timeout: std::time::Duration::from_secs(15),
            interval: std::time::Duration::from_millis(20),
            request_timeout: None,
        },
        rollback_window: std::time::Duration::ZERO,
        canary: Vec::new(),
        analysis: None,
        waves: None,
        kubernetes: None,
    };
    let deploy = |version: String| DeployInput {
        step: step(),
        driver: cutover_workflows::plan::Driver::Host,
        service: "bench".to_owned(),
        version,
        spec: spec.clone(),
    };
    let shift = |version: String| ShiftInput {
        step: step(),
        driver: cutover_workflows::plan::Driver::Host,
        service: "bench".to_owned(),
        root: root.clone(),
        version,
        weight: 100,
    };
    let fail = |e| anyhow::anyhow!("{e:?}");
    env.run(TargetActivityImpls::prepare, deploy("v0".to_owned()))
        .await
        .map_err(fail)?;
    env.run(TargetActivityImpls::shift, shift("v0".to_owned()))
        .await
        .map_err(fail)?;

    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(
        format!("http://127.0.0.1:{listen}/version"),
        4,
        stop.clone(),
    ));
    let mut times = Vec::new();
    for i in 1..=SWITCHES {
        let version = format!("v{i}");
        env.run(TargetActivityImpls::prepare, deploy(version.clone()))
            .await
            .map_err(fail)?;
        let t = Instant::now();
        let out = env
            .run(TargetActivityImpls::shift, shift(version.clone()))
            .await
            .map_err(fail)?;
        let wall = t.elapsed().as_secs_f64() * 1000.0;
        times.push(wall.max(out.applied_ms));
        env.run(
            TargetActivityImpls::retire,
            cutover_workflows::contracts::RetireInput {
                step: step(),
                driver: cutover_workflows::plan::Driver::Host,
                service: "bench".to_owned(),
                root: root.clone(),
                keep: version,
            },
        )
        .await
        .map_err(fail)?;
    }
    stop.store(true, Ordering::Relaxed);
    let seen = loader.await?;
    let (median, p99) = (percentile(&mut times, 0.5), percentile(&mut times, 0.99));
    println!(
        "blue-green switch, green healthy → all traffic on green ({SWITCHES} switches, 2 instances each)"
    );
    println!("  median {median:.1} ms   p99 {p99:.1} ms");
    println!(
        "  requests through nginx during all switches: {}   failed: {}",
        seen.requests, seen.failures
    );
    Ok(())
}

async fn migrations() -> anyhow::Result<()> {
    let pg = PgCluster::start()?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("migrations");
    std::fs::create_dir_all(&dir)?;
    for i in 1..=MIGRATIONS {
        std::fs::write(
            dir.join(format!("{i:04}_t{i}.sql")),
            format!(
                "CREATE TABLE t{i} (id bigserial PRIMARY KEY, name text NOT NULL);\nCREATE INDEX t{i}_name ON t{i} (name);\nINSERT INTO t{i} (name) SELECT 'row ' || g FROM generate_series(1, 100) g;\n"
            ),
        )?;
    }
    let env = ActivityEnvironment::builder()
        .register_activities(RolloutActivityImpls::default())
        .build();
    let (mut cutover, mut psql, mut psql_session) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..REPEATS {
        let db = format!("cut{r}");
        pg.psql("postgres", &format!("CREATE DATABASE {db}"))?;
        let url_file = tmp.path().join(format!("url{r}"));
        std::fs::write(&url_file, pg.url(&db))?;
        let t = Instant::now();
        let out = env
            .run(
                RolloutActivityImpls::migrate,
                MigrateInput {
                    step: step(),
                    spec: MigrateSpec {
                        database_url: SecretRef::File(url_file.display().to_string()),
                        directory: dir.display().to_string(),
                        dry_run: false,
                        target_version: None,
                        direction: Default::default(),
                    },
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        anyhow::ensure!(out.applied.len() == MIGRATIONS);
        cutover.push(t.elapsed().as_secs_f64() * 1000.0 / MIGRATIONS as f64);

        let db = format!("raw{r}");
        pg.psql("postgres", &format!("CREATE DATABASE {db}"))?;
        let t = Instant::now();
        for i in 1..=MIGRATIONS {
            let out = Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &pg.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    &db,
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-1",
                    "-f",
                ])
                .arg(dir.join(format!("{i:04}_t{i}.sql")))
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "psql: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        psql.push(t.elapsed().as_secs_f64() * 1000.0 / MIGRATIONS as f64);

        let db = format!("one{r}");
        pg.psql("postgres", &format!("CREATE DATABASE {db}"))?;
        let mut cmd = Command::new("psql");
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-d",
            &db,
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
        ]);
        for i in 1..=MIGRATIONS {
            cmd.arg("-f").arg(dir.join(format!("{i:04}_t{i}.sql")));
        }
        let t = Instant::now();
        let out = cmd.output()?;
        anyhow::ensure!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        psql_session.push(t.elapsed().as_secs_f64() * 1000.0 / MIGRATIONS as f64);
    }
    let (c, p, o) = (
        percentile(&mut cutover, 0.5),
        percentile(&mut psql, 0.5),
        percentile(&mut psql_session, 0.5),
    );
    println!(
        "migration cost per migration ({MIGRATIONS} migrations × {REPEATS} runs, median of runs)"
    );
    println!("  cutover migrate step (lock, checksums, one transaction each): {c:.2} ms");
    println!("  psql -1 -f, one psql per file:                                 {p:.2} ms");
    println!("  psql -f …, all files in one session (no bookkeeping):          {o:.2} ms");
    println!(
        "  overhead of the migrate step over one psql session: {:+.2} ms per migration",
        c - o
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    switches().await?;
    migrations().await
}
