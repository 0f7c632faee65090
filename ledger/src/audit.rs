//! The audit trail: human actions, accepted or refused, in a hash chain.
//!
//! Each row's `hash` is SHA-256 over its contents and the previous row's hash; `position`
//! counts from 1 without gaps. [`Ledger::verify_audit`] recomputes the chain and names the
//! first row that was changed, removed or put out of order. Deleting the newest rows leaves a
//! shorter chain that still verifies: keep the count or the last hash elsewhere (the
//! `cutover audit verify` output prints both) to detect that.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Ledger, LedgerError};

/// The `prev_hash` of the first row.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An action to append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAudit {
    /// Unique: a second append with the same key changes nothing (activities retry).
    pub key: String,
    /// When the action happened, Unix ms (the workflow's clock, or the receiver's).
    pub at: Option<i64>,
    /// The rollout's workflow ID, or what the receiver was asked to act on.
    pub subject: String,
    /// The workflow run, empty when the action never reached one.
    pub run_id: String,
    /// The service.
    pub service: String,
    /// The environment.
    pub environment: String,
    /// `approve`, `refuse`, `pause`, `resume`, `abort`, `promote`, `retry`.
    pub action: String,
    /// `accepted` or `refused`.
    pub outcome: String,
    /// Who; `unknown` when the receiver could not tell.
    pub person: String,
    /// `token`, `oidc`, `claimed` or `none`.
    pub verified: String,
    /// The step concerned.
    pub step: Option<String>,
    /// The comment, or why it was refused.
    pub reason: Option<String>,
    /// `workflow` (the rollout recorded it) or `receiver` (refused before reaching one).
    pub source: String,
}

/// A row of the trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// 1, 2, 3, … in the order written.
    pub position: i64,
    /// When it was written, Unix ms.
    pub recorded_at: i64,
    /// The action.
    #[serde(flatten)]
    pub entry: NewAudit,
    /// The previous row's hash.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// Which rows to list.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only this service.
    pub service: Option<String>,
    /// Only actions at or after this time, Unix ms.
    pub since: Option<i64>,
    /// At most this many, newest last.
    pub limit: Option<i64>,
}

/// The first thing wrong with the chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditProblem {
    /// A row's contents do not match its hash.
    #[error(
        "row {position} (`{key}`) was changed after it was written: its hash does not match its contents"
    )]
    Changed {
        /// Where.
        position: i64,
        /// Its key.
        key: String,
    },
    /// Positions jump.
    #[error("rows {from} to {to} are missing (the row after {before} is {after})", from = before + 1, to = after - 1)]
    Missing {
        /// The last row before the gap.
        before: i64,
        /// The first row after it.
        after: i64,
    },
    /// A row does not link to the one before it.
    #[error("row {position} does not follow row {} (its previous hash is not that row's hash): rows were replaced or reordered", position - 1)]
    Unlinked {
        /// Where.
        position: i64,
    },
}

fn hash(prev: &str, position: i64, recorded_at: i64, e: &NewAudit) -> String {
    // The JSON of a struct has a fixed field order: a stable serialisation to hash.
    let body = serde_json::to_vec(&(prev, position, recorded_at, e)).unwrap_or_default();
    hex::encode(Sha256::digest(body))
}

#[derive(sqlx::FromRow)]
struct Row {
    position: i64,
    entry_key: String,
    at: Option<i64>,
    recorded_at: i64,
    subject: String,
    run_id: String,
    service: String,
    environment: String,
    action: String,
    outcome: String,
    person: String,
    verified: String,
    step: Option<String>,
    reason: Option<String>,
    source: String,
    prev_hash: String,
    hash: String,
}

const COLUMNS: &str = "position, entry_key, at, recorded_at, subject, run_id, service, environment, action, outcome, person, verified, step, reason, source, prev_hash, hash";

fn row(r: Row) -> AuditRow {
    AuditRow {
        position: r.position,
        recorded_at: r.recorded_at,
        entry: NewAudit {
            key: r.entry_key,
            at: r.at,
            subject: r.subject,
            run_id: r.run_id,
            service: r.service,
            environment: r.environment,
            action: r.action,
            outcome: r.outcome,
            person: r.person,
            verified: r.verified,
            step: r.step,
            reason: r.reason,
            source: r.source,
        },
        prev_hash: r.prev_hash,
        hash: r.hash,
    }
}

impl Ledger {
    /// Appends actions to the chain, in order; those already there (by key) are skipped.
    ///
    /// # Errors
    /// [`LedgerError::Query`].
    pub async fn append_audit(&self, entries: &[NewAudit]) -> Result<(), LedgerError> {
        for e in entries {
            self.append_one(e).await?;
        }
        Ok(())
    }

