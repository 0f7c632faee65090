//! `postgres.migrate` and `postgres.undo_migrations`.
//!
//! sqlx's `Migrator` does the applying: it takes a PostgreSQL advisory lock so two migrators
//! never run at once (the second waits, then finds nothing to do), runs each migration in its
//! own transaction, and records versions and checksums in `_sqlx_migrations`. Around it this
//! module adds what a release needs: a check that refuses edited migrations *naming the file
//! and both checksums*, the failing file and line when SQL fails, a dry run, a target version,
//! and the applied versions with their durations as the step's output.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cutover_workflows::contracts::{AppliedMigration, MigrateOutput, PendingMigration, StepRef};
use cutover_workflows::plan::{Direction, MigrateSpec, SecretRef};
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::postgres::PgDatabaseError;
use sqlx::{PgConnection, PgPool, Row};
use temporalio_sdk::activities::ActivityContext;
use tracing::info;

use super::{connect, db_message};
use crate::error::StepFailure;
use crate::secrets::Secrets;

const URL: &str = "database_url";

/// Applies pending migrations (or lists them, on a dry run).
#[tracing::instrument(
    name = "sql.migrate",
    skip_all,
    fields(step = %step.step, attempt = step.attempt, rollout = %step.rollout)
)]
pub(crate) async fn migrate(
    ctx: &ActivityContext,
    step: &StepRef,
    spec: &MigrateSpec,
) -> Result<MigrateOutput, StepFailure> {
    let secrets = Secrets::single(URL, &spec.database_url)?.with_url_password(URL);
    let dir = directory(&spec.directory)?;
    let files = file_names(&dir)?;
    let mut migrator = load(&dir).await?;
    if spec.direction == Direction::Down {
        return down(ctx, step, spec, &migrator, &files, &secrets).await;
    }
    if let Some(target) = spec.target_version {
        let kept: Vec<_> = migrator
            .iter()
            .filter(|m| m.version <= target)
            .cloned()
            .collect();
        migrator.migrations = Cow::Owned(kept);
        // Migrations newer than the target may already be applied (e.g. an older release
        // redeployed after a newer one): leave them alone rather than refuse.
        migrator.set_ignore_missing(true);
    }
    let pool = connect(secrets.get(URL).unwrap_or_default(), &secrets).await?;
    let applied = applied(&pool, &secrets).await?;
    // A target below what is applied is a request to go back, which `up` cannot do: say so
    // rather than report success and change nothing.
    if let (Some(target), Some(&current)) = (spec.target_version, applied.keys().max())
        && current > target
    {
        return Err(StepFailure::InvalidInput(format!(
            "the database is at version {current}, above target_version {target}: to revert to {target}, add `direction: down` to the step (nothing was changed)"
        )));
    }

    // Refuse edited migrations before touching anything, naming the file and both checksums.
    for m in migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
    {
        if let Some(recorded) = applied.get(&m.version)
            && recorded.as_slice() != &*m.checksum
        {
            return Err(StepFailure::MigrationChanged {
                version: m.version,
                file: file_of(&files, m.version),
                applied: hex::encode(recorded),
                current: hex::encode(&m.checksum),
            });
        }
    }
    let pending: Vec<PendingMigration> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains_key(&m.version))
        .map(|m| PendingMigration {
            version: m.version,
            description: m.description.to_string(),
            file: file_of(&files, m.version),
        })
        .collect();
    if spec.dry_run {
        info!(rollout = %step.rollout, step = %step.step, pending = pending.len(), "dry run: nothing applied");
        return Ok(MigrateOutput {
            applied: Vec::new(),
            pending,
            already_applied: applied.len() as u32,
            dry_run: true,
            previous_version: applied.keys().max().copied().unwrap_or(0),
            reverted: Vec::new(),
        });
    }

    // Hold sqlx's advisory lock ourselves, on one connection, so that "what this step
    // applied" is measured under the lock: a second migrator waits here, then finds nothing
    // to do and says so.
    let (previous_version, newly) = crate::heartbeat::beating(ctx, async {
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| database("connecting", &e, &secrets))?;
        conn.lock()
            .await
            .map_err(|e| migrate_error(e, &migrator, &files, &secrets))?;
        let result = apply_locked(&mut conn, &mut migrator, &files, &secrets).await;
        let _ = conn.unlock().await;
        result
    })
    .await?;
    for m in &newly {
        info!(rollout = %step.rollout, step = %step.step, version = m.version, ms = m.duration_ms, "applied {}", m.description);
    }
    pool.close().await;
    Ok(MigrateOutput {
        already_applied: applied.len() as u32,
        applied: newly,
        pending: Vec::new(),
        dry_run: false,
        previous_version,
        reverted: Vec::new(),
    })
}

