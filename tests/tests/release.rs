//! Releases of several services, through the `cutover` CLI against a real dev server, worker,
//! nginx and PostgreSQL: a shared migration, then `api`, then `worker` (which names `api` in
//! `after`); when `worker` fails, `api` is rolled back and the migration is kept.

use std::path::Path;
use std::process::{Command, Stdio};

use cutover_tests::pg::PgCluster;
use cutover_tests::site::{Site, migrations_dir};
use cutover_tests::{Harness, bin, replays, write_file};
use cutover_workflows::release::{ReleaseState, ReleaseStatus, ServiceState};

/// `cutover ARGS` against the harness' server and task queue: (exit code, stdout, stderr).
fn cutover(h: &Harness, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("cutover"))
        .current_dir(h.dir.path())
        .args(args)
        .env("CUTOVER_TEMPORAL_ADDRESS", &h.server.address)
        .env("CUTOVER_TASK_QUEUE", &h.queue)
        .env_remove("TEMPORAL_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .expect("running cutover");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A release file listing `worker` first (after `api`), with plan files for both.
fn release(dir: &Path, name: &str, migrate: Option<&Path>, api: &str, worker: &str) -> String {
    write_file(dir, &format!("{name}-api.yaml"), api);
    write_file(dir, &format!("{name}-worker.yaml"), worker);
    let migrate = migrate
        .map(|url| {
            format!(
                "migrate:\n  database_url: {{ file: \"{}\" }}\n  directory: \"{}\"\n",
                url.display(),
                migrations_dir()
            )
        })
        .unwrap_or_default();
    let text = format!(
        "release: shop\nenvironment: test\n{migrate}services:\n  - plan: {name}-worker.yaml\n    after: [api]\n  - plan: {name}-api.yaml\n"
    );
    write_file(dir, &format!("{name}.yaml"), &text)
        .display()
        .to_string()
}

#[tokio::test]
async fn a_failed_service_rolls_back_the_ones_released_before_it_and_keeps_the_migration()
-> anyhow::Result<()> {
    let h = Harness::start("release").await?;
    let pg = PgCluster::start()?;
    let url = write_file(h.dir.path(), "db_url", &pg.url("postgres"));
    let (api, worker) = (Site::new(&h)?, Site::new(&h)?);
    let quick = "    rollback_window: 0s\n";

    // 1.0.0 of both, no migration.
    let first = release(
        h.dir.path(),
        "one",
        None,
        &api.plan("api", "1.0.0", "blue-green", quick),
        &worker.plan("worker", "1.0.0", "blue-green", quick),
    );
    let (code, out, err) = cutover(&h, &["release", "validate", &first]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("api 1.0.0 → worker 1.0.0"), "{out}");
    let (code, out, err) = cutover(&h, &["release", "start", &first, "--wait"]);
    assert_eq!(code, 0, "{out}{err}\n{}", h.worker.log_text());
    assert_eq!(api.serving().await?, "1.0.0");
    assert_eq!(worker.serving().await?, "1.0.0");

    // 2.0.0: the migration, api released, worker's new version cannot start.
    let broken = worker.plan("worker", "2.0.0", "blue-green", quick).replace(
        &bin("hello-service").display().to_string(),
        "/nonexistent/worker",
    );
    let second = release(
        h.dir.path(),
        "two",
        Some(&url),
        &api.plan("api", "2.0.0", "blue-green", quick),
        &broken,
    );
    let (code, out, err) = cutover(&h, &["release", "start", &second, "--wait"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("service `worker` failed") && err.contains("`api` rolled back"),
        "{err}"
    );
    // The tree: the release, the migration, each service and its steps.
    assert!(out.contains("release/shop/test  failed"), "{out}");
    assert!(out.contains("migrate: database at version 2"), "{out}");
    assert!(out.contains("worker 2.0.0  failed"), "{out}");
    assert!(out.contains("api 2.0.0  rolled back"), "{out}");
    assert!(
        out.contains("undo-deploy"),
        "the rollback rollout's steps: {out}"
    );

    assert_eq!(api.serving().await?, "1.0.0", "api back on the old version");
    assert_eq!(worker.serving().await?, "1.0.0", "worker never left it");
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM _sqlx_migrations WHERE success"
        )?,
        "2",
        "the shared migration is kept"
    );

    // `watch` on an ended release draws its tree once and exits 1 (it failed).
    let (code, watched, err) = cutover(&h, &["release", "watch", "shop", "-e", "test"]);
    assert_eq!(code, 1, "{watched}{err}");
    assert!(watched.contains("api 2.0.0  rolled back"), "{watched}");
    let (code, json, err) = cutover(
        &h,
        &[
            "release", "status", "shop", "-e", "test", "--output", "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let status: ReleaseStatus = serde_json::from_str(&json)?;
    assert_eq!(status.state, ReleaseState::Failed);
    let states: Vec<(&str, ServiceState)> = status
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.state))
        .collect();
    assert_eq!(
        states,
        [
            ("api", ServiceState::RolledBack),
            ("worker", ServiceState::Failed)
        ]
    );
    replays(h.client(), "release/shop/test", "release-rolled-back").await?;
    Ok(())
}

#[test]
fn bad_release_files_are_refused_with_where_and_why() {
    let dir = tempfile::tempdir().expect("dir");
    let plan = "service: api\nenvironment: x\nversion: \"1\"\nsteps:\n  - { name: a, kind: command, command: \"true\" }\n";
    write_file(dir.path(), "api.yaml", plan);
    write_file(dir.path(), "bad.yaml", "service: api\nsteps: 3\n");
    let cases: &[(&str, &str)] = &[
        (
            "release: shop\nenvironment: test\nservices:\n  - plan: missing.yaml\n",
            "cannot read plan `missing.yaml`",
        ),
        (
            "release: shop\nenvironment: test\nservices:\n  - plan: bad.yaml\n",
            "bad.yaml:",
        ),
        (
            "release: shop\nenvironment: test\nservices:\n  - plan: api.yaml\n    after: [db]\n",
            "no service `db`",
        ),
        (
            "release: shop\nenvironment: test\nservices:\n  - plan: api.yaml\n  - plan: api.yaml\n",
            "listed twice",
        ),
        (
            "release: shop\nenvironment: test\nservices: []\n",
            "0 services",
        ),
        (
            "release: \"../x\"\nenvironment: test\nservices:\n  - plan: api.yaml\n",
            "not a valid release name",
        ),
        (
            "release: shop\nenvironment: test\nservices:\n  - plan: api.yaml\n    wait: 1\n",
            "wait",
        ),
    ];
    for (text, expect) in cases {
        let file = write_file(dir.path(), "release.yaml", text);
        let out = Command::new(bin("cutover"))
            .args(["release", "validate", &file.display().to_string()])
            .output()
            .expect("cutover");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(expect), "{text}: expected `{expect}` in {err}");
        assert!(err.contains("nothing was started"), "{err}");
    }
}
