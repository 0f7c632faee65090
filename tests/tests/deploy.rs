//! The host deploy driver end to end: the real worker, the example service as real processes,
//! real nginx moving real traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use cutover_tests::host::{HostGuard, load, service_processes};
use cutover_tests::site::{Site, migrate_step, rollout_failure, succeed, with_steps_before};
use cutover_tests::{Harness, bin, outcome, wait_for};
use cutover_workflows::status::RolloutState;
use temporalio_client::errors::WorkflowGetResultError;

#[tokio::test]
async fn blue_green_switch_under_load_fails_no_request() -> anyhow::Result<()> {
    let h = Harness::start("bluegreen").await?;
    let site = Site::new(&h)?;
    let guard = HostGuard::new(std::path::Path::new(&site.root), "bg");
    succeed(
        &h,
        &site.plan("bg", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    assert_eq!(site.serving().await?, "1.0.0");

    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(site.url(), 4, stop.clone()));
    succeed(
        &h,
        &site.plan("bg", "2.0.0", "blue-green", "    rollback_window: 1s\n"),
    )
    .await?;
    stop.store(true, Ordering::Relaxed);
    let seen = loader.await?;
    println!(
        "blue-green switch under load: {} requests, {} failed, versions {:?}",
        seen.requests, seen.failures, seen.versions
    );
    assert_eq!(
        seen.failures, 0,
        "failed requests during the switch: {:?}",
        seen.errors
    );
    assert!(seen.requests > 50, "the load loop ran: {seen:?}");
    assert!(seen.versions.contains_key("2.0.0"), "{seen:?}");
    assert_eq!(site.serving().await?, "2.0.0");
    let live: Vec<_> = guard.pidfiles();
    assert!(
        live.iter().all(|(v, _, alive)| v == "2.0.0" && *alive),
        "only v2 runs after the window: {live:?}"
    );
    Ok(())
}

#[tokio::test]
async fn rolling_replaces_instances_one_by_one_under_load() -> anyhow::Result<()> {
    let h = Harness::start("rolling").await?;
    let site = Site::new(&h)?;
    let guard = HostGuard::new(std::path::Path::new(&site.root), "roll");
    succeed(
        &h,
        &site.plan("roll", "1.0.0", "rolling", "    rollback_window: 0s\n"),
    )
    .await?;
    assert_eq!(site.serving().await?, "1.0.0");
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(site.url(), 4, stop.clone()));
    succeed(
        &h,
        &site.plan("roll", "2.0.0", "rolling", "    rollback_window: 0s\n"),
    )
    .await?;
    stop.store(true, Ordering::Relaxed);
    let seen = loader.await?;
    println!(
        "rolling under load: {} requests, {} failed, versions {:?}",
        seen.requests, seen.failures, seen.versions
    );
    assert_eq!(seen.failures, 0, "{:?}", seen.errors);
    assert_eq!(site.serving().await?, "2.0.0");
    let live = guard.pidfiles();
    assert_eq!(live.len(), 2, "{live:?}");
    assert!(
        live.iter().all(|(v, _, alive)| v == "2.0.0" && *alive),
        "{live:?}"
    );
    Ok(())
}

