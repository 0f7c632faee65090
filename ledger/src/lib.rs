//! Cutover's ledger: what Temporal's retention would forget — every webhook delivery (accepted
//! or refused, and why) and every release (who triggered it, how it ended).
//!
//! One set of migrations (`migrations/` at the top of the repository) runs on SQLite, the
//! default (`.cutover/ledger.db`), and on PostgreSQL when the URL says so; the SQL is kept
//! portable and reached through sqlx's `Any` driver, so both are the same code. Migrations are
//! applied when the ledger is opened; a second open applies nothing.

mod audit;
mod deliveries;
mod drills;
mod releases;
mod retention;

use std::path::Path;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub use audit::{AuditFilter, AuditProblem, AuditRow, NewAudit};
pub use deliveries::{Claim, DeliveryRow, NewDelivery};
pub use drills::DrillRecord;
pub use releases::ReleaseRecord;
pub use retention::Pruned;

/// Where the ledger lives unless told otherwise, relative to the working directory.
pub const DEFAULT_PATH: &str = ".cutover/ledger.db";

/// Why the ledger could not be used. Messages never contain a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The URL is not one the ledger can use.
    #[error("ledger URL `{0}` is not supported: use `sqlite://PATH` or `postgres://USER@HOST/DB`")]
    Unsupported(String),
    /// The database could not be opened or reached.
    #[error("cannot open the ledger at {url}: {reason}")]
    Open {
        /// The URL, password redacted.
        url: String,
        /// What the driver said.
        reason: String,
    },
    /// A migration failed.
    #[error("applying the ledger's migrations to {url} failed: {reason}")]
    Migrate {
        /// The URL, password redacted.
        url: String,
        /// What sqlx said.
        reason: String,
    },
    /// A statement failed.
    #[error("ledger query failed: {0}")]
    Query(String),
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        LedgerError::Query(match &e {
            sqlx::Error::Database(db) => db.message().to_owned(),
            other => other.to_string(),
        })
    }
}

/// An open ledger. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Ledger {
    pool: AnyPool,
    url: String,
}

impl Ledger {
    /// The ledger URL to use: `explicit` if given, else `DATABASE_URL` when it is a PostgreSQL
    /// URL, else SQLite at [`DEFAULT_PATH`] under `dir`.
    pub fn resolve_url(explicit: Option<&str>, dir: &Path) -> String {
        if let Some(url) = explicit.filter(|u| !u.is_empty()) {
            return url.to_owned();
        }
        if let Ok(url) = std::env::var("DATABASE_URL")
            && (url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return url;
        }
        format!("sqlite://{}", dir.join(DEFAULT_PATH).display())
    }

    /// Opens (creating a SQLite file and its directory if needed) and migrates.
    ///
    /// # Errors
    ///
    /// [`LedgerError`] saying which URL (redacted) and why.
    pub async fn open(url: &str) -> Result<Ledger, LedgerError> {
        sqlx::any::install_default_drivers();
        let shown = redact(url);
        let connect_url = if let Some(path) = url.strip_prefix("sqlite://") {
            let file = path.split('?').next().unwrap_or_default();
            if let Some(parent) = Path::new(file).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| LedgerError::Open {
                    url: shown.clone(),
                    reason: format!("creating {}: {e}", parent.display()),
                })?;
            }
            if path.contains('?') {
                url.to_owned()
            } else {
                format!("{url}?mode=rwc")
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url.to_owned()
        } else {
            return Err(LedgerError::Unsupported(shown));
        };
        let sqlite = connect_url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // Several processes (receivers, workers, the CLI) share the file.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        // WAL with NORMAL sync: no corruption on a crash; a power loss may lose
                        // the last commits, which for a ledger row is the right trade for not
                        // syncing the disk on every webhook request.
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(|e| LedgerError::Open {
                url: shown.clone(),
                reason: strip(&e.to_string(), url),
            })?;
        sqlx::migrate!("../migrations")
            .run(&pool)
            .await
            .map_err(|e| LedgerError::Migrate {
                url: shown.clone(),
                reason: strip(&e.to_string(), url),
            })?;
        Ok(Ledger { pool, url: shown })
    }

    /// The URL, password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when it does not.
    pub async fn ping(&self) -> Result<(), LedgerError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Migrations applied so far, by version (for tests and diagnostics).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`].
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, LedgerError> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `scheme://user:***@host/...` — the URL with its password hidden.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Removes the URL's password from a driver message, in case the driver repeated it.
fn strip(message: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, p)| p)
        .filter(|p| p.len() >= 3);
    match password {
        Some(p) => message.replace(p, "***"),
        None => message.to_owned(),
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://cutover:s3cret@db:5432/ledger"),
            "postgres://cutover:***@db:5432/ledger"
        );
        assert_eq!(
            redact("sqlite://.cutover/ledger.db"),
            "sqlite://.cutover/ledger.db"
        );
        assert_eq!(
            strip(
                "password authentication failed (s3cret)",
                "postgres://u:s3cret@h/d"
            ),
            "password authentication failed (***)"
        );
    }

    #[tokio::test]
    async fn sqlite_migrates_once_and_refuses_other_schemes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = Ledger::resolve_url(None, dir.path());
        assert!(url.ends_with(".cutover/ledger.db"), "{url}");
        let first = Ledger::open(&url).await.expect("opens");
        assert_eq!(
            first.applied_migrations().await.expect("versions"),
            vec![1, 2, 3]
        );
        first.close().await;
        let second = Ledger::open(&url).await.expect("opens again");
        assert_eq!(
            second.applied_migrations().await.expect("versions"),
            vec![1, 2, 3]
        );
        let err = Ledger::open("mysql://root:pw@localhost/x")
            .await
            .expect_err("mysql");
        assert_eq!(
            err.to_string(),
            "ledger URL `mysql://root:***@localhost/x` is not supported: use `sqlite://PATH` or `postgres://USER@HOST/DB`"
        );
    }
}
