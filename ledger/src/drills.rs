//! DR drill evidence: each drill's phases, RTO/RPO against the objectives, and what it
//! restored — kept for auditors after Temporal's retention has forgotten the run.

use serde::{Deserialize, Serialize};

use crate::{Ledger, LedgerError};

/// One drill run as the ledger keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DrillRecord {
    /// `drill/<service>/<environment>/<drill>`.
    pub workflow_id: String,
    /// The run.
    pub run_id: String,
    /// The drill's name.
    pub drill: String,
    /// The service.
    pub service: String,
    /// The environment.
    pub environment: String,
    /// `failover` or `switchover`.
    pub mode: String,
    /// `passed`, `missed`, `failed`.
    pub state: String,
    /// Fault to first verified write.
    pub rto_ms: Option<i64>,
    /// The RTO objective.
    pub rto_objective_ms: i64,
    /// Acknowledged markers lost.
    pub rpo_markers: Option<i64>,
    /// The RPO objective (markers).
    pub rpo_objective: i64,
    /// WAL bytes lost.
    pub rpo_bytes: Option<i64>,
    /// Markers acknowledged before the fault.
    pub markers: i64,
    /// Why it failed or missed.
    pub reason: Option<String>,
    /// What compensation did.
    pub restoration: Option<String>,
    /// The phases, as JSON (name, state, started_at, finished_at, note).
    pub phases: String,
    /// Unix ms.
    pub started_at: Option<i64>,
    /// Unix ms.
    pub finished_at: Option<i64>,
}

const COLUMNS: &str = "workflow_id, run_id, drill, service, environment, mode, state, rto_ms, rto_objective_ms, rpo_markers, rpo_objective, rpo_bytes, markers, reason, restoration, phases, started_at, finished_at";

impl Ledger {
    /// Writes (or rewrites) a drill's record.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`].
    pub async fn record_drill(&self, d: &DrillRecord) -> Result<(), LedgerError> {
        sqlx::query(&format!(
            "INSERT INTO drills ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
             ON CONFLICT (workflow_id, run_id) DO UPDATE SET state = excluded.state, rto_ms = excluded.rto_ms, \
             rpo_markers = excluded.rpo_markers, rpo_bytes = excluded.rpo_bytes, markers = excluded.markers, \
             reason = excluded.reason, restoration = excluded.restoration, phases = excluded.phases, \
             finished_at = excluded.finished_at"
        ))
        .bind(&d.workflow_id)
        .bind(&d.run_id)
        .bind(&d.drill)
        .bind(&d.service)
        .bind(&d.environment)
        .bind(&d.mode)
        .bind(&d.state)
        .bind(d.rto_ms)
        .bind(d.rto_objective_ms)
        .bind(d.rpo_markers)
        .bind(d.rpo_objective)
        .bind(d.rpo_bytes)
        .bind(d.markers)
        .bind(d.reason.as_deref())
        .bind(d.restoration.as_deref())
        .bind(&d.phases)
        .bind(d.started_at)
        .bind(d.finished_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest `last` drills, newest first.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`].
    pub async fn drills(&self, last: u32) -> Result<Vec<DrillRecord>, LedgerError> {
        Ok(sqlx::query_as::<_, DrillRecord>(&format!(
            "SELECT {COLUMNS} FROM drills ORDER BY started_at DESC LIMIT $1"
        ))
        .bind(i64::from(last))
        .fetch_all(&self.pool)
        .await?)
    }
}
