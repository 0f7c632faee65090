//! Webhook deliveries: every request a receiver answered, and the claim that makes one
//! delivery start at most one rollout.

use serde::Serialize;

use crate::{Ledger, LedgerError};

/// A request as it arrived, before its outcome is known (or with it, for refusals).
#[derive(Clone, Debug)]
pub struct NewDelivery {
    /// `github`, `gitlab`, `generic`.
    pub provider: String,
    /// The provider's delivery ID, when the request carried one.
    pub delivery_id: Option<String>,
    /// The provider's event name, when known.
    pub event: Option<String>,
    /// The peer address.
    pub source: String,
    /// HTTP status answered.
    pub status: u16,
    /// `started`, `duplicate`, `ignored`, `rejected`, `unavailable`, `conflict`, `starting`.
    pub outcome: String,
    /// Why, in words.
    pub reason: String,
    /// The trigger rule that matched.
    pub rule: Option<String>,
    /// The rollout a claimed delivery is about to start, so that a receiver that stopped
    /// before settling the claim can find out afterwards whether it did.
    pub workflow_id: Option<String>,
}

/// One row of `cutover webhooks deliveries`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveryRow {
    /// The ledger's own ID of the row.
    pub id: String,
    /// `github`, `gitlab`, `generic`.
    pub provider: String,
    /// The provider's delivery ID.
    pub delivery_id: Option<String>,
    /// The provider's event name.
    pub event: Option<String>,
    /// Unix milliseconds.
    pub received_at: i64,
    /// The peer address.
    pub source: String,
    /// HTTP status answered.
    pub status: u16,
    /// What came of it.
    pub outcome: String,
    /// Why.
    pub reason: String,
    /// The matching rule.
    pub rule: Option<String>,
    /// The rollout started, if any.
    pub workflow_id: Option<String>,
    /// Its run.
    pub run_id: Option<String>,
}

/// The result of claiming a delivery.
#[derive(Clone, Debug)]
pub enum Claim {
    /// This receiver owns the delivery: it starts the rollout and settles the row.
    Won(String),
    /// The delivery was claimed before: here is that row, as it stands.
    Taken(Box<DeliveryRow>),
}

pub(crate) type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub(crate) const COLUMNS: &str = "id, provider, delivery_id, event, received_at, source, status, outcome, reason, rule_name, workflow_id, run_id";

pub(crate) fn row(r: Row) -> DeliveryRow {
    DeliveryRow {
        id: r.0,
        provider: r.1,
        delivery_id: r.2,
        event: r.3,
        received_at: r.4,
        source: r.5,
        status: u16::try_from(r.6).unwrap_or_default(),
        outcome: r.7,
        reason: r.8,
        rule: r.9,
        workflow_id: r.10,
        run_id: r.11,
    }
}

impl Ledger {
    /// Records a request that will not start anything (refused, ignored).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`].
    pub async fn record_delivery(&self, d: &NewDelivery) -> Result<String, LedgerError> {
        self.insert(d, false).await
    }

    /// Claims `d` (which must carry a delivery ID) for this receiver, or returns the row of
    /// whoever claimed it first.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`].
    pub async fn claim_delivery(&self, d: &NewDelivery) -> Result<Claim, LedgerError> {
        match self.insert(d, true).await {
            Ok(id) => Ok(Claim::Won(id)),
            // The unique index refused the row: someone claimed it first.
            Err(e) => match self.claimed(d).await? {
                Some(row) => Ok(Claim::Taken(Box::new(row))),
                None => Err(e),
            },
        }
    }

    /// The claimed row of `d`'s provider and delivery ID, if any.
    async fn claimed(&self, d: &NewDelivery) -> Result<Option<DeliveryRow>, LedgerError> {
        self.claimed_delivery(&d.provider, d.delivery_id.as_deref().unwrap_or_default())
            .await
    }

