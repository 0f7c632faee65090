//! The database half of `provision`: a login role and a database it owns, created if absent.

use cutover_workflows::plan::DatabaseProvision;
use sqlx::PgPool;

use super::{connect, db_message};
use crate::error::StepFailure;
use crate::secrets::Secrets;

const ADMIN: &str = "admin_url";
const PASSWORD: &str = "owner_password";

/// Creates the role and the database when they do not exist. Returns what it changed.
///
/// Names were checked by the plan parser to be plain lowercase identifiers, so quoting them
/// with `"` is exact. The password travels as a SQL literal (PostgreSQL does not accept bind
/// parameters in `CREATE ROLE`), escaped, and never appears in messages.
pub(crate) async fn ensure(db: &DatabaseProvision) -> Result<Vec<String>, StepFailure> {
    let mut secrets = Secrets::single(ADMIN, &db.admin_url)?.with_url_password(ADMIN);
    if let Some(reference) = &db.owner_password {
        secrets.extend(Secrets::single(PASSWORD, reference)?);
    }
    let pool = connect(secrets.get(ADMIN).unwrap_or_default(), &secrets).await?;
    let mut changes = Vec::new();

    let role_exists: bool = scalar(
        &pool,
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
        &db.owner,
        &secrets,
    )
    .await?;
    if !role_exists {
        let mut sql = format!("CREATE ROLE \"{}\" LOGIN", db.owner);
        if let Some(password) = secrets.get(PASSWORD) {
            sql.push_str(&format!(" PASSWORD '{}'", password.replace('\'', "''")));
        }
        execute(
            &pool,
            &sql,
            &format!("creating role `{}`", db.owner),
            &secrets,
        )
        .await?;
        changes.push(format!("created role {}", db.owner));
    }
    let db_exists: bool = scalar(
        &pool,
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        &db.name,
        &secrets,
    )
    .await?;
    if !db_exists {
        // CREATE DATABASE cannot run in a transaction; a concurrent creator makes this fail
        // with "already exists", which the next attempt sees as done.
        let sql = format!("CREATE DATABASE \"{}\" OWNER \"{}\"", db.name, db.owner);
        execute(
            &pool,
            &sql,
            &format!("creating database `{}`", db.name),
            &secrets,
        )
        .await?;
        changes.push(format!(
            "created database {} owned by {}",
            db.name, db.owner
        ));
    }
    pool.close().await;
    Ok(changes)
}

async fn scalar(
    pool: &PgPool,
    sql: &str,
    arg: &str,
    secrets: &Secrets,
) -> Result<bool, StepFailure> {
    sqlx::query_scalar(sql)
        .bind(arg)
        .fetch_one(pool)
        .await
        .map_err(|e| StepFailure::Database {
            context: "inspecting roles and databases".to_owned(),
            message: secrets.redact(&db_message(&e)),
        })
}

async fn execute(
    pool: &PgPool,
    sql: &str,
    context: &str,
    secrets: &Secrets,
) -> Result<(), StepFailure> {
    sqlx::raw_sql(sql)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(|e| StepFailure::Database {
            context: context.to_owned(),
            message: secrets.redact(&db_message(&e)),
        })
}