    async fn append_one(&self, e: &NewAudit) -> Result<(), LedgerError> {
        let mut last_error = None;
        // Writers racing for the same position: the unique keys let one win; the others
        // read the new end of the chain and try again.
        for _ in 0..50 {
            let seen: Option<(i64,)> =
                sqlx::query_as("SELECT position FROM audit WHERE entry_key = $1")
                    .bind(&e.key)
                    .fetch_optional(&self.pool)
                    .await?;
            if seen.is_some() {
                return Ok(());
            }
            let tail: Option<(i64, String)> =
                sqlx::query_as("SELECT position, hash FROM audit ORDER BY position DESC LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
            let (position, prev) = tail.map_or((1, GENESIS.to_owned()), |(p, h)| (p + 1, h));
            let recorded_at = chrono::Utc::now().timestamp_millis();
            let digest = hash(&prev, position, recorded_at, e);
            let inserted = sqlx::query(&format!(
                "INSERT INTO audit ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
            ))
            .bind(position)
            .bind(&e.key)
            .bind(e.at)
            .bind(recorded_at)
            .bind(&e.subject)
            .bind(&e.run_id)
            .bind(&e.service)
            .bind(&e.environment)
            .bind(&e.action)
            .bind(&e.outcome)
            .bind(&e.person)
            .bind(&e.verified)
            .bind(e.step.as_deref())
            .bind(e.reason.as_deref())
            .bind(&e.source)
            .bind(&prev)
            .bind(&digest)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => return Ok(()),
                Err(err) => {
                    last_error = Some(LedgerError::from(err));
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        }
        Err(last_error
            .unwrap_or_else(|| LedgerError::Query("audit append kept losing races".to_owned())))
    }

    /// Rows, oldest first.
    ///
    /// # Errors
    /// [`LedgerError::Query`].
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, LedgerError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM audit \
             WHERE ($1 IS NULL OR service = $1) AND ($2 IS NULL OR at >= $2) \
             ORDER BY position DESC LIMIT $3) AS recent ORDER BY position"
        ))
        .bind(filter.service.as_deref())
        .bind(filter.since)
        .bind(filter.limit.unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(row).collect())
    }

    /// Recomputes the whole chain. `Ok` holds the number of rows and the last hash.
    ///
    /// # Errors
    /// The first [`AuditProblem`] found (outer error: the query failed).
    pub async fn verify_audit(&self) -> Result<Result<(i64, String), AuditProblem>, LedgerError> {
        let rows: Vec<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM audit ORDER BY position"))
                .fetch_all(&self.pool)
                .await?;
        let mut prev = (0_i64, GENESIS.to_owned());
        for r in rows.into_iter().map(row) {
            if r.position != prev.0 + 1 {
                return Ok(Err(AuditProblem::Missing {
                    before: prev.0,
                    after: r.position,
                }));
            }
            if r.prev_hash != prev.1 {
                return Ok(Err(AuditProblem::Unlinked {
                    position: r.position,
                }));
            }
            if hash(&r.prev_hash, r.position, r.recorded_at, &r.entry) != r.hash {
                return Ok(Err(AuditProblem::Changed {
                    position: r.position,
                    key: r.entry.key,
                }));
            }
            prev = (r.position, r.hash);
        }
        Ok(Ok(prev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, person: &str) -> NewAudit {
        NewAudit {
            key: key.to_owned(),
            at: Some(1),
            subject: "rollout/shop/prod".to_owned(),
            run_id: "r".to_owned(),
            service: "shop".to_owned(),
            environment: "prod".to_owned(),
            action: "approve".to_owned(),
            outcome: "accepted".to_owned(),
            person: person.to_owned(),
            verified: "token".to_owned(),
            step: Some("sign-off".to_owned()),
            reason: None,
            source: "workflow".to_owned(),
        }
    }

    #[tokio::test]
    async fn the_chain_detects_edits_and_deletions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("l.db").display());
        let ledger = Ledger::open(&url).await.expect("open");
        let entries: Vec<_> = (0..5).map(|i| entry(&format!("k{i}"), "ana")).collect();
        ledger.append_audit(&entries).await.expect("append");
        // Retried activity: the same keys again change nothing.
        ledger
            .append_audit(&entries[..2])
            .await
            .expect("append again");
        let (count, _) = ledger.verify_audit().await.expect("query").expect("intact");
        assert_eq!(count, 5);
        // Many writers at once still make one chain.
        let writers = (0..8).map(|w| {
            let l = ledger.clone();
            tokio::spawn(async move {
                let batch: Vec<_> = (0..5).map(|i| entry(&format!("w{w}-{i}"), "bo")).collect();
                l.append_audit(&batch).await
            })
        });
        for w in writers {
            w.await.expect("join").expect("append");
        }
        assert_eq!(
            ledger.verify_audit().await.expect("q").expect("intact").0,
            45
        );

        sqlx::query("UPDATE audit SET person = 'mallory' WHERE position = 3")
            .execute(&ledger.pool)
            .await
            .expect("tamper");
        let problem = ledger
            .verify_audit()
            .await
            .expect("q")
            .expect_err("tampered");
        assert!(
            matches!(problem, AuditProblem::Changed { position: 3, .. }),
            "{problem}"
        );
        sqlx::query("UPDATE audit SET person = 'ana' WHERE position = 3")
            .execute(&ledger.pool)
            .await
            .expect("restore");
        sqlx::query("DELETE FROM audit WHERE position = 4")
            .execute(&ledger.pool)
            .await
            .expect("delete");
        let problem = ledger
            .verify_audit()
            .await
            .expect("q")
            .expect_err("tampered");
        assert_eq!(
            problem,
            AuditProblem::Missing {
                before: 3,
                after: 5
            }
        );
        assert_eq!(
            problem.to_string(),
            "rows 4 to 4 are missing (the row after 3 is 5)"
        );
    }
}
