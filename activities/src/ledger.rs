//! The worker's handle on the ledger: opened (and migrated) on first use, so a worker whose
//! ledger is briefly unreachable still starts and runs rollouts; the release-record activity
//! retries until it is back.

use cutover_ledger::{Ledger, ReleaseRecord};
use cutover_workflows::contracts::ReleaseInput;
use tokio::sync::OnceCell;

use crate::error::StepFailure;

pub(crate) struct LazyLedger {
    url: String,
    ledger: OnceCell<Ledger>,
}

impl LazyLedger {
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            ledger: OnceCell::new(),
        }
    }

    async fn get(&self) -> Result<&Ledger, StepFailure> {
        self.ledger
            .get_or_try_init(|| Ledger::open(&self.url))
            .await
            .map_err(|e| StepFailure::DatabaseUnavailable(e.to_string()))
    }

    pub(crate) async fn record(&self, r: &ReleaseInput, run_id: &str) -> Result<(), StepFailure> {
        let record = ReleaseRecord {
            workflow_id: r.workflow_id.clone(),
            run_id: run_id.to_owned(),
            service: r.service.clone(),
            environment: r.environment.clone(),
            version: r.version.clone(),
            trigger: r.trigger.clone(),
            trigger_detail: r.trigger_detail.clone(),
            outcome: r.outcome.clone(),
            reason: r.reason.clone(),
            started_at: r.started_at,
            finished_at: r.finished_at,
        };
        let ledger = self.get().await?;
        crate::metrics::ledger_write("release", ledger.record_release(&record))
            .await
            .map_err(|e| StepFailure::DatabaseUnavailable(e.to_string()))
    }
}

impl LazyLedger {
    pub(crate) async fn record_drill(
        &self,
        input: &cutover_workflows::drill::contracts::RecordInput,
        run_id: &str,
    ) -> Result<(), StepFailure> {
        let (plan, st) = (&input.plan, &input.status);
        let record = cutover_ledger::DrillRecord {
            workflow_id: st.workflow_id.clone(),
            run_id: run_id.to_owned(),
            drill: plan.drill.clone(),
            service: plan.service.clone(),
            environment: plan.environment.clone(),
            mode: plan.mode.as_str().to_owned(),
            state: st.state.as_str().to_owned(),
            rto_ms: st.rto_ms,
            rto_objective_ms: plan.objectives.rto.as_millis() as i64,
            rpo_markers: st.rpo_markers.map(|n| n as i64),
            rpo_objective: plan.objectives.rpo_markers as i64,
            rpo_bytes: st.rpo_bytes.map(|n| n as i64),
            markers: st.markers as i64,
            reason: st.reason.clone(),
            restoration: st.restoration.clone(),
            phases: serde_json::to_string(&st.phases).unwrap_or_default(),
            started_at: st.started_at.map(|t| t.timestamp_millis()),
            finished_at: st.finished_at.map(|t| t.timestamp_millis()),
        };
        let ledger = self.get().await?;
        crate::metrics::ledger_write("drill", ledger.record_drill(&record))
            .await
            .map_err(|e| StepFailure::DatabaseUnavailable(e.to_string()))
    }
}

impl LazyLedger {
    pub(crate) async fn audit(
        &self,
        input: &cutover_workflows::contracts::AuditInput,
        run_id: &str,
    ) -> Result<(), StepFailure> {
        let entries: Vec<_> = input
            .entries
            .iter()
            .map(|e| cutover_ledger::NewAudit {
                key: format!("{}/{run_id}/{}", input.workflow_id, e.seq),
                at: e.at,
                subject: input.workflow_id.clone(),
                run_id: run_id.to_owned(),
                service: input.service.clone(),
                environment: input.environment.clone(),
                action: e.action.clone(),
                outcome: e.outcome.clone(),
                person: e.person.clone(),
                verified: e.verified.clone(),
                step: e.step.clone(),
                reason: e.reason.clone(),
                source: "workflow".to_owned(),
            })
            .collect();
        let ledger = self.get().await?;
        crate::metrics::ledger_write("audit", ledger.append_audit(&entries))
            .await
            .map_err(|e| StepFailure::DatabaseUnavailable(e.to_string()))
    }
}