/// `direction: down`: reverts applied migrations newer than the target, newest first — after
/// checking, before touching anything, that each has its `.down.sql` and was not edited.
async fn down(
    ctx: &ActivityContext,
    step: &StepRef,
    spec: &MigrateSpec,
    migrator: &Migrator,
    files: &BTreeMap<i64, String>,
    secrets: &Secrets,
) -> Result<MigrateOutput, StepFailure> {
    let target = spec.target_version.unwrap_or(0);
    let pool = connect(secrets.get(URL).unwrap_or_default(), secrets).await?;
    let applied = applied(&pool, secrets).await?;
    let previous_version = applied.keys().max().copied().unwrap_or(0);
    let in_the_way: Vec<i64> = applied.keys().copied().filter(|v| *v > target).collect();
    let irreversible: Vec<String> = in_the_way
        .iter()
        .filter(|v| {
            !migrator
                .iter()
                .any(|m| m.version == **v && m.migration_type.is_down_migration())
        })
        .map(|v| file_of(files, *v))
        .collect();
    if !irreversible.is_empty() {
        return Err(StepFailure::InvalidInput(format!(
            "cannot revert to version {target}: {} {} no `.down.sql` (irreversible); nothing was reverted",
            irreversible.join(", "),
            if irreversible.len() == 1 {
                "has"
            } else {
                "have"
            }
        )));
    }
    for v in &in_the_way {
        let up = migrator
            .iter()
            .find(|m| m.version == *v && !m.migration_type.is_down_migration());
        if let (Some(m), Some(recorded)) = (up, applied.get(v))
            && recorded.as_slice() != &*m.checksum
        {
            return Err(StepFailure::MigrationChanged {
                version: *v,
                file: file_of(files, *v),
                applied: hex::encode(recorded),
                current: hex::encode(&m.checksum),
            });
        }
    }
    pool.close().await;
    let reverted = crate::heartbeat::beating(ctx, async {
        undo(&spec.database_url, &spec.directory, target).await
    })
    .await?;
    info!(rollout = %step.rollout, step = %step.step, to = target, reverted = ?reverted, "migrated down");
    Ok(MigrateOutput {
        applied: Vec::new(),
        pending: Vec::new(),
        already_applied: applied.len() as u32,
        dry_run: false,
        previous_version,
        reverted,
    })
}

/// Applies pending migrations on `conn`, which holds the migration lock. Returns the ones
/// this call applied, with durations.
async fn apply_locked(
    conn: &mut PgConnection,
    migrator: &mut Migrator,
    files: &BTreeMap<i64, String>,
    secrets: &Secrets,
) -> Result<(i64, Vec<AppliedMigration>), StepFailure> {
    conn.ensure_migrations_table()
        .await
        .map_err(|e| migrate_error(e, migrator, files, secrets))?;
    let before: BTreeSet<i64> = conn
        .list_applied_migrations()
        .await
        .map_err(|e| migrate_error(e, migrator, files, secrets))?
        .into_iter()
        .map(|m| m.version)
        .collect();
    migrator.set_locking(false);
    migrator
        .run_direct(&mut *conn)
        .await
        .map_err(|e| migrate_error(e, migrator, files, secrets))?;
    let rows = sqlx::query(
        "SELECT version, description, execution_time FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| database("reading _sqlx_migrations", &e, secrets))?;
    let newly = rows
        .iter()
        .filter(|r| !before.contains(&r.get::<i64, _>("version")))
        .map(|r| AppliedMigration {
            version: r.get("version"),
            description: r.get("description"),
            duration_ms: r.get::<i64, _>("execution_time") as f64 / 1e6,
        })
        .collect();
    Ok((before.iter().max().copied().unwrap_or(0), newly))
}

/// Reverts applied reversible migrations newer than `target`, newest first. Returns the
/// versions reverted (none when the database is already at or below `target`).
pub(crate) async fn undo(
    database_url: &SecretRef,
    directory_path: &str,
    target: i64,
) -> Result<Vec<i64>, StepFailure> {
    let secrets = Secrets::single(URL, database_url)?.with_url_password(URL);
    let dir = directory(directory_path)?;
    let files = file_names(&dir)?;
    let migrator = load(&dir).await?;
    let pool = connect(secrets.get(URL).unwrap_or_default(), &secrets).await?;
    let before: BTreeSet<i64> = applied(&pool, &secrets).await?.into_keys().collect();
    migrator
        .undo(&pool, target)
        .await
        .map_err(|e| migrate_error(e, &migrator, &files, &secrets))?;
    let after: BTreeSet<i64> = applied(&pool, &secrets).await?.into_keys().collect();
    pool.close().await;
    let mut reverted: Vec<i64> = before.difference(&after).copied().collect();
    reverted.reverse();
    Ok(reverted)
}

fn directory(path: &str) -> Result<PathBuf, StepFailure> {
    let dir = std::env::current_dir()
        .map_err(|e| StepFailure::io("reading the worker's directory", e))?
        .join(path);
    if !dir.is_dir() {
        return Err(StepFailure::InvalidInput(format!(
            "migrations directory `{}` does not exist on the worker",
            dir.display()
        )));
    }
    Ok(dir)
}

async fn load(dir: &Path) -> Result<Migrator, StepFailure> {
    Migrator::new(dir.to_owned()).await.map_err(|e| {
        StepFailure::InvalidInput(format!(
            "cannot read migrations in `{}`: {e}",
            dir.display()
        ))
    })
}

/// version → file name, for messages (sqlx keeps only versions and descriptions).
fn file_names(dir: &Path) -> Result<BTreeMap<i64, String>, StepFailure> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| StepFailure::io(format!("listing `{}`", dir.display()), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".down.sql") || !name.ends_with(".sql") {
            continue;
        }
        if let Some(version) = name.split('_').next().and_then(|v| v.parse().ok()) {
            out.insert(version, dir.join(&name).display().to_string());
        }
    }
    Ok(out)
}

