//! `postgres.migrate` and `postgres.undo_migrations` against a real PostgreSQL.

use std::path::Path;

use cutover_activities::RolloutActivityImpls;
use cutover_tests::pg::PgCluster;
use cutover_workflows::contracts::{MigrateInput, MigrateOutput, StepRef, UndoMigrationsInput};
use cutover_workflows::plan::{MigrateSpec, SecretRef};
use temporalio_common::ActivityError;
use temporalio_sdk::testing::{ActivityEnvironment, ActivityEnvironmentError};

fn step() -> StepRef {
    StepRef {
        rollout: "rollout/test/migrate".to_owned(),
        step: "migrate".to_owned(),
        attempt: 1,
    }
}

fn env() -> ActivityEnvironment {
    ActivityEnvironment::builder()
        .register_activities(RolloutActivityImpls::default())
        .build()
}

/// A secret reference holding `url`, as a plan would name it.
fn url_ref(dir: &Path, url: &str) -> SecretRef {
    let path = dir.join(format!("url-{}", url.len()));
    std::fs::write(&path, url).expect("write url");
    SecretRef::File(path.display().to_string())
}

fn spec(dir: &Path, url: &str, migrations: &Path) -> MigrateSpec {
    MigrateSpec {
        database_url: url_ref(dir, url),
        directory: migrations.display().to_string(),
        dry_run: false,
        target_version: None,
        direction: Default::default(),
    }
}

async fn migrate(spec: MigrateSpec) -> Result<MigrateOutput, ActivityEnvironmentError> {
    env()
        .run(
            RolloutActivityImpls::migrate,
            MigrateInput { step: step(), spec },
        )
        .await
}

fn failure(err: ActivityEnvironmentError) -> (String, bool, String) {
    match err {
        ActivityEnvironmentError::Activity(ActivityError::Application(app)) => (
            app.type_name().unwrap_or_default().to_owned(),
            app.is_non_retryable(),
            app.source_error().to_string(),
        ),
        other => panic!("expected an application failure, got {other:?}"),
    }
}

fn write(dir: &Path, name: &str, sql: &str) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join(name), sql).expect("write migration");
}

fn versions(out: &MigrateOutput) -> Vec<i64> {
    out.applied.iter().map(|m| m.version).collect()
}

#[tokio::test]
async fn apply_then_reapply_changes_nothing() -> anyhow::Result<()> {
    let pg = PgCluster::start()?;
    let tmp = tempfile::tempdir()?;
    let m = tmp.path().join("migrations");
    write(
        &m,
        "0001_items.sql",
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);",
    );
    write(
        &m,
        "0002_seed.sql",
        "INSERT INTO items (name) VALUES ('first');",
    );
    let first = migrate(spec(tmp.path(), &pg.url("postgres"), &m))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(versions(&first), [1, 2]);
    assert!(first.applied.iter().all(|a| a.duration_ms >= 0.0));
    assert_eq!(first.already_applied, 0);
    let second = migrate(spec(tmp.path(), &pg.url("postgres"), &m))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(second.applied.is_empty());
    assert_eq!(second.already_applied, 2);
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM items")?,
        "1",
        "the seed ran once"
    );
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM _sqlx_migrations")?,
        "2"
    );
    Ok(())
}

