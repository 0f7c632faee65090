//! The activities of DR drills (`drill.*`). Database roles change through the [`Failover`]
//! trait (the host implementation drives `pg_ctl`, `pg_rewind` and the endpoint file); the
//! checks, markers and survey are plain SQL and HTTP.

use std::sync::Arc;

use cutover_workflows::drill::contracts as drill_contracts;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use super as drill;
use super::failover::{Failover, HostFailover};
use crate::{StepFailure, acting, ledger, verify};

/// The activities of DR drills (`drill.*`).
pub struct DrillActivityImpls {
    http: reqwest::Client,
    failover: HostFailover,
    kube: crate::kube::Endpoints,
    ledger: ledger::LazyLedger,
}

impl Default for DrillActivityImpls {
    /// With the ledger resolved as for [`RolloutActivityImpls::default`].
    fn default() -> Self {
        let url = std::env::var("CUTOVER_LEDGER_URL").ok();
        Self::with_ledger(url.as_deref())
    }
}

impl DrillActivityImpls {
    /// With the drill evidence written to the ledger at `url`.
    pub fn with_ledger(url: Option<&str>) -> Self {
        let dir = std::env::current_dir().unwrap_or_default();
        Self {
            http: verify::client(),
            failover: HostFailover,
            kube: crate::kube::Endpoints::default(),
            ledger: ledger::LazyLedger::new(cutover_ledger::Ledger::resolve_url(url, &dir)),
        }
    }
}

#[activities]
impl DrillActivityImpls {
    /// `drill.preflight`: read-only.
    #[activity(definition = drill_contracts::Preflight)]
    pub async fn preflight(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill_contracts::PreflightInput,
    ) -> Result<drill_contracts::PreflightOutput, ActivityError> {
        acting(&ctx, drill::preflight(&self.http, &input)).await
    }

    /// `drill.mark`: writes markers until the primary goes away or the time is up.
    #[activity(definition = drill_contracts::Mark)]
    pub async fn mark(
        ctx: ActivityContext,
        input: drill_contracts::MarkInput,
    ) -> Result<drill_contracts::MarkOutput, ActivityError> {
        acting(&ctx, drill::mark(&input)).await
    }

    /// `drill.fault`: a stopped primary stays stopped.
    #[activity(definition = drill_contracts::Fault)]
    pub async fn fault(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill_contracts::NodeInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        acting(&ctx, self.failover.fault(&input)).await
    }

    /// `drill.restart`: a running server is left running.
    #[activity(definition = drill_contracts::Restart)]
    pub async fn restart(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill_contracts::NodeInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        acting(&ctx, self.failover.restart(&input)).await
    }

    /// `drill.fence`: a standby or a stopped server is left as it is.
    #[activity(definition = drill_contracts::Fence)]
    pub async fn fence(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill_contracts::NodeInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        acting(&ctx, self.failover.fence(&input)).await
    }

    /// `drill.rebuild`: a server already streaming from the source is left alone.
    #[activity(definition = drill_contracts::Rebuild)]
    pub async fn rebuild(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill_contracts::RebuildInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        acting(&ctx, self.failover.rebuild(&input)).await
    }

    /// `drill.promote`: "already promoted" is success.
    #[activity(definition = drill_contracts::Promote)]
    pub async fn promote(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill_contracts::NodeInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        acting(&ctx, self.failover.promote(&input)).await
    }

    /// `drill.switch`: the same content written again changes nothing (a file, or on
    /// Kubernetes a Secret key and the Deployment's restart).
    #[activity(definition = drill_contracts::Switch)]
    pub async fn switch(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill_contracts::SwitchInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        match &input.kubernetes {
            Some(to) => acting(&ctx, drill::switch_kube(&self.kube, &input, to)).await,
            None => acting(&ctx, self.failover.switch(&input)).await,
        }
    }

    /// `drill.verify`: its writes are tagged with the drill run.
    #[activity(definition = drill_contracts::Verify)]
    pub async fn verify(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill_contracts::AppVerifyInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        acting(&ctx, drill::verify(&self.http, &input)).await
    }

    /// `drill.record`: an upsert keyed by workflow and run.
    #[activity(definition = drill_contracts::Record)]
    pub async fn record(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill_contracts::RecordInput,
    ) -> Result<(), ActivityError> {
        let run_id = ctx.info().workflow_run_id.clone().unwrap_or_default();
        self.ledger
            .record_drill(&input, &run_id)
            .await
            .map_err(StepFailure::into_activity_error)
    }

    /// `drill.survey`: read-only.
    #[activity(definition = drill_contracts::Survey)]
    pub async fn survey(
        ctx: ActivityContext,
        input: drill_contracts::SurveyInput,
    ) -> Result<drill_contracts::SurveyOutput, ActivityError> {
        acting(&ctx, drill::survey(&input)).await
    }
}
