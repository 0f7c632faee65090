//! Every side effect Cutover performs, as Temporal activities.
//!
//! Each activity implements a contract declared in `cutover_workflows::contracts`, is safe to
//! run more than once, and classifies its failures as retryable or not
//! ([`StepFailure`]). Long activities heartbeat so that a dead worker is noticed within the
//! heartbeat timeout rather than the step timeout.

mod analysis;
mod artifact;
mod drill;
mod drivers;
mod error;
mod heartbeat;
mod host;
mod ledger;
mod postgres;
mod process;
mod secrets;
mod verify;

use std::sync::Arc;

use cutover_workflows::contracts::{
    self, AnalysisInput, BuildInput, BuildOutput, CommandInput, CommandOutput, DeployInput,
    MigrateInput, MigrateOutput, PrepareOutput, ProvisionInput, ProvisionOutput, ReleaseInput,
    RetireInput, RetireOutput, RollbackInput, RollbackOutput, ShiftInput, ShiftOutput,
    UndoMigrationsInput, UndoMigrationsOutput, VerifyInput, VerifyOutput,
};
use cutover_workflows::drill::contracts as drill_contracts;
use drivers::DeployDriver;
use heartbeat::beating;
use host::HostDriver;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub use error::StepFailure;

/// Registers every Cutover workflow and every real activity on a worker's options: what
/// `cutover-worker` runs. `ledger` is the ledger URL (see [`RolloutActivityImpls::with_ledger`]);
/// `client` is what the lock activities talk to Temporal with.
///
/// # Errors
/// A workflow was already registered on `options`.
pub fn register_all<S: temporalio_sdk::worker_options_builder::State>(
    options: temporalio_sdk::WorkerOptionsBuilder<S>,
    ledger: Option<&str>,
    client: temporalio_client::Client,
) -> Result<temporalio_sdk::WorkerOptionsBuilder<S>, temporalio_sdk::WorkflowRegistrationError> {
    Ok(cutover_workflows::register_workflows(options)?
        .register_activities(RolloutActivityImpls::with_ledger(ledger))
        .register_activities(TargetActivityImpls::default())
        .register_activities(DrillActivityImpls::with_ledger(ledger))
        .register_activities(LockActivityImpls::new(client)))
}

/// The rollout activities, registered on a worker with `register_activities`.
pub struct RolloutActivityImpls {
    http: reqwest::Client,
    host: HostDriver,
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
        on_target(
            &ctx,
            input.driver,
            self.host
                .provision(&input.service, &input.version, &input.spec),
        )
        .await
    }
}

/// Runs a driver operation: refuses drivers this worker lacks, heartbeats meanwhile, and
/// classifies the failure.
async fn on_target<T>(
    ctx: &ActivityContext,
    driver: cutover_workflows::plan::Driver,
    work: impl std::future::Future<Output = Result<T, StepFailure>>,
) -> Result<T, ActivityError> {
    let run = async {
        drivers::check(driver)?;
        work.await
    };
    acting(ctx, run).await
}

/// Runs an activity's work: heartbeats meanwhile, and turns its failure into the typed
/// activity error (kind, message, retryable).
async fn acting<T>(
    ctx: &ActivityContext,
    work: impl std::future::Future<Output = Result<T, StepFailure>>,
) -> Result<T, ActivityError> {
    beating(ctx, work)
        .await
        .map_err(StepFailure::into_activity_error)
}

/// The activities that act on a deploy target through its driver.
pub struct TargetActivityImpls {
    host: HostDriver,
}

impl Default for TargetActivityImpls {
    fn default() -> Self {
        Self {
            host: HostDriver::new(verify::client()),
        }
    }
}

#[activities]
impl TargetActivityImpls {
    /// `deploy.prepare`: starts the new version beside the old; reuses healthy instances.
    #[activity(definition = contracts::Prepare)]
    pub async fn prepare(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DeployInput,
    ) -> Result<PrepareOutput, ActivityError> {
        on_target(
            &ctx,
            input.driver,
            self.host
                .prepare(&input.service, &input.version, &input.spec),
        )
        .await
    }

    /// `traffic.shift`: rewrites the upstream and waits until nginx applies it.
    #[activity(definition = contracts::Shift)]
    pub async fn shift(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ShiftInput,
    ) -> Result<ShiftOutput, ActivityError> {
        on_target(
            &ctx,
            input.driver,
            self.host
                .shift(&input.service, &input.root, &input.version, input.weight),
        )
        .await
    }

