//! The rollout activities that do not go through a deploy target: commands, builds, HTTP
//! checks, measurements, migrations, provisioning and the release record.

use std::sync::Arc;

use cutover_workflows::contracts::{
    self, AnalysisInput, BuildInput, BuildOutput, CommandInput, CommandOutput, MigrateInput,
    MigrateOutput, ProvisionInput, ProvisionOutput, ReleaseInput, UndoMigrationsInput,
    UndoMigrationsOutput, VerifyInput, VerifyOutput,
};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::drivers::DeployDriver;
use crate::heartbeat::beating;
use crate::host::HostDriver;
use crate::{
    StepFailure, acting, analysis, artifact, ledger, on_target, postgres, process, verify,
};

/// The rollout activities, registered on a worker with `register_activities`.
pub struct RolloutActivityImpls {
    http: reqwest::Client,
    host: HostDriver,
    kube: crate::kube::KubeDriver,
    ledger: ledger::LazyLedger,
}

impl Default for RolloutActivityImpls {
    /// With the ledger at `CUTOVER_LEDGER_URL`, else a PostgreSQL `DATABASE_URL`, else
    /// `.cutover/ledger.db` in the working directory.
    fn default() -> Self {
        let url = std::env::var("CUTOVER_LEDGER_URL").ok();
        Self::with_ledger(url.as_deref())
    }
}

impl RolloutActivityImpls {
    /// With the ledger at `url` (resolved as [`cutover_ledger::Ledger::resolve_url`] does).
    /// The ledger is opened, and migrated, on the first release record.
    pub fn with_ledger(url: Option<&str>) -> Self {
        let dir = std::env::current_dir().unwrap_or_default();
        Self {
            http: verify::client(),
            host: HostDriver::new(verify::client()),
            kube: crate::kube::KubeDriver::default(),
            ledger: ledger::LazyLedger::new(cutover_ledger::Ledger::resolve_url(url, &dir)),
        }
    }
}

#[activities]
impl RolloutActivityImpls {
    /// `process.run`: runs the step's command. Running it twice runs the command twice, so a
    /// `command` step should itself be idempotent (`terraform apply` is).
    #[activity(definition = contracts::RunCommand)]
    pub async fn run_command(
        ctx: ActivityContext,
        input: CommandInput,
    ) -> Result<CommandOutput, ActivityError> {
        let finished = process::run(&ctx, &input.step, &input.spec)
            .await
            .map_err(StepFailure::into_activity_error)?;
        Ok(CommandOutput {
            exit_code: 0,
            lines: finished.lines,
        })
    }

    /// `build.run`: runs the build, then returns the artifact's path, size and SHA-256. A
    /// re-run rebuilds in place and fingerprints the result again.
    #[activity(definition = contracts::Build)]
    pub async fn build(
        ctx: ActivityContext,
        input: BuildInput,
    ) -> Result<BuildOutput, ActivityError> {
        let finished = process::run(&ctx, &input.step, &input.spec.command)
            .await
            .map_err(StepFailure::into_activity_error)?;
        let artifact = match &input.spec.artifact {
            Some(path) => Some(
                artifact::fingerprint(&finished.workdir.join(path))
                    .await
                    .map_err(StepFailure::into_activity_error)?,
            ),
            None => None,
        };
        Ok(BuildOutput {
            command: CommandOutput {
                exit_code: 0,
                lines: finished.lines,
            },
            artifact,
        })
    }

    /// `http.verify`: read-only HTTP checks, safe to repeat.
    #[activity(definition = contracts::Verify)]
    pub async fn verify(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: VerifyInput,
    ) -> Result<VerifyOutput, ActivityError> {
        verify::verify(&ctx, &self.http, &input.step, &input.spec)
            .await
            .map_err(StepFailure::into_activity_error)
    }

    /// `analysis.measure`: read-only measurements, safe to repeat. Heartbeats while it waits
    /// on probes and queries.
    #[activity(definition = contracts::Measure)]
    pub async fn measure(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AnalysisInput,
    ) -> Result<cutover_workflows::analysis::Measurement, ActivityError> {
        let work = async {
            Ok::<_, StepFailure>(analysis::measure(&self.http, input.number, &input.metrics).await)
        };
        acting(&ctx, work).await
    }

    /// `ledger.record_release`: an upsert keyed by workflow and run.
    #[activity(definition = contracts::RecordRelease)]
    pub async fn record_release(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ReleaseInput,
    ) -> Result<(), ActivityError> {
        let run_id = ctx.info().workflow_run_id.clone().unwrap_or_default();
        self.ledger
            .record(&input, &run_id)
            .await
            .map_err(StepFailure::into_activity_error)
    }

    /// `ledger.record_audit`: appends to the audit trail, keyed by workflow, run and the
    /// action's position (a retried write adds nothing).
    #[activity(definition = contracts::RecordAudit)]
    pub async fn record_audit(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: cutover_workflows::contracts::AuditInput,
    ) -> Result<(), ActivityError> {
        let run_id = ctx.info().workflow_run_id.clone().unwrap_or_default();
        self.ledger
            .audit(&input, &run_id)
            .await
            .map_err(StepFailure::into_activity_error)
    }

    /// `postgres.migrate`: idempotent by construction — applied migrations are skipped.
    #[activity(definition = contracts::Migrate)]
    pub async fn migrate(
        ctx: ActivityContext,
        input: MigrateInput,
    ) -> Result<MigrateOutput, ActivityError> {
        postgres::migrate::migrate(&ctx, &input.step, &input.spec)
            .await
            .map_err(StepFailure::into_activity_error)
    }

    /// `postgres.undo_migrations`: reverting to a version already reached reverts nothing.
    #[activity(definition = contracts::UndoMigrations)]
    pub async fn undo_migrations(
        ctx: ActivityContext,
        input: UndoMigrationsInput,
    ) -> Result<UndoMigrationsOutput, ActivityError> {
        beating(
            &ctx,
            postgres::migrate::undo(&input.database_url, &input.directory, input.target_version),
        )
        .await
        .map(|reverted| UndoMigrationsOutput { reverted })
        .map_err(StepFailure::into_activity_error)
    }

    /// `provision.apply`: creates what is missing; a second run changes nothing.
    #[activity(definition = contracts::Provision)]
    pub async fn provision(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ProvisionInput,
    ) -> Result<ProvisionOutput, ActivityError> {
        if input.driver == cutover_workflows::plan::Driver::Kubernetes {
            let op = self
                .kube
                .provision(&input.service, &input.version, &input.spec);
            return on_target(&ctx, input.driver, op).await;
        }
        let op = self
            .host
            .provision(&input.service, &input.version, &input.spec);
        on_target(
            &ctx,
            input.driver,
            self.host
                .bound(&input.spec.root, &input.service, &input.step, op),
        )
        .await
    }
}
