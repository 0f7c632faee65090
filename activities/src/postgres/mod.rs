//! PostgreSQL: migrations (sqlx's `Migrator`) and provisioning of roles and databases.

pub(crate) mod migrate;
pub(crate) mod provision;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::error::StepFailure;
use crate::secrets::Secrets;

/// Connects with a short acquire timeout: an unreachable database fails the attempt quickly
/// (retryable) instead of hanging until the step's timeout.
pub(crate) async fn connect(url: &str, secrets: &Secrets) -> Result<PgPool, StepFailure> {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|e| StepFailure::DatabaseUnavailable(secrets.redact(&db_message(&e))))
}

/// The database's own message when there is one (without sqlx's wrapping).
pub(crate) fn db_message(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}