#[tokio::test]
async fn a_target_below_what_is_applied_is_refused_unless_the_step_goes_down() -> anyhow::Result<()>
{
    let pg = PgCluster::start()?;
    let tmp = tempfile::tempdir()?;
    let m = tmp.path().join("migrations");
    write(&m, "0001_items.up.sql", "CREATE TABLE items (id int);");
    write(&m, "0001_items.down.sql", "DROP TABLE items;");
    write(
        &m,
        "0002_note.up.sql",
        "ALTER TABLE items ADD COLUMN note text;",
    );
    write(
        &m,
        "0002_note.down.sql",
        "ALTER TABLE items DROP COLUMN note;",
    );
    let url = pg.url("postgres");
    migrate(spec(tmp.path(), &url, &m))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let note = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'";
    // Up to a version below the database's: refused with the way to do it; nothing changes.
    let mut older = spec(tmp.path(), &url, &m);
    older.target_version = Some(1);
    let (kind, non_retryable, message) =
        failure(migrate(older.clone()).await.expect_err("refused"));
    assert_eq!((kind.as_str(), non_retryable), ("InvalidInput", true));
    assert!(
        message.contains("at version 2, above target_version 1")
            && message.contains("direction: down"),
        "{message}"
    );
    assert_eq!(pg.psql("postgres", note)?, "1");
    // Down to 1, then down again (nothing to do), then up to 2 again.
    older.direction = cutover_workflows::plan::Direction::Down;
    let out = migrate(older.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(
        (out.reverted.as_slice(), out.previous_version),
        (&[2][..], 2)
    );
    assert_eq!(pg.psql("postgres", note)?, "0");
    let again = migrate(older).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(again.reverted.is_empty(), "already at 1: {again:?}");
    let up = migrate(spec(tmp.path(), &url, &m))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(versions(&up), [2]);
    assert_eq!(pg.psql("postgres", note)?, "1");
    Ok(())
}

#[tokio::test]
async fn an_irreversible_migration_in_the_way_refuses_before_reverting_anything()
-> anyhow::Result<()> {
    let pg = PgCluster::start()?;
    let tmp = tempfile::tempdir()?;
    let m = tmp.path().join("migrations");
    write(&m, "0001_items.up.sql", "CREATE TABLE items (id int);");
    write(&m, "0001_items.down.sql", "DROP TABLE items;");
    write(&m, "0002_backfill.sql", "INSERT INTO items VALUES (1);");
    write(
        &m,
        "0003_note.up.sql",
        "ALTER TABLE items ADD COLUMN note text;",
    );
    write(
        &m,
        "0003_note.down.sql",
        "ALTER TABLE items DROP COLUMN note;",
    );
    let url = pg.url("postgres");
    migrate(spec(tmp.path(), &url, &m))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut down = spec(tmp.path(), &url, &m);
    down.direction = cutover_workflows::plan::Direction::Down;
    down.target_version = Some(1);
    let (kind, _, message) = failure(migrate(down).await.expect_err("irreversible"));
    assert_eq!(kind, "InvalidInput");
    assert!(
        message.contains("0002_backfill.sql has no `.down.sql`"),
        "{message}"
    );
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'")?,
        "1",
        "3 was not reverted either"
    );
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM _sqlx_migrations")?,
        "3"
    );
    Ok(())
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused_with_both_checksums() -> anyhow::Result<()> {
    let pg = PgCluster::start()?;
    let tmp = tempfile::tempdir()?;
    let m = tmp.path().join("migrations");
    write(&m, "0001_items.sql", "CREATE TABLE items (id int);");
    migrate(spec(tmp.path(), &pg.url("postgres"), &m))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    write(&m, "0001_items.sql", "CREATE TABLE items (id bigint);");
    write(&m, "0002_more.sql", "CREATE TABLE more (id int);");
    let err = migrate(spec(tmp.path(), &pg.url("postgres"), &m))
        .await
        .expect_err("tampered");
    let (kind, non_retryable, message) = failure(err);
    assert_eq!(kind, "MigrationChanged");
    assert!(non_retryable);
    assert!(message.contains("0001_items.sql"), "{message}");
    let hexes: Vec<&str> = message
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() >= 64)
        .collect();
    assert_eq!(hexes.len(), 2, "both checksums: {message}");
    assert_ne!(hexes[0], hexes[1]);
    assert_eq!(
        pg.psql("postgres", "SELECT to_regclass('more') IS NULL")?,
        "t",
        "nothing else was applied"
    );
    Ok(())
}

#[tokio::test]
async fn a_failing_migration_leaves_the_database_as_it_was_and_names_file_and_line()
-> anyhow::Result<()> {
    let pg = PgCluster::start()?;
    let tmp = tempfile::tempdir()?;
    let m = tmp.path().join("migrations");
    write(&m, "0001_ok.sql", "CREATE TABLE a (id int);");
    write(
        &m,
        "0002_broken.sql",
        "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\nSELECT no_such_column FROM b;\n",
    );
    let err = migrate(spec(tmp.path(), &pg.url("postgres"), &m))
        .await
        .expect_err("broken SQL");
    let (kind, non_retryable, message) = failure(err);
    assert_eq!(kind, "MigrationFailed");
    assert!(non_retryable);
    assert!(
        message.contains("0002_broken.sql") && message.contains("line 3"),
        "{message}"
    );
    assert!(
        message.contains("no_such_column"),
        "the SQL error is quoted: {message}"
    );
    assert_eq!(
        pg.psql("postgres", "SELECT to_regclass('b') IS NULL")?,
        "t",
        "0002 was rolled back"
    );
    assert_eq!(
        pg.psql("postgres", "SELECT to_regclass('a') IS NOT NULL")?,
        "t",
        "0001 stays"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT string_agg(version::text, ',') FROM _sqlx_migrations WHERE success"
        )?,
        "1"
    );
    Ok(())
}

