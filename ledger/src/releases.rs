//! Releases: one row per rollout run, written by the rollout when it starts and when it ends.

use serde::{Deserialize, Serialize};

use crate::{Ledger, LedgerError};

/// A release as the ledger keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// `rollout/<service>/<environment>`.
    pub workflow_id: String,
    /// The run.
    pub run_id: String,
    /// The service.
    pub service: String,
    /// The environment.
    pub environment: String,
    /// The version.
    pub version: String,
    /// What started it: `cli`, `github`, `gitlab`, `generic`, `schedule`.
    pub trigger: String,
    /// Who or which delivery, e.g. `alice` or `github delivery 72d3…, rule main`.
    pub trigger_detail: Option<String>,
    /// `running`, then `succeeded`, `rolled_back`, `failed`, `cancelled`.
    pub outcome: String,
    /// Why it ended so.
    pub reason: Option<String>,
    /// Unix milliseconds (the workflow's clock).
    pub started_at: Option<i64>,
    /// Unix milliseconds.
    pub finished_at: Option<i64>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

impl Ledger {
    /// Writes or updates the release of `r.workflow_id`/`r.run_id`. Idempotent: writing the
    /// same record twice leaves one row as it was.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`].
    pub async fn record_release(&self, r: &ReleaseRecord) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT INTO releases (workflow_id, run_id, service, environment, version, trigger_kind, trigger_detail, outcome, reason, started_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (workflow_id, run_id) DO UPDATE SET outcome = excluded.outcome, reason = excluded.reason, \
             started_at = COALESCE(releases.started_at, excluded.started_at), finished_at = excluded.finished_at",
        )
        .bind(&r.workflow_id)
        .bind(&r.run_id)
        .bind(&r.service)
        .bind(&r.environment)
        .bind(&r.version)
        .bind(&r.trigger)
        .bind(r.trigger_detail.as_deref())
        .bind(&r.outcome)
        .bind(r.reason.as_deref())
        .bind(r.started_at)
        .bind(r.finished_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Releases, newest first, optionally of one service and/or environment.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`].
    pub async fn releases(
        &self,
        service: Option<&str>,
        environment: Option<&str>,
        last: u32,
    ) -> Result<Vec<ReleaseRecord>, LedgerError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT workflow_id, run_id, service, environment, version, trigger_kind, trigger_detail, outcome, reason, started_at, finished_at \
             FROM releases WHERE ($1 IS NULL OR service = $1) AND ($2 IS NULL OR environment = $2) \
             ORDER BY started_at DESC LIMIT $3",
        )
        .bind(service)
        .bind(environment)
        .bind(i64::from(last))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ReleaseRecord {
                workflow_id: r.0,
                run_id: r.1,
                service: r.2,
                environment: r.3,
                version: r.4,
                trigger: r.5,
                trigger_detail: r.6,
                outcome: r.7,
                reason: r.8,
                started_at: r.9,
                finished_at: r.10,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_release_is_written_at_start_and_updated_at_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(&Ledger::resolve_url(None, dir.path()))
            .await
            .expect("opens");
        let mut r = ReleaseRecord {
            workflow_id: "rollout/hello/dev".into(),
            run_id: "r1".into(),
            service: "hello".into(),
            environment: "dev".into(),
            version: "1.0.0".into(),
            trigger: "cli".into(),
            trigger_detail: Some("alice".into()),
            outcome: "running".into(),
            reason: None,
            started_at: Some(1000),
            finished_at: None,
        };
        ledger.record_release(&r).await.expect("start");
        ledger.record_release(&r).await.expect("start again");
        r.outcome = "succeeded".into();
        r.finished_at = Some(2000);
        ledger.record_release(&r).await.expect("end");
        let other = ReleaseRecord {
            workflow_id: "rollout/other/dev".into(),
            service: "other".into(),
            started_at: Some(3000),
            ..r.clone()
        };
        ledger.record_release(&other).await.expect("other");
        assert_eq!(
            ledger
                .releases(Some("hello"), None, 10)
                .await
                .expect("rows"),
            vec![r]
        );
        assert_eq!(
            ledger
                .releases(None, Some("dev"), 10)
                .await
                .expect("rows")
                .len(),
            2
        );
        assert!(
            ledger
                .releases(None, Some("prod"), 10)
                .await
                .expect("rows")
                .is_empty()
        );
    }
}
