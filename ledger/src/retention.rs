//! Keeping the ledger from growing forever, and finding deliveries a receiver claimed but
//! never settled (it stopped between claiming a delivery and recording the start).
//!
//! Release records are kept: they are the history of what ran where. Webhook deliveries and
//! drill rows older than the retention are deleted; a claim still `starting` is never deleted
//! by age, since it is the one thing that keeps a redelivery from starting a second rollout
//! until it is resolved.

use serde::Serialize;

use crate::deliveries::{COLUMNS, DeliveryRow, Row, row};
use crate::{Ledger, LedgerError};

/// What a prune deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Webhook deliveries deleted.
    pub deliveries: u64,
    /// Drill rows deleted.
    pub drills: u64,
}

impl Ledger {
    /// Deletes deliveries received, and drills finished (or started, if they never
    /// finished), before `before_ms` (Unix ms). Unsettled claims stay.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`].
    pub async fn prune(&self, before_ms: i64) -> Result<Pruned, LedgerError> {
        let deliveries = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE received_at < $1 AND NOT (claimed = 1 AND outcome = 'starting')",
        )
        .bind(before_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let drills =
            sqlx::query("DELETE FROM drills WHERE COALESCE(finished_at, started_at, 0) < $1")
                .bind(before_ms)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(Pruned { deliveries, drills })
    }

    /// Claimed deliveries still `starting` that were received before `before_ms`: their
    /// receiver stopped before it recorded whether the rollout started. Oldest first.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`].
    pub async fn stuck_deliveries(&self, before_ms: i64) -> Result<Vec<DeliveryRow>, LedgerError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM webhook_deliveries WHERE claimed = 1 AND outcome = 'starting' AND received_at < $1 ORDER BY received_at, id"
        ))
        .bind(before_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(row).collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::deliveries::NewDelivery;
    use crate::{Claim, Ledger};

    fn delivery(id: &str, outcome: &str) -> NewDelivery {
        NewDelivery {
            provider: "github".into(),
            delivery_id: Some(id.into()),
            event: Some("push".into()),
            source: "127.0.0.1:5000".into(),
            status: 202,
            outcome: outcome.into(),
            reason: "rule matched".into(),
            rule: Some("main".into()),
            workflow_id: Some("rollout/a/b".into()),
        }
    }

    #[tokio::test]
    async fn prune_deletes_old_rows_but_never_an_unsettled_claim() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(&Ledger::resolve_url(None, dir.path()))
            .await
            .expect("opens");
        let Claim::Won(stuck) = ledger
            .claim_delivery(&delivery("d1", "starting"))
            .await
            .expect("claim")
        else {
            panic!("wins")
        };
        ledger
            .record_delivery(&delivery("d2", "ignored"))
            .await
            .expect("records");
        let later = crate::now_ms() + 1;
        assert_eq!(
            ledger.stuck_deliveries(later).await.expect("stuck")[0].id,
            stuck
        );
        assert!(ledger.stuck_deliveries(0).await.expect("stuck").is_empty());
        // Nothing is old enough at a cutoff in the past.
        let none = ledger.prune(0).await.expect("prunes");
        assert_eq!((none.deliveries, none.drills), (0, 0));
        let pruned = ledger.prune(later).await.expect("prunes");
        assert_eq!(pruned.deliveries, 1, "the ignored one, not the claim");
        let left = ledger.deliveries(10).await.expect("rows");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].outcome, "starting");
    }
}
