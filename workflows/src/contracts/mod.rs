//! Activity contracts: the names, inputs and outputs both the workflow and the worker compile
//! against. Implementations live in `cutover-activities`.
//!
//! Every input carries a [`StepRef`] so activity logs name the rollout and step they belong
//! to. No input or output carries a secret: commands name their secrets through
//! [`SecretRef`](crate::plan::SecretRef) and the worker resolves them.

use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

mod deploy;
mod kind;
mod postgres;
mod process;

pub use crate::control::AbortRequest;
pub use deploy::{
    DeployInput, DeployOutput, JobInput, JobOutput, PrepareOutput, RetireInput, RetireOutput,
    RollbackInput, RollbackOutput, RouteInput, RouteOutput, ShiftInput, ShiftOutput, WithdrawInput,
    WithdrawOutput,
};
pub use postgres::{
    AppliedMigration, MigrateInput, MigrateOutput, PendingMigration, ProvisionInput,
    ProvisionOutput, UndoMigrationsInput, UndoMigrationsOutput,
};
pub use process::{
    Artifact, BuildInput, BuildOutput, CommandInput, CommandOutput, VerifyInput, VerifyOutput,
};

use crate::analysis::Measurement;
use crate::plan::MetricSpec;

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

impl StepRef {
    /// The environment the rollout releases to: the last part of its workflow ID
    /// (`rollout/<service>/<environment>`; names never contain `/`). Empty for any other ID.
    pub fn environment(&self) -> &str {
        match self.rollout.split('/').collect::<Vec<_>>()[..] {
            ["rollout", _, environment] => environment,
            _ => "",
        }
    }
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

/// What a deploy on a fleet did on each of its hosts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetDeployOutput {
    /// Each host's deploy, by host name.
    pub hosts: std::collections::BTreeMap<String, DeployOutput>,
    /// How many waves were rolled.
    pub waves: usize,
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
    /// A `migrate` step run as a Kubernetes Job.
    Job(JobOutput),
    /// A `deploy` step.
    Deploy(DeployOutput),
    /// A `deploy` step on a fleet: each host's deploy.
    FleetDeploy(FleetDeployOutput),
    /// A `provision` or `rollback` step on a fleet: what it did on each host.
    OnHosts {
        /// Each host's output, by host name.
        hosts: std::collections::BTreeMap<String, StepOutput>,
    },
    /// A `rollback` step.
    Rollback(RollbackOutput),
    /// An `approval` step.
    Approval(ApprovalOutput),
    /// A `bake` step.
    Bake(BakeOutput),
    /// An `analysis` step.
    Analysis(AnalysisOutput),
}

/// Input of `ledger.record_audit`: human actions on one rollout, in the order they came.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditInput {
    /// The rollout's workflow ID (the run ID is the activity's own).
    pub workflow_id: String,
    /// The service.
    pub service: String,
    /// The environment.
    pub environment: String,
    /// The actions.
    pub entries: Vec<AuditEntry>,
}

/// One human action, accepted or refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its position among the rollout's actions: with the run ID, the row's key.
    pub seq: u32,
    /// `approve`, `refuse`, `pause`, `resume`, `abort`, `promote`, `retry`.
    pub action: String,
    /// Who: verified, or as claimed.
    pub person: String,
    /// `token`, `oidc`, or `claimed`.
    pub verified: String,
    /// `accepted` or `refused`.
    pub outcome: String,
    /// The step it concerned.
    pub step: Option<String>,
    /// Their reason or comment; for a refusal, why it was refused.
    pub reason: Option<String>,
    /// Unix milliseconds, the workflow's clock.
    pub at: Option<i64>,
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
    pub use super::kind::ErrorKind;

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
    /// An approval step's timeout passed without enough approvals (`on_timeout: abort`).
    pub const APPROVAL_TIMED_OUT: &str = "ApprovalTimedOut";
    /// An approver refused the release at an approval step (`cutover rollout refuse`). Not
    /// retryable: a person said no.
    pub const APPROVAL_REFUSED: &str = "ApprovalRefused";
    /// No agent of the step's host took the activity within the step's
    /// `schedule_to_start_timeout`. Not retryable: nothing ran, and waiting again changes
    /// nothing until someone starts the agent.
    pub const HOST_UNAVAILABLE: &str = "HostUnavailable";
    /// The Kubernetes API refused a request: forbidden by RBAC (403), an invalid object
    /// (400, 422), an unknown kind (404). Not retryable: the API said why, and asking again
    /// changes nothing.
    pub const KUBE_REFUSED: &str = "KubeRefused";
    /// The Kubernetes API could not be reached, or failed (5xx, 429, a conflict). Retryable.
    pub const KUBE_UNAVAILABLE: &str = "KubeUnavailable";
}

/// The activities a rollout calls.
pub struct RolloutActivities;

/// Marker types of the activities, for `#[activity(definition = ...)]` in implementations.
pub use rollout_activities::{
    Build, Measure, Migrate, Provision, RecordAudit, RecordRelease, RunCommand, UndoMigrations,
    Verify,
};
pub use target_activities::{Job, Prepare, Retire, Rollback, Rolling, Route, Shift, Withdraw};

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

    /// Appends human actions to the ledger's audit trail (keyed by workflow, run and
    /// sequence number: safe to repeat).
    #[activity(name = "ledger.record_audit")]
    pub fn record_audit(input: AuditInput) -> Result<(), ActivityError> {
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

    /// Points a fleet's traffic router at the hosts in service, the drained ones out.
    #[activity(name = "traffic.route")]
    pub fn route(input: RouteInput) -> Result<RouteOutput, ActivityError> {
        unimplemented!()
    }

    /// Undoes what an unfinished deploy of a version did (its instances stopped, traffic all
    /// to the serving release, restarted if need be) and checks every upstream member.
    #[activity(name = "deploy.withdraw")]
    pub fn withdraw(input: WithdrawInput) -> Result<WithdrawOutput, ActivityError> {
        unimplemented!()
    }

    /// Runs a migration as a Kubernetes Job and waits for its verdict (its exit code).
    #[activity(name = "kube.job")]
    pub fn job(input: JobInput) -> Result<JobOutput, ActivityError> {
        unimplemented!()
    }
}

#[cfg(test)]
mod tests {
    use super::StepRef;

    #[test]
    fn a_step_ref_knows_its_rollouts_environment() {
        let step = |rollout: &str| StepRef {
            rollout: rollout.to_owned(),
            step: "s".to_owned(),
            attempt: 1,
        };
        assert_eq!(step("rollout/hello/prod").environment(), "prod");
        assert_eq!(step("drill/hello/prod/x").environment(), "");
        assert_eq!(step("lock/hello/prod").environment(), "");
        assert_eq!(step("").environment(), "");
    }
}