fn file_of(files: &BTreeMap<i64, String>, version: i64) -> String {
    files
        .get(&version)
        .cloned()
        .unwrap_or_else(|| format!("version {version}"))
}

/// Applied versions and their checksums; empty when the table does not exist yet.
async fn applied(pool: &PgPool, secrets: &Secrets) -> Result<BTreeMap<i64, Vec<u8>>, StepFailure> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(|e| database("looking for _sqlx_migrations", &e, secrets))?;
    if !exists {
        return Ok(BTreeMap::new());
    }
    let rows = sqlx::query("SELECT version, checksum FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await
        .map_err(|e| database("reading _sqlx_migrations", &e, secrets))?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<i64, _>("version"), r.get::<Vec<u8>, _>("checksum")))
        .collect())
}

fn database(context: &str, err: &sqlx::Error, secrets: &Secrets) -> StepFailure {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            StepFailure::DatabaseUnavailable(secrets.redact(&db_message(err)))
        }
        _ => StepFailure::Database {
            context: context.to_owned(),
            message: secrets.redact(&db_message(err)),
        },
    }
}

fn migrate_error(
    err: MigrateError,
    migrator: &Migrator,
    files: &BTreeMap<i64, String>,
    secrets: &Secrets,
) -> StepFailure {
    match err {
        MigrateError::ExecuteMigration(e, version) => {
            let sql = migrator
                .iter()
                .find(|m| m.version == version)
                .map(|m| m.sql.to_string())
                .unwrap_or_default();
            StepFailure::MigrationFailed {
                file: file_of(files, version),
                line: error_line(&e, &sql),
                message: secrets.redact(&db_message(&e)),
            }
        }
        MigrateError::VersionMismatch(version) => StepFailure::MigrationChanged {
            version,
            file: file_of(files, version),
            applied: "(changed during the run)".to_owned(),
            current: migrator
                .iter()
                .find(|m| m.version == version)
                .map(|m| hex::encode(&m.checksum))
                .unwrap_or_default(),
        },
        MigrateError::Execute(e) => database("running migrations", &e, secrets),
        other => StepFailure::InvalidInput(secrets.redact(&other.to_string())),
    }
}

/// The 1-based line of `sql` where PostgreSQL says the error is (1 when it does not say).
fn error_line(err: &sqlx::Error, sql: &str) -> usize {
    let position = match err {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<PgDatabaseError>()
            .and_then(|pg| pg.position())
            .and_then(|p| match p {
                sqlx::postgres::PgErrorPosition::Original(n) => Some(n),
                _ => None,
            }),
        _ => None,
    };
    match position {
        Some(chars) => {
            sql.chars()
                .take(chars.saturating_sub(1))
                .filter(|c| *c == '\n')
                .count()
                + 1
        }
        None => 1,
    }
}
