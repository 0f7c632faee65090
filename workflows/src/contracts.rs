//! Activity contracts: the names, inputs and outputs both the workflow and the worker compile
//! against. Implementations live in `cutover-activities`.
//!
//! Every input carries a [`StepRef`] so activity logs name the rollout and step they belong
//! to. No input or output carries a secret: commands name their secrets through
//! [`SecretRef`](crate::plan::SecretRef) and the worker resolves them.

use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

use crate::analysis::Measurement;
use crate::plan::{
    BuildSpec, CommandSpec, DeploySpec, MetricSpec, MigrateSpec, ProvisionSpec, RollbackSpec,
    SecretRef, VerifySpec,
};

/// Which rollout and step an activity runs for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRef {
    /// The rollout's workflow ID.
    pub rollout: String,
    /// The step's name.
    pub step: String,
    /// The attempt number (1-based), as counted by the workflow.
    pub attempt: u32,
}

/// Input of `process.run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandInput {
    /// Who runs it.
    pub step: StepRef,
    /// What to run.
    pub spec: CommandSpec,
}

/// Output of `process.run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandOutput {
    /// Always 0: a non-zero exit is a failure.
    pub exit_code: i32,
    /// Lines the command wrote (stdout and stderr).
    pub lines: u64,
}

/// Input of `build.run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildInput {
    /// Who runs it.
    pub step: StepRef,
    /// What to build.
    pub spec: BuildSpec,
}

/// Output of `build.run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildOutput {
    /// The command's result.
    pub command: CommandOutput,
    /// The declared artifact, fingerprinted.
    pub artifact: Option<Artifact>,
}

/// A file a build produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Absolute path on the worker that built it.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the contents.
    pub sha256: String,
}

/// Input of `http.verify`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyInput {
    /// Who runs it.
    pub step: StepRef,
    /// What to check.
    pub spec: VerifySpec,
}

/// Output of `http.verify`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyOutput {
    /// Checks sent in all.
    pub checks: u32,
    /// Checks that passed in a row at the end.
    pub consecutive_passes: u32,
    /// Status of the last response.
    pub last_status: u16,
}

/// Input of `postgres.migrate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MigrateInput {
    /// Who runs it.
    pub step: StepRef,
    /// What to apply.
    pub spec: MigrateSpec,
}

/// Output of `postgres.migrate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MigrateOutput {
    /// Applied by this step, in order, with how long each took.
    pub applied: Vec<AppliedMigration>,
    /// On a dry run: what would be applied.
    pub pending: Vec<PendingMigration>,
    /// How many were applied before this step.
    pub already_applied: u32,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The highest version applied before this step (0: none); what a rollback returns to.
    #[serde(default)]
    pub previous_version: i64,
}

/// A migration this step applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedMigration {
    /// Its version.
    pub version: i64,
    /// Its description (from the file name).
    pub description: String,
    /// How long it took, as recorded in `_sqlx_migrations`.
    pub duration_ms: f64,
}

/// A migration a dry run would apply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingMigration {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// Its file on the worker.
    pub file: String,
}

/// Input of `postgres.undo_migrations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UndoMigrationsInput {
    /// Who runs it.
    pub step: StepRef,
    /// The database.
    pub database_url: SecretRef,
    /// The migrations directory (with `.down.sql` files).
    pub directory: String,
    /// Revert every applied migration newer than this.
    pub target_version: i64,
}

/// Output of `postgres.undo_migrations`: the versions reverted, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UndoMigrationsOutput {
    /// Reverted versions.
    pub reverted: Vec<i64>,
}

/// Input of `provision.apply`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProvisionInput {
    /// Who runs it.
    pub step: StepRef,
    /// The target driver (`host`).
    pub driver: crate::plan::Driver,
    /// The service.
    pub service: String,
    /// The version being released (its release directory is created).
    pub version: String,
    /// What to create.
    pub spec: ProvisionSpec,
}

/// Output of `provision.apply`: what changed; empty when everything was already there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProvisionOutput {
    /// One line per change.
    pub changes: Vec<String>,
}

/// Input of `deploy.prepare` and `deploy.rolling`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployInput {
    /// Who runs it.
    pub step: StepRef,
    /// The target driver.
    pub driver: crate::plan::Driver,
    /// The service.
    pub service: String,
    /// The version to deploy.
    pub version: String,
    /// How.
    pub spec: DeploySpec,
}

/// Output of `deploy.prepare`: the new version's instances are up and healthy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrepareOutput {
    /// The version.
    pub version: String,
    /// Its instances' ports.
    pub ports: Vec<u16>,
    /// The version it replaces, if any.
    pub previous: Option<String>,
    /// True when this version was already serving: nothing was started.
    pub already_current: bool,
}