    /// `deploy.retire`: stops the other versions' instances.
    #[activity(definition = contracts::Retire)]
    pub async fn retire(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RetireInput,
    ) -> Result<RetireOutput, ActivityError> {
        on_target(
            &ctx,
            input.driver,
            self.host.retire(&input.service, &input.root, &input.keep),
        )
        .await
    }

    /// `deploy.rolling`: one instance at a time.
    #[activity(definition = contracts::Rolling)]
    pub async fn rolling(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DeployInput,
    ) -> Result<PrepareOutput, ActivityError> {
        on_target(
            &ctx,
            input.driver,
            self.host
                .rolling(&input.service, &input.version, &input.spec),
        )
        .await
    }

    /// `deploy.rollback`: keyed by workflow run and step, so a retry does not flip back.
    #[activity(definition = contracts::Rollback)]
    pub async fn rollback(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RollbackInput,
    ) -> Result<RollbackOutput, ActivityError> {
        let request = format!(
            "{}/{}/{}",
            input.step.rollout,
            ctx.info().workflow_run_id.clone().unwrap_or_default(),
            input.step.step
        );
        on_target(
            &ctx,
            input.driver,
            self.host
                .rollback(&request, &input.service, &input.spec.root),
        )
        .await
    }
}

/// The activities of DR drills (`drill.*`).
pub struct DrillActivityImpls {
    http: reqwest::Client,
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
        ctx: ActivityContext,
        input: drill_contracts::NodeInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        acting(&ctx, drill::fault(&input)).await
    }

    /// `drill.restart`: a running server is left running.
    #[activity(definition = drill_contracts::Restart)]
    pub async fn restart(
        ctx: ActivityContext,
        input: drill_contracts::NodeInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        acting(&ctx, drill::restart(&input)).await
    }

    /// `drill.fence`: a standby or a stopped server is left as it is.
    #[activity(definition = drill_contracts::Fence)]
    pub async fn fence(
        ctx: ActivityContext,
        input: drill_contracts::NodeInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        acting(&ctx, drill::fence(&input)).await
    }

    /// `drill.rebuild`: a server already streaming from the source is left alone.
    #[activity(definition = drill_contracts::Rebuild)]
    pub async fn rebuild(
        ctx: ActivityContext,
        input: drill_contracts::RebuildInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        acting(&ctx, drill::rebuild(&input)).await
    }

    /// `drill.promote`: "already promoted" is success.
    #[activity(definition = drill_contracts::Promote)]
    pub async fn promote(
        ctx: ActivityContext,
        input: drill_contracts::NodeInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        acting(&ctx, drill::promote(&input)).await
    }

    /// `drill.switch`: the same content written again changes nothing.
    #[activity(definition = drill_contracts::Switch)]
    pub async fn switch(
        ctx: ActivityContext,
        input: drill_contracts::SwitchInput,
    ) -> Result<drill_contracts::At, ActivityError> {
        acting(&ctx, drill::switch(&input)).await
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

/// The service lock's activities (`lock.*`); they start and signal the lock workflow.
pub struct LockActivityImpls {
    client: temporalio_client::Client,
}

impl LockActivityImpls {
    /// With the worker's own Temporal client.
    pub fn new(client: temporalio_client::Client) -> Self {
        Self { client }
    }
}

#[activities]
impl LockActivityImpls {
    /// `lock.acquire`: held by the same holder already is success.
    #[activity(definition = cutover_workflows::lock::contracts::Acquire)]
    pub async fn acquire(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: cutover_workflows::lock::contracts::LockRequest,
    ) -> Result<String, ActivityError> {
        let queue = ctx.info().task_queue.clone();
        let work = async {
            cutover_client::lock::acquire(&self.client, &queue, &input)
                .await
                .map_err(lock_failure)
        };
        acting(&ctx, work).await
    }

    /// `lock.release`: gone already is success.
    #[activity(definition = cutover_workflows::lock::contracts::Release)]
    pub async fn release(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: cutover_workflows::lock::contracts::LockRequest,
    ) -> Result<(), ActivityError> {
        let work = async {
            cutover_client::lock::release(&self.client, &input)
                .await
                .map_err(lock_failure)
        };
        acting(&ctx, work).await
    }
}

/// Held is final (`ServiceLocked`, not retried); a Temporal that cannot be asked is retried.
fn lock_failure(e: cutover_client::lock::LockError) -> StepFailure {
    match e {
        cutover_client::lock::LockError::Held(why) => StepFailure::Locked(why),
        e @ cutover_client::lock::LockError::Unavailable(_) => {
            StepFailure::CheckFailed(e.to_string())
        }
    }
}