#[tokio::test]
async fn two_concurrent_migrators_apply_each_migration_once() -> anyhow::Result<()> {
    let pg = PgCluster::start()?;
    pg.psql("postgres", "CREATE TABLE applied_log (name text)")?;
    let tmp = tempfile::tempdir()?;
    let m = tmp.path().join("migrations");
    write(
        &m,
        "0001_slow.sql",
        "SELECT pg_sleep(1); INSERT INTO applied_log VALUES ('m1');",
    );
    write(
        &m,
        "0002_next.sql",
        "INSERT INTO applied_log VALUES ('m2');",
    );
    let (a, b) = tokio::join!(
        migrate(spec(tmp.path(), &pg.url("postgres"), &m)),
        migrate(spec(tmp.path(), &pg.url("postgres"), &m))
    );
    let (a, b) = (
        a.map_err(|e| anyhow::anyhow!("{e}"))?,
        b.map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let mut all = versions(&a);
    all.extend(versions(&b));
    all.sort();
    assert_eq!(
        all,
        [1, 2],
        "each migration applied by exactly one migrator"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT string_agg(name, ',' ORDER BY name) FROM applied_log"
        )?,
        "m1,m2"
    );
    Ok(())
}

#[tokio::test]
async fn a_dry_run_lists_what_would_be_applied_and_changes_nothing() -> anyhow::Result<()> {
    let pg = PgCluster::start()?;
    let tmp = tempfile::tempdir()?;
    let m = tmp.path().join("migrations");
    write(&m, "0001_items.sql", "CREATE TABLE items (id int);");
    write(&m, "0002_more.sql", "CREATE TABLE more (id int);");
    let mut s = spec(tmp.path(), &pg.url("postgres"), &m);
    s.dry_run = true;
    let out = migrate(s).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(out.dry_run && out.applied.is_empty());
    let pending: Vec<i64> = out.pending.iter().map(|p| p.version).collect();
    assert_eq!(pending, [1, 2]);
    assert!(out.pending[0].file.ends_with("0001_items.sql"));
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT to_regclass('_sqlx_migrations') IS NULL AND to_regclass('items') IS NULL"
        )?,
        "t"
    );
    Ok(())
}

#[tokio::test]
async fn reversible_migrations_roll_back_to_a_version() -> anyhow::Result<()> {
    let pg = PgCluster::start()?;
    let tmp = tempfile::tempdir()?;
    let m = tmp.path().join("migrations");
    write(&m, "0001_items.up.sql", "CREATE TABLE items (id int);");
    write(&m, "0001_items.down.sql", "DROP TABLE items;");
    write(
        &m,
        "0002_note.up.sql",
        "ALTER TABLE items ADD COLUMN note text;",
    );
    write(
        &m,
        "0002_note.down.sql",
        "ALTER TABLE items DROP COLUMN note;",
    );
    let s = spec(tmp.path(), &pg.url("postgres"), &m);
    let out = migrate(s.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(versions(&out), [1, 2]);
    let undo = |target| UndoMigrationsInput {
        step: step(),
        database_url: s.database_url.clone(),
        directory: s.directory.clone(),
        target_version: target,
    };
    let reverted = env()
        .run(RolloutActivityImpls::undo_migrations, undo(1))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(reverted.reverted, [2]);
    assert_eq!(pg.psql("postgres", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'")?, "0");
    let again = env()
        .run(RolloutActivityImpls::undo_migrations, undo(1))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(again.reverted.is_empty(), "already at version 1");
    Ok(())
}

#[tokio::test]
async fn connection_errors_never_show_the_password() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let m = tmp.path().join("migrations");
    write(&m, "0001_items.sql", "SELECT 1;");
    let port = cutover_tests::free_port()?;
    let url = format!("postgres://app:Sup3rSecretPw@127.0.0.1:{port}/app");
    let err = migrate(spec(tmp.path(), &url, &m))
        .await
        .expect_err("nothing listens");
    let (kind, non_retryable, message) = failure(err);
    assert_eq!(kind, "DatabaseUnavailable");
    assert!(!non_retryable, "the database may come back");
    assert!(!message.contains("Sup3rSecretPw"), "{message}");
    Ok(())
}