/// Input of `traffic.shift`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShiftInput {
    /// Who runs it.
    pub step: StepRef,
    /// The target driver.
    pub driver: crate::plan::Driver,
    /// The service.
    pub service: String,
    /// Release root.
    pub root: String,
    /// The prepared version.
    pub version: String,
    /// Percent of traffic it gets.
    pub weight: u8,
}

/// Output of `traffic.shift`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShiftOutput {
    /// The weight now in effect.
    pub weight: u8,
    /// From the upstream rewrite to the last old nginx worker gone.
    pub applied_ms: f64,
}

/// Input of `deploy.retire`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetireInput {
    /// Who runs it.
    pub step: StepRef,
    /// The target driver.
    pub driver: crate::plan::Driver,
    /// The service.
    pub service: String,
    /// Release root.
    pub root: String,
    /// The version to keep; every other instance is stopped.
    pub keep: String,
}

/// Output of `deploy.retire`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetireOutput {
    /// Instances stopped, as `version@port`.
    pub stopped: Vec<String>,
}

/// Input of `deploy.rollback`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackInput {
    /// Who runs it.
    pub step: StepRef,
    /// The target driver.
    pub driver: crate::plan::Driver,
    /// The service.
    pub service: String,
    /// Where.
    pub spec: RollbackSpec,
}

/// Output of `deploy.rollback`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackOutput {
    /// The version that was serving.
    pub from: String,
    /// The version serving now.
    pub to: String,
}

/// What a `deploy` step did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployOutput {
    /// The new version's instances.
    pub prepared: PrepareOutput,
    /// Each traffic shift, in order.
    pub shifts: Vec<ShiftOutput>,
    /// Instances of older versions stopped after the rollback window.
    pub retired: Vec<String>,
}

/// Signal `abort`: stop the rollout and undo what it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AbortRequest {
    /// Who.
    pub by: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// What an `approval` step ended with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalOutput {
    /// Distinct approvers.
    pub approvers: Vec<String>,
    /// True when the timeout passed and `on_timeout: continue` let the rollout go on.
    pub timed_out: bool,
}

/// What a `bake` step ended with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BakeOutput {
    /// True when someone promoted before the time was up.
    pub promoted: bool,
}

/// The typed result of one step, kept in status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepOutput {
    /// A `command` step.
    Command(CommandOutput),
    /// A `build` step.
    Build(BuildOutput),
    /// A `verify` step.
    Verify(VerifyOutput),
    /// A `provision` step.
    Provision(ProvisionOutput),
    /// A `migrate` step.
    Migrate(MigrateOutput),
    /// A `deploy` step.
    Deploy(DeployOutput),
    /// A `rollback` step.
    Rollback(RollbackOutput),
    /// An `approval` step.
    Approval(ApprovalOutput),
    /// A `bake` step.
    Bake(BakeOutput),
    /// An `analysis` step.
    Analysis(AnalysisOutput),
}

/// Input of `ledger.record_release`: the release as the workflow knows it now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleaseInput {
    /// `rollout/<service>/<environment>` (the run ID is the activity's own).
    pub workflow_id: String,
    /// The service.
    pub service: String,
    /// The environment.
    pub environment: String,
    /// The version.
    pub version: String,
    /// What started it.
    pub trigger: String,
    /// Who, or which delivery.
    pub trigger_detail: Option<String>,
    /// `running` at the start; the final state at the end.
    pub outcome: String,
    /// Why it ended so.
    pub reason: Option<String>,
    /// Unix milliseconds, the workflow's clock.
    pub started_at: Option<i64>,
    /// Unix milliseconds, the workflow's clock.
    pub finished_at: Option<i64>,
}

/// Input of `analysis.measure`: one measurement of every metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisInput {
    /// Who measures.
    pub step: StepRef,
    /// 1-based number of this measurement in its analysis.
    pub number: u32,
    /// What to measure.
    pub metrics: Vec<MetricSpec>,
}

/// Output of an `analysis` step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisOutput {
    /// Measurements taken.
    pub measurements: u32,
    /// Of which failed.
    pub failed: u32,
    /// Of which inconclusive.
    pub inconclusive: u32,
    /// True when someone promoted before the analysis ended.
    pub promoted: bool,
}