#[tokio::test]
async fn canary_at_10_percent_sends_about_a_tenth_of_requests_to_the_new_version()
-> anyhow::Result<()> {
    let h = Harness::start("canary").await?;
    let site = Site::new(&h)?;
    let _guard = HostGuard::new(std::path::Path::new(&site.root), "can");
    succeed(
        &h,
        &site.plan("can", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    let id = h
        .start_rollout(&site.plan(
            "can",
            "2.0.0",
            "canary",
            "    rollback_window: 0s\n    canary: [{ weight: 10, bake: 20s }, { weight: 100 }]\n",
        ))
        .await?;
    // Wait until the 10% weights are in nginx's upstream.
    let upstream = std::path::Path::new(&site.root).join("can/nginx/upstream.conf");
    wait_for(Duration::from_secs(30), "the 10% canary weights", || {
        let text = std::fs::read_to_string(&upstream).unwrap_or_default();
        async move { (text.lines().count() == 4).then_some(()) }
    })
    .await?;
    let http = reqwest::Client::new();
    let mut v2 = 0;
    for _ in 0..1000 {
        let body = http.get(site.url()).send().await?.text().await?;
        if body.contains("\"2.0.0\"") {
            v2 += 1;
        }
    }
    println!("canary 10%: {v2} of 1000 responses from v2");
    assert!(
        (50..=150).contains(&v2),
        "{v2} of 1000 went to v2; expected 10% ± 5%"
    );
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert_eq!(site.serving().await?, "2.0.0");
    Ok(())
}

#[tokio::test]
async fn rollback_serves_the_previous_version_again_without_failed_requests() -> anyhow::Result<()>
{
    let h = Harness::start("rollback").await?;
    let site = Site::new(&h)?;
    let guard = HostGuard::new(std::path::Path::new(&site.root), "rb");
    succeed(
        &h,
        &site.plan("rb", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    succeed(
        &h,
        &site.plan("rb", "2.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    assert!(
        guard.pidfiles().iter().all(|(v, _, _)| v == "2.0.0"),
        "v1 was retired"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(site.url(), 4, stop.clone()));
    let rollback = format!(
        "service: rb\nenvironment: test\nversion: \"rollback\"\nsteps:\n  - {{ name: back, kind: rollback, root: \"{}\" }}\n",
        site.root
    );
    succeed(&h, &rollback).await?;
    stop.store(true, Ordering::Relaxed);
    let seen = loader.await?;
    println!(
        "rollback under load: {} requests, {} failed, versions {:?}",
        seen.requests, seen.failures, seen.versions
    );
    assert_eq!(seen.failures, 0, "{:?}", seen.errors);
    assert_eq!(site.serving().await?, "1.0.0");
    let live = guard.pidfiles();
    assert!(
        live.iter().all(|(v, _, alive)| v == "1.0.0" && *alive),
        "v2 stopped, v1 serving: {live:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_health_check_that_never_passes_fails_the_step_and_keeps_the_old_version()
-> anyhow::Result<()> {
    let h = Harness::start("unhealthy").await?;
    let site = Site::new(&h)?;
    let guard = HostGuard::new(std::path::Path::new(&site.root), "sick");
    succeed(
        &h,
        &site.plan("sick", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    let plan = site
        .plan("sick", "2.0.0", "blue-green", "    rollback_window: 0s\n")
        .replace(
            "health: { timeout: 15s, interval: 100ms }",
            "health: { path: /nope, timeout: 2s, interval: 100ms }",
        );
    let id = h.start_rollout(&plan).await?;
    let Err(WorkflowGetResultError::Failed(f)) = outcome(h.client(), &id).await else {
        panic!("the deploy must fail");
    };
    let message = &f.failure().message;
    assert!(
        message.contains("DeployFailed") && message.contains("did not pass its health check"),
        "{message}"
    );
    assert!(
        message.contains("/nope") && message.contains("404"),
        "{message}"
    );
    assert_eq!(
        site.serving().await?,
        "1.0.0",
        "the old version still serves"
    );
    assert!(
        guard.pidfiles().iter().all(|(v, _, _)| v == "1.0.0"),
        "the unhealthy instances were stopped"
    );

    // An instance that answers, but not what was expected, is reported with what it said.
    let ports: Vec<String> = (site.base..site.base + 4).map(|p| p.to_string()).collect();
    let said = site
        .plan(
            "sick",
            "2.5.0",
            "blue-green",
            "    rollback_window: 0s
",
        )
        .replace(
            "health: { timeout: 15s, interval: 100ms }",
            "health: { timeout: 1s, interval: 100ms, request_timeout: 500ms }",
        )
        .replace(
            "start: { command: \"",
            &format!(
                "start: {{ env: {{ UNHEALTHY_PORTS: \"{}\" }}, command: \"",
                ports.join(",")
            ),
        );
    let id = h.start_rollout(&said).await?;
    let Err(WorkflowGetResultError::Failed(f)) = outcome(h.client(), &id).await else {
        panic!("the deploy must fail");
    };
    let message = &f.failure().message;
    assert!(
        message.contains("got 503 Service Unavailable: unhealthy on this port"),
        "{message}"
    );

    // A command that does not exist, and a port someone else holds, fail the same way.
    let missing = site.plan("sick", "3.0.0", "blue-green", "").replace(
        &bin("hello-service").display().to_string(),
        "/nonexistent/app",
    );
    let id = h.start_rollout(&missing).await?;
    let Err(WorkflowGetResultError::Failed(f)) = outcome(h.client(), &id).await else {
        panic!("missing command must fail");
    };
    assert!(
        f.failure().message.contains("CommandNotFound"),
        "{}",
        f.failure().message
    );
    let holder = std::net::TcpListener::bind(("127.0.0.1", site.base + 2))?;
    let id = h
        .start_rollout(&site.plan("sick", "4.0.0", "blue-green", ""))
        .await?;
    let Err(WorkflowGetResultError::Failed(f)) = outcome(h.client(), &id).await else {
        panic!("a taken port must fail");
    };
    assert!(
        f.failure()
            .message
            .contains(&format!("port {} is already in use", site.base + 2)),
        "{}",
        f.failure().message
    );
    drop(holder);
    assert_eq!(site.serving().await?, "1.0.0");
    Ok(())
}

#[tokio::test]
async fn a_worker_killed_during_deploy_is_replaced_and_no_instance_is_orphaned()
-> anyhow::Result<()> {
    let mut h = Harness::start("deploycrash").await?;
    let site = Site::new(&h)?;
    let guard = HostGuard::new(std::path::Path::new(&site.root), "crashy");
    succeed(
        &h,
        &site.plan("crashy", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    // v2 takes 3 s to start, so the worker dies while waiting for it to become healthy.
    let plan = site
        .plan(
            "crashy",
            "2.0.0",
            "blue-green",
            "    rollback_window: 0s\n    heartbeat_timeout: 2s\n",
        )
        .replace("start: {", "start: { env: { STARTUP_DELAY_MS: \"3000\" },")
        .replace("maximum_attempts: 1", "maximum_attempts: 3");
    let id = h.start_rollout(&plan).await?;
    wait_for(
        Duration::from_secs(30),
        "v2 instances to be started",
        || {
            let n = guard
                .pidfiles()
                .iter()
                .filter(|(v, _, _)| v == "2.0.0")
                .count();
            async move { (n == 2).then_some(()) }
        },
    )
    .await?;
    h.worker.kill9();
    let _second = h.another_worker()?;
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert_eq!(site.serving().await?, "2.0.0");
    let pidfiles = guard.pidfiles();
    assert!(
        pidfiles.iter().all(|(_, _, alive)| *alive),
        "every pidfile points to a live process: {pidfiles:?}"
    );
    let running = service_processes("crashy");
    assert_eq!(
        running.len(),
        pidfiles.len(),
        "no instance without a pidfile: {running:?} vs {pidfiles:?}"
    );
    Ok(())
}

#[tokio::test]
async fn provision_twice_changes_nothing_the_second_time() -> anyhow::Result<()> {
    let pg = cutover_tests::pg::PgCluster::start()?;
    let h = Harness::start("provision").await?;
    let secrets = h.dir.path().join("secrets");
    std::fs::create_dir_all(&secrets)?;
    std::fs::write(secrets.join("admin"), pg.url("postgres"))?;
    std::fs::write(secrets.join("pw"), "app-pass")?;
    std::fs::write(
        secrets.join("app_url"),
        format!("postgres://app:app-pass@127.0.0.1:{}/appdb", pg.port),
    )?;
    let root = h.dir.path().join("releases");
    let plan = format!(
        "service: prov\nenvironment: test\nversion: \"1.0.0\"\nsteps:\n  - name: provision\n    kind: provision\n    root: \"{root}\"\n    database:\n      admin_url: {{ file: \"{s}/admin\" }}\n      name: appdb\n      owner: app\n      owner_password: {{ file: \"{s}/pw\" }}\n    env_file:\n      DATABASE_URL: {{ file: \"{s}/app_url\" }}\n",
        root = root.display(),
        s = secrets.display()
    );
    succeed(&h, &plan).await?;
    let first = provision_changes(&h).await?;
    assert!(
        first.iter().any(|c| c.contains("created role app")),
        "{first:?}"
    );
    assert!(
        first.iter().any(|c| c.contains("created database appdb")),
        "{first:?}"
    );
    assert!(first.iter().any(|c| c.contains("shared/env")), "{first:?}");
    let env_file = root.join("prov/shared/env");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&env_file)?.permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&env_file)?.starts_with("DATABASE_URL=postgres://app:app-pass@")
    );
    assert!(root.join("prov/releases/1.0.0").is_dir() && root.join("prov/current").exists());
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'appdb'"
        )?,
        "app"
    );

    succeed(&h, &plan).await?;
    let second = provision_changes(&h).await?;
    assert!(
        second.is_empty(),
        "the second run changes nothing: {second:?}"
    );
    Ok(())
}

async fn provision_changes(h: &Harness) -> anyhow::Result<Vec<String>> {
    let st = cutover_tests::status(h.client(), "rollout/prov/test")
        .await
        .context("status")?;
    match &st.steps[0].output {
        Some(cutover_workflows::contracts::StepOutput::Provision(p)) => Ok(p.changes.clone()),
        other => anyhow::bail!("unexpected output {other:?}"),
    }
}

#[tokio::test]
async fn a_failed_verify_after_deploy_rolls_back_traffic_and_the_migration() -> anyhow::Result<()> {
    let pg = cutover_tests::pg::PgCluster::start()?;
    let h = Harness::start("saga").await?;
    let site = Site::new(&h)?;
    let guard = HostGuard::new(std::path::Path::new(&site.root), "saga");
    let url = h.dir.path().join("db_url");
    std::fs::write(&url, pg.url("postgres"))?;
    let v1 = with_steps_before(
        &site.plan("saga", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
        &migrate_step(&url, Some(1), ""),
    );
    succeed(&h, &v1).await?;
    let v2 = format!(
        "{}  - {{ name: smoke, kind: verify, url: \"{}\", json: {{ pointer: /version, equals: \"9.9.9\" }}, within: 1s, interval: 100ms, retry: {{ maximum_attempts: 1 }} }}\n",
        with_steps_before(
            &site.plan("saga", "2.0.0", "blue-green", "    rollback_window: 0s\n"),
            &migrate_step(&url, None, "")
        ),
        site.url()
    );
    let id = h.start_rollout(&v2).await?;
    let message = rollout_failure(&h, &id).await;
    assert!(
        message.starts_with("step `smoke` failed after 1 attempt: CheckFailed"),
        "{message}"
    );
    assert!(
        message.contains(
            "rolled back: traffic back to 1.0.0 (2.0.0 stopped); migrations [2] reverted"
        ),
        "{message}"
    );
    let st = cutover_tests::status(h.client(), &id)
        .await
        .context("status")?;
    assert_eq!(st.state, RolloutState::RolledBack);
    assert_eq!(site.serving().await?, "1.0.0");
    assert!(
        guard
            .pidfiles()
            .iter()
            .all(|(v, _, alive)| v == "1.0.0" && *alive)
    );
    assert_eq!(pg.psql("postgres", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'")?, "0", "v2's column was dropped");
    assert_eq!(
        pg.psql("postgres", "SELECT max(version) FROM _sqlx_migrations")?,
        "1"
    );
    Ok(())
}

#[tokio::test]
async fn rollout_undo_restores_the_previous_release_and_its_schema_under_load() -> anyhow::Result<()>
{
    let pg = cutover_tests::pg::PgCluster::start()?;
    let h = Harness::start("undo").await?;
    let site = Site::new(&h)?;
    let guard = HostGuard::new(std::path::Path::new(&site.root), "undo");
    let url = h.dir.path().join("db_url");
    std::fs::write(&url, pg.url("postgres"))?;
    let release = |version: &str, target: Option<i64>| {
        with_steps_before(
            &site.plan("undo", version, "blue-green", "    rollback_window: 0s\n"),
            &migrate_step(&url, target, ""),
        )
    };
    succeed(&h, &release("1.0.0", Some(1))).await?;
    succeed(&h, &release("2.0.0", None)).await?;
    let schema = || pg.psql("postgres", "SELECT max(version) FROM _sqlx_migrations");
    assert_eq!(schema()?, "2");
    assert_eq!(site.serving().await?, "2.0.0");

    let ledger = format!("sqlite://{}/.cutover/ledger.db", h.dir_str());
    let undo = |extra: &[&str]| {
        let mut args = vec!["--task-queue", &h.queue, "rollout", "undo", "undo", "test"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--ledger", &ledger]);
        cutover_tests::cutover(h.dir.path(), Some(&h.server.address), &args)
    };
    // A version that never succeeded is refused, naming those that did.
    let out = undo(&["--to", "0.9.0"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no successful release 0.9.0") && said.contains("2.0.0, 1.0.0"),
        "{said}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(site.url(), 4, stop.clone()));
    let out = undo(&["--wait"]);
    stop.store(true, Ordering::Relaxed);
    let seen = loader.await?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("undoing undo 2.0.0 → 1.0.0"), "{said}");
    println!(
        "undo under load: {} requests, {} failed, versions {:?}",
        seen.requests, seen.failures, seen.versions
    );
    assert_eq!(seen.failures, 0, "{:?}", seen.errors);
    assert_eq!(site.serving().await?, "1.0.0");
    assert_eq!(schema()?, "1", "2.0.0's migration reverted");
    assert!(
        guard
            .pidfiles()
            .iter()
            .all(|(v, _, alive)| v == "1.0.0" && *alive)
    );
    // The undo is a rollout with its own history.
    let st = cutover_tests::status(h.client(), "rollout/undo/test")
        .await
        .context("status")?;
    assert_eq!(st.version, "1.0.0");
    let names: Vec<&str> = st.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["deploy", "migrate-down"]);
    assert_eq!(st.state, RolloutState::Succeeded);
    Ok(())
}

#[tokio::test]
async fn host_stop_tears_a_service_down_and_the_next_deploy_starts_afresh() -> anyhow::Result<()> {
    let h = Harness::start("host-stop").await?;
    let site = Site::new(&h)?;
    let guard = HostGuard::new(std::path::Path::new(&site.root), "hs");
    succeed(
        &h,
        &site.plan("hs", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    assert_eq!(site.serving().await?, "1.0.0");
    let stop = |args: &[&str]| {
        let mut all = vec!["host", "stop"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--root", &site.root, "--grace", "2s"]);
        cutover_tests::cutover(h.dir.path(), None, &all)
    };
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    // Another environment's directory, or a service never deployed, is refused untouched.
    let out = stop(&["hs", "prod"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("belongs to environment test"),
        "{}",
        text(&out)
    );
    let out = stop(&["nobody"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(site.serving().await?, "1.0.0", "nothing was stopped");

    let out = stop(&["hs", "test"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("stopped 2 instance(s)") && text(&out).contains("and its nginx"),
        "{}",
        text(&out)
    );
    assert!(
        guard.pidfiles().iter().all(|(_, _, alive)| !alive),
        "{:?}",
        guard.pidfiles()
    );
    assert!(site.serving().await.is_err(), "nginx no longer answers");
    let out = stop(&["hs"]);
    assert!(text(&out).contains("nothing was running"), "{}", text(&out));

    succeed(
        &h,
        &site.plan("hs", "2.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    assert_eq!(site.serving().await?, "2.0.0");
    Ok(())
}

#[tokio::test]
async fn abort_during_a_canary_rolls_back_and_abort_after_a_point_of_no_return_fails()
-> anyhow::Result<()> {
    let pg = cutover_tests::pg::PgCluster::start()?;
    let h = Harness::start("abort").await?;
    let site = Site::new(&h)?;
    let guard = HostGuard::new(std::path::Path::new(&site.root), "abrt");
    let url = h.dir.path().join("db_url");
    std::fs::write(&url, pg.url("postgres"))?;
    succeed(
        &h,
        &with_steps_before(
            &site.plan("abrt", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
            &migrate_step(&url, Some(1), ""),
        ),
    )
    .await?;

    let canary = site.plan(
        "abrt",
        "2.0.0",
        "canary",
        "    rollback_window: 0s\n    canary: [{ weight: 10, bake: 1h }, { weight: 100 }]\n",
    );
    let id = h.start_rollout(&canary).await?;
    let upstream = std::path::Path::new(&site.root).join("abrt/nginx/upstream.conf");
    wait_for(Duration::from_secs(30), "the canary", || {
        let n = std::fs::read_to_string(&upstream)
            .unwrap_or_default()
            .lines()
            .count();
        async move { (n == 4).then_some(()) }
    })
    .await?;
    let out = cutover_tests::cutover(
        h.dir.path(),
        Some(&h.server.address),
        &[
            "rollout",
            "abort",
            &id,
            "--by",
            "sre",
            "--reason",
            "error budget",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let message = rollout_failure(&h, &id).await;
    assert!(
        message.starts_with("aborted by sre: error budget; rolled back: traffic back to 1.0.0"),
        "{message}"
    );
    assert_eq!(
        cutover_tests::status(h.client(), &id)
            .await
            .context("status")?
            .state,
        RolloutState::RolledBack
    );
    assert_eq!(site.serving().await?, "1.0.0");
    assert!(
        guard.pidfiles().iter().all(|(v, _, _)| v == "1.0.0"),
        "v2 stopped"
    );

    // Past a point of no return, the database is not reverted and the rollout says so.
    let past = format!(
        "service: abrt\nenvironment: test\nversion: \"3.0.0\"\nsteps:\n{}  - {{ name: soak, kind: bake, duration: 1h }}\n",
        migrate_step(&url, None, "    point_of_no_return: true\n")
    );
    let id = h.start_rollout(&past).await?;
    wait_for(Duration::from_secs(30), "the bake", || async {
        let st = cutover_tests::status(h.client(), &id).await?;
        (st.steps[1].state == cutover_workflows::status::StepState::Running).then_some(())
    })
    .await?;
    let out = cutover_tests::cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "abort", &id, "--by", "sre"],
    );
    assert_eq!(out.status.code(), Some(0));
    let message = rollout_failure(&h, &id).await;
    assert!(
        message.contains("the database was left at migration 2 (not reverted to 1): step `migrate` is a point of no return and had completed"),
        "{message}"
    );
    assert_eq!(
        cutover_tests::status(h.client(), &id)
            .await
            .context("status")?
            .state,
        RolloutState::Failed
    );
    assert_eq!(
        pg.psql("postgres", "SELECT max(version) FROM _sqlx_migrations")?,
        "2"
    );
    Ok(())
}

#[tokio::test]
async fn on_failure_pause_holds_the_rollout_until_retry() -> anyhow::Result<()> {
    let h = Harness::start("hold").await?;
    let id = h
        .start_rollout(&format!(
            "service: held\nenvironment: test\nversion: \"1\"\non_failure: pause\nsteps:\n  - {{ name: check, kind: command, command: test, args: [-f, fixed], workdir: \"{}\", retry: {{ maximum_attempts: 1 }} }}\n",
            h.dir_str()
        ))
        .await?;
    let paused = wait_for(
        Duration::from_secs(30),
        "the failed step to be held",
        || async { cutover_tests::status(h.client(), &id).await?.paused },
    )
    .await?;
    assert!(
        paused.reason.contains("step `check` failed")
            && paused.reason.contains("`retry` re-runs the step"),
        "{}",
        paused.reason
    );
    std::fs::write(h.dir.path().join("fixed"), "")?;
    let out = cutover_tests::cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "retry", &id, "--by", "dev"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert_eq!(summary.steps[0].attempts, 2);
    let again = cutover_tests::cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "retry", &id, "--by", "dev"],
    );
    assert_eq!(
        again.status.code(),
        Some(1),
        "nothing to retry once it ended"
    );
    Ok(())
}

#[tokio::test]
async fn promote_skips_the_remaining_canary_steps() -> anyhow::Result<()> {
    let h = Harness::start("canarypromote").await?;
    let site = Site::new(&h)?;
    let _guard = HostGuard::new(std::path::Path::new(&site.root), "cp");
    succeed(
        &h,
        &site.plan("cp", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    let id = h
        .start_rollout(&site.plan("cp", "2.0.0", "canary", "    rollback_window: 0s\n    canary: [{ weight: 10, bake: 1h }, { weight: 50, bake: 1h }, { weight: 100 }]\n"))
        .await?;
    // The canary hold is running once status shows when it ends.
    wait_for(Duration::from_secs(30), "the 10% canary hold", || async {
        cutover_tests::status(h.client(), &id).await?.steps[0].ends_at
    })
    .await?;
    let out = cutover_tests::cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "promote", &id, "--by", "lead"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    let st = cutover_tests::status(h.client(), &id)
        .await
        .context("status")?;
    let Some(cutover_workflows::contracts::StepOutput::Deploy(d)) = &st.steps[0].output else {
        panic!("deploy output expected")
    };
    let weights: Vec<u8> = d.shifts.iter().map(|s| s.weight).collect();
    assert_eq!(weights, [10, 100], "the 50% step was skipped");
    assert_eq!(site.serving().await?, "2.0.0");
    Ok(())
}

/// Instances get only what the plan gives them: nothing of the worker's own environment (here
/// `RUST_LOG`, which the harness sets on the worker, and cargo's variables, which the worker
/// inherits from the test) is readable in `/proc/<pid>/environ` of an app instance.
#[tokio::test]
async fn an_instance_gets_no_variable_of_the_workers_environment() -> anyhow::Result<()> {
    let h = Harness::start("instance-env").await?;
    let site = Site::new(&h)?;
    let _guard = HostGuard::new(std::path::Path::new(&site.root), "envclean");
    let extra = "    rollback_window: 0s\n";
    let plan = site.plan("envclean", "1.0.0", "blue-green", extra).replace(
        "start: { command:",
        "start: { env: { GREETING: hello }, command:",
    );
    succeed(&h, &plan).await?;
    let pids = service_processes("envclean");
    assert_eq!(pids.len(), 2, "two instances run: {pids:?}");
    for pid in pids {
        let environ = std::fs::read(format!("/proc/{pid}/environ"))?;
        let keys: Vec<String> = String::from_utf8_lossy(&environ)
            .split('\0')
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        let allowed = [
            "PORT",
            "CUTOVER_SERVICE",
            "CUTOVER_VERSION",
            "PATH",
            "HOME",
            "LANG",
            "GREETING",
        ];
        let extra: Vec<&String> = keys
            .iter()
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        assert!(extra.is_empty(), "instance {pid} inherited {extra:?}");
        assert!(keys.iter().any(|k| k == "GREETING"), "{keys:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_rolling_deploy_failing_on_its_second_instance_puts_the_old_version_back_whole()
-> anyhow::Result<()> {
    let h = Harness::start("rollhalf").await?;
    let site = Site::new(&h)?;
    let guard = HostGuard::new(std::path::Path::new(&site.root), "half");
    succeed(
        &h,
        &site.plan("half", "1.0.0", "rolling", "    rollback_window: 0s\n"),
    )
    .await?;
    let mut old_ports: Vec<u16> = guard.pidfiles().iter().map(|(_, p, _)| *p).collect();
    old_ports.sort_unstable();
    // v2's first instance is healthy; its second (the other slot's second port) never is.
    let new_ports: Vec<u16> = (site.base..site.base + 4)
        .filter(|p| !old_ports.contains(p))
        .collect();
    let broken = site
        .plan("half", "2.0.0", "rolling", "    rollback_window: 0s\n")
        .replace(
            "start: {",
            &format!(
                "start: {{ env: {{ UNHEALTHY_PORTS: \"{}\" }},",
                new_ports[1]
            ),
        )
        .replace(
            "health: { timeout: 15s, interval: 100ms }",
            "health: { timeout: 2s, interval: 100ms }",
        );
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(site.url(), 4, stop.clone()));
    let id = h.start_rollout(&broken).await?;
    let reason = rollout_failure(&h, &id).await;
    stop.store(true, Ordering::Relaxed);
    let during = loader.await?;
    assert_eq!(during.failures, 0, "{:?}", during.errors);
    // The reason says what failed, what was undone and what serves now.
    assert!(
        reason.contains(&format!("instance 2.0.0@{}", new_ports[1]))
            && reason.contains(&format!("stopped 2.0.0 instances on ports {new_ports:?}"))
            && reason.contains(&format!("restarted 1.0.0 instance on ports [{}]", old_ports[0]))
            && reason.contains(&format!(
                "half 1.0.0 serves all traffic on ports {old_ports:?}, each answering its health check"
            )),
        "{reason}"
    );
    // Afterwards: only the old version answers, every request succeeds, no v2 process lives.
    let http = reqwest::Client::new();
    for i in 0..200 {
        let r = http.get(site.url()).send().await?;
        anyhow::ensure!(r.status().is_success(), "request {i}: {}", r.status());
        let v: serde_json::Value = serde_json::from_str(&r.text().await?)?;
        assert_eq!(v["version"], "1.0.0", "request {i}");
    }
    let live = guard.pidfiles();
    assert!(
        live.len() == 2 && live.iter().all(|(v, _, alive)| v == "1.0.0" && *alive),
        "{live:?}"
    );
    assert_eq!(service_processes("half").len(), 2, "no v2 process is left");

    // The fixed plan (same version) starts afresh and succeeds.
    succeed(
        &h,
        &site.plan("half", "2.0.0", "rolling", "    rollback_window: 0s\n"),
    )
    .await?;
    assert_eq!(site.serving().await?, "2.0.0");
    Ok(())
}

#[tokio::test]
async fn a_second_environment_on_the_same_release_root_is_refused_and_changes_nothing()
-> anyhow::Result<()> {
    let h = Harness::start("twoenvs").await?;
    let site = Site::new(&h)?;
    let guard = HostGuard::new(std::path::Path::new(&site.root), "shared");
    succeed(
        &h,
        &site.plan("shared", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    let before = guard.pidfiles();
    let prod = site
        .plan("shared", "2.0.0", "blue-green", "    rollback_window: 0s\n")
        .replace("environment: test", "environment: prod");
    let id = h.start_rollout(&prod).await?;
    assert_eq!(id, "rollout/shared/prod");
    let reason = rollout_failure(&h, &id).await;
    assert!(
        reason.contains("InvalidInput")
            && reason.contains("holds shared for environment `test`, not `prod`")
            && reason.contains("give each environment its own `root`"),
        "{reason}"
    );
    assert_eq!(site.serving().await?, "1.0.0");
    assert_eq!(guard.pidfiles(), before, "nothing was started or stopped");
    Ok(())
}

/// Issue 12: a worker SIGKILLed while a canary holds at 50% leaves traffic at 50%, and the next
/// worker carries on from there: nginx's upstream never goes back to the 10% weights, and the
/// deploy's shifts are 10, 50, 100 once each.
#[tokio::test]
async fn a_worker_killed_at_50_percent_of_a_canary_resumes_at_50() -> anyhow::Result<()> {
    let mut h = Harness::start("canarykill").await?;
    let site = Site::new(&h)?;
    let _guard = HostGuard::new(std::path::Path::new(&site.root), "ck");
    succeed(
        &h,
        &site.plan("ck", "1.0.0", "blue-green", "    rollback_window: 0s\n"),
    )
    .await?;
    let id = h
        .start_rollout(&site.plan(
            "ck",
            "2.0.0",
            "canary",
            "    rollback_window: 0s\n    heartbeat_timeout: 2s\n    canary: [{ weight: 10, bake: 1s }, { weight: 50, bake: 5s }, { weight: 100 }]\n",
        ).replace("maximum_attempts: 1", "maximum_attempts: 3"))
        .await?;
    let upstream = std::path::Path::new(&site.root).join("ck/nginx/upstream.conf");
    let read = || std::fs::read_to_string(&upstream).unwrap_or_default();
    let at_10 = wait_for(Duration::from_secs(30), "the 10% weights", || {
        let text = read();
        async move { (text.lines().count() == 4).then_some(text) }
    })
    .await?;
    let at_50 = wait_for(Duration::from_secs(30), "the 50% weights", || {
        let text = read();
        let moved = text.lines().count() == 4 && text != at_10;
        async move { moved.then_some(text) }
    })
    .await?;
    h.worker.kill9();
    let _next = h.another_worker()?;
    let client = h.client().clone();
    let done = tokio::spawn({
        let id = id.clone();
        async move { outcome(&client, &id).await }
    });
    let mut seen = Vec::new();
    while !done.is_finished() {
        let text = read();
        if seen.last() != Some(&text) {
            seen.push(text);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let summary = done.await??;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert!(
        seen.first() == Some(&at_50) && !seen.contains(&at_10),
        "traffic went back from 50%: {seen:#?}"
    );
    let st = cutover_tests::status(h.client(), &id)
        .await
        .context("status")?;
    let Some(cutover_workflows::contracts::StepOutput::Deploy(d)) = &st.steps[0].output else {
        panic!("deploy output expected")
    };
    let weights: Vec<u8> = d.shifts.iter().map(|s| s.weight).collect();
    assert_eq!(weights, [10, 50, 100]);
    assert_eq!(site.serving().await?, "2.0.0");
    cutover_tests::replays(h.client(), &id, "canary-killed-at-50").await
}

#[tokio::test]
async fn a_first_deploy_does_not_wait_out_the_default_rollback_window() -> anyhow::Result<()> {
    let h = Harness::start("first-window").await?;
    let site = Site::new(&h)?;
    let _guard = HostGuard::new(std::path::Path::new(&site.root), "fw");
    // No `rollback_window:`: the default (30s) keeps an old version running after the
    // switch, and a first deploy has none, so it starts no timer at all.
    let id = h
        .start_rollout(&site.plan("fw", "1.0.0", "blue-green", ""))
        .await?;
    let summary = outcome(h.client(), &id)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    let events = cutover_tests::history_events(h.client(), &id).await?;
    let text = serde_json::to_string(&events)?;
    assert!(!text.contains("TimerStarted"), "no window was held: {text}");
    // Marker payloads are base64 in the JSON history.
    let patched = text.split('"').any(|field| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(field)
            .is_ok_and(|bytes| {
                String::from_utf8_lossy(&bytes).contains("deploy-first-no-window-v1")
            })
    });
    assert!(
        patched,
        "the change is patched, so older histories replay as they ran"
    );
    cutover_tests::replays(h.client(), &id, "deploy-first-no-window").await
}