    /// The claimed row of a provider's delivery, if any.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`].
    pub async fn claimed_delivery(
        &self,
        provider: &str,
        delivery_id: &str,
    ) -> Result<Option<DeliveryRow>, LedgerError> {
        let r: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM webhook_deliveries WHERE provider = $1 AND delivery_id = $2 AND claimed = 1"
        ))
        .bind(provider)
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.map(row))
    }

    /// Settles a claimed row with its outcome. With `keep_claim` false the claim is given up,
    /// so that a redelivery may try again (the rollout could not be started).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`].
    #[allow(clippy::too_many_arguments)]
    pub async fn settle_delivery(
        &self,
        id: &str,
        status: u16,
        outcome: &str,
        reason: &str,
        workflow_id: Option<&str>,
        run_id: Option<&str>,
        keep_claim: bool,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, outcome = $2, reason = $3, workflow_id = $4, run_id = $5, claimed = $6 WHERE id = $7",
        )
        .bind(i64::from(status))
        .bind(outcome)
        .bind(reason)
        .bind(workflow_id)
        .bind(run_id)
        .bind(i64::from(keep_claim))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest `last` requests, newest first.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`].
    pub async fn deliveries(&self, last: u32) -> Result<Vec<DeliveryRow>, LedgerError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM webhook_deliveries ORDER BY received_at DESC, id DESC LIMIT $1"
        ))
        .bind(i64::from(last))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(row).collect())
    }

    /// Records many refusals in one transaction: one commit (and, on SQLite, one WAL write)
    /// for the lot, which is what lets a receiver keep up with a flood of bad requests while
    /// still recording every one. Either every row is written or none is.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`]; nothing of `rows` is recorded then.
    pub async fn record_deliveries(&self, rows: &[NewDelivery]) -> Result<(), LedgerError> {
        let now = crate::now_ms();
        let mut tx = self.pool.begin().await?;
        // Many rows per statement: on SQLite every statement is a round trip to the driver's
        // own thread, which is what a flood of one-row inserts spends its time on.
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(chunk.len());
            let mut query = sqlx::query(&sql);
            for d in chunk {
                query = bind_row(query, uuid::Uuid::new_v4().to_string(), d, false, now);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert(&self, d: &NewDelivery, claimed: bool) -> Result<String, LedgerError> {
        let id = uuid::Uuid::new_v4().to_string();
        let sql = insert_sql(1);
        bind_row(sqlx::query(&sql), id.clone(), d, claimed, crate::now_ms())
            .execute(&self.pool)
            .await?;
        Ok(id)
    }
}

/// The columns a delivery row is inserted with, in [`bind_row`]'s order.
const INSERT: &str = "INSERT INTO webhook_deliveries (id, provider, delivery_id, event, received_at, source, status, outcome, reason, rule_name, claimed, workflow_id) VALUES ";
const INSERT_COLUMNS: usize = 12;
/// Rows per multi-row insert: 64 × 12 parameters stays under SQLite's oldest limit (999).
const ROWS_PER_INSERT: usize = 64;

/// Binds one row's values, in [`INSERT`]'s column order.
fn bind_row<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    id: String,
    d: &'q NewDelivery,
    claimed: bool,
    received_at: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(id)
        .bind(&d.provider)
        .bind(d.delivery_id.as_deref())
        .bind(d.event.as_deref())
        .bind(received_at)
        .bind(&d.source)
        .bind(i64::from(d.status))
        .bind(&d.outcome)
        .bind(&d.reason)
        .bind(d.rule.as_deref())
        .bind(i64::from(claimed))
        .bind(d.workflow_id.as_deref())
}

/// `INSERT … VALUES ($1, …, $12), ($13, …), …` for `rows` rows (`$N` placeholders, which both
/// SQLite and PostgreSQL take through sqlx's `Any`).
fn insert_sql(rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::from(INSERT);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 1..=INSERT_COLUMNS {
            let sep = if column == 1 { "" } else { ", " };
            let _ = write!(sql, "{sep}${}", row * INSERT_COLUMNS + column);
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: &str) -> NewDelivery {
        NewDelivery {
            provider: "github".into(),
            delivery_id: Some(id.into()),
            event: Some("push".into()),
            source: "127.0.0.1:5000".into(),
            status: 202,
            outcome: "starting".into(),
            reason: "rule matched".into(),
            rule: Some("main".into()),
            workflow_id: None,
        }
    }

    #[tokio::test]
    async fn a_delivery_is_claimed_once_and_a_released_claim_can_be_taken_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(&Ledger::resolve_url(None, dir.path()))
            .await
            .expect("opens");
        let Claim::Won(first) = ledger.claim_delivery(&delivery("d1")).await.expect("claim") else {
            panic!("the first claim wins")
        };
        ledger
            .settle_delivery(
                &first,
                202,
                "started",
                "ok",
                Some("rollout/a/b"),
                Some("run-1"),
                true,
            )
            .await
            .expect("settle");
        let Claim::Taken(row) = ledger.claim_delivery(&delivery("d1")).await.expect("claim") else {
            panic!("the second claim finds the first")
        };
        assert_eq!(
            (row.outcome.as_str(), row.run_id.as_deref()),
            ("started", Some("run-1"))
        );
        // Refusals with the same delivery ID never block the claim.
        ledger
            .record_delivery(&NewDelivery {
                status: 401,
                outcome: "rejected".into(),
                ..delivery("d2")
            })
            .await
            .expect("record");
        let Claim::Won(second) = ledger.claim_delivery(&delivery("d2")).await.expect("claim")
        else {
            panic!("a refused delivery can still be claimed")
        };
        ledger
            .settle_delivery(&second, 503, "unavailable", "down", None, None, false)
            .await
            .expect("give up");
        assert!(matches!(
            ledger.claim_delivery(&delivery("d2")).await.expect("claim"),
            Claim::Won(_)
        ));
        let rows = ledger.deliveries(10).await.expect("rows");
        assert_eq!(rows.len(), 4, "a lost claim writes no row of its own");
    }

    #[tokio::test]
    async fn refusals_in_one_batch_are_all_written_across_several_inserts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(&Ledger::resolve_url(None, dir.path()))
            .await
            .expect("opens");
        let rows: Vec<NewDelivery> = (0..(2 * ROWS_PER_INSERT + 5))
            .map(|i| NewDelivery {
                status: 401,
                outcome: "rejected".into(),
                ..delivery(&format!("r{i}"))
            })
            .collect();
        ledger.record_deliveries(&rows).await.expect("written");
        let written = ledger.deliveries(1000).await.expect("rows");
        assert_eq!(written.len(), rows.len());
        let last = format!("r{}", rows.len() - 1);
        assert!(
            written
                .iter()
                .any(|r| r.delivery_id.as_deref() == Some(last.as_str()))
        );
        assert!(
            written
                .iter()
                .all(|r| r.status == 401 && r.outcome == "rejected")
        );
        // The same delivery ID twice among refusals is two rows, not a conflict.
        ledger
            .record_deliveries(&[rows[0].clone(), rows[0].clone()])
            .await
            .expect("refusals never conflict");
    }
}