/// Error kinds activities fail with; the Temporal application failure's type name.
///
/// Plans name these in `retry.non_retryable`. Activities already mark the kinds that can never
/// succeed on retry as non-retryable.
pub mod error_kind {
    /// An analysis had more failed measurements than its `failure_limit`. Not retryable.
    pub const ANALYSIS_FAILED: &str = "AnalysisFailed";
    /// A command exited non-zero. Retryable.
    pub const COMMAND_FAILED: &str = "CommandFailed";
    /// The program does not exist or cannot be executed. Not retryable.
    pub const COMMAND_NOT_FOUND: &str = "CommandNotFound";
    /// The working directory does not exist. Not retryable.
    pub const WORKDIR_MISSING: &str = "WorkdirMissing";
    /// A build succeeded but its declared artifact is missing. Not retryable.
    pub const ARTIFACT_MISSING: &str = "ArtifactMissing";
    /// A secret reference could not be resolved. Not retryable.
    pub const SECRET_UNAVAILABLE: &str = "SecretUnavailable";
    /// An HTTP check did not pass. Retryable.
    pub const CHECK_FAILED: &str = "CheckFailed";
    /// The activity input is invalid (e.g. a malformed URL). Not retryable.
    pub const INVALID_INPUT: &str = "InvalidInput";
    /// An I/O error on the worker. Retryable.
    pub const IO: &str = "Io";
    /// The attempt ran past its timeout, or its worker stopped heartbeating. Retryable.
    pub const TIMEOUT: &str = "Timeout";
    /// The database could not be reached. Retryable.
    pub const DATABASE_UNAVAILABLE: &str = "DatabaseUnavailable";
    /// An applied migration's file changed. Not retryable.
    pub const MIGRATION_CHANGED: &str = "MigrationChanged";
    /// A migration's SQL failed (and was rolled back). Not retryable.
    pub const MIGRATION_FAILED: &str = "MigrationFailed";
    /// Another SQL statement failed. Retryable.
    pub const DATABASE: &str = "Database";
    /// New instances did not become healthy, or traffic could not be moved. Retryable.
    pub const DEPLOY_FAILED: &str = "DeployFailed";
    /// A port the deploy needs is taken. Not retryable.
    pub const PORT_TAKEN: &str = "PortTaken";
}

/// The activities a rollout calls.
pub struct RolloutActivities;

/// Marker types of the activities, for `#[activity(definition = ...)]` in implementations.
pub use rollout_activities::{
    Build, Measure, Migrate, Provision, RecordRelease, RunCommand, UndoMigrations, Verify,
};
pub use target_activities::{Prepare, Retire, Rollback, Rolling, Shift};

#[activity_definitions]
impl RolloutActivities {
    /// Measures every metric of an analysis once and judges each by its condition. Never
    /// fails for an unreachable source: that metric is inconclusive.
    #[activity(name = "analysis.measure")]
    pub fn measure(input: AnalysisInput) -> Result<Measurement, ActivityError> {
        unimplemented!()
    }

    /// Writes the rollout's release record to the ledger (an upsert: safe to repeat).
    #[activity(name = "ledger.record_release")]
    pub fn record_release(input: ReleaseInput) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Runs a command to completion.
    #[activity(name = "process.run")]
    pub fn run_command(input: CommandInput) -> Result<CommandOutput, ActivityError> {
        unimplemented!()
    }

    /// Runs a build and fingerprints its artifact.
    #[activity(name = "build.run")]
    pub fn build(input: BuildInput) -> Result<BuildOutput, ActivityError> {
        unimplemented!()
    }

    /// Checks a service over HTTP until it passes or the window closes.
    #[activity(name = "http.verify")]
    pub fn verify(input: VerifyInput) -> Result<VerifyOutput, ActivityError> {
        unimplemented!()
    }

    /// Applies migrations under an advisory lock.
    #[activity(name = "postgres.migrate")]
    pub fn migrate(input: MigrateInput) -> Result<MigrateOutput, ActivityError> {
        unimplemented!()
    }

    /// Reverts reversible migrations down to a version.
    #[activity(name = "postgres.undo_migrations")]
    pub fn undo_migrations(
        input: UndoMigrationsInput,
    ) -> Result<UndoMigrationsOutput, ActivityError> {
        unimplemented!()
    }

    /// Creates the release layout, env file, database and role.
    #[activity(name = "provision.apply")]
    pub fn provision(input: ProvisionInput) -> Result<ProvisionOutput, ActivityError> {
        unimplemented!()
    }
}

/// The activities that act on a deploy target through its driver.
pub struct TargetActivities;

#[activity_definitions]
impl TargetActivities {
    /// Starts the new version beside the old and waits until it is healthy.
    #[activity(name = "deploy.prepare")]
    pub fn prepare(input: DeployInput) -> Result<PrepareOutput, ActivityError> {
        unimplemented!()
    }

    /// Moves a share of traffic to the prepared version.
    #[activity(name = "traffic.shift")]
    pub fn shift(input: ShiftInput) -> Result<ShiftOutput, ActivityError> {
        unimplemented!()
    }

    /// Stops instances of every version but one.
    #[activity(name = "deploy.retire")]
    pub fn retire(input: RetireInput) -> Result<RetireOutput, ActivityError> {
        unimplemented!()
    }

    /// Replaces instances one at a time.
    #[activity(name = "deploy.rolling")]
    pub fn rolling(input: DeployInput) -> Result<PrepareOutput, ActivityError> {
        unimplemented!()
    }

    /// Points traffic back at the previous release and stops the current one.
    #[activity(name = "deploy.rollback")]
    pub fn rollback(input: RollbackInput) -> Result<RollbackOutput, ActivityError> {
        unimplemented!()
    }
}
