//! Activity contracts: the names, inputs and outputs both the workflow and the worker compile
//! against. Implementations live in `cutover-activities`.
//!
//! Every input carries a [`StepRef`] so activity logs name the rollout and step they belong
//! to. No input or output carries a secret: commands name their secrets through
//! [`SecretRef`](crate::plan::SecretRef) and the worker resolves them.

use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

use crate::plan::{BuildSpec, CommandSpec, VerifySpec};

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
}

/// Error kinds activities fail with; the Temporal application failure's type name.
///
/// Plans name these in `retry.non_retryable`. Activities already mark the kinds that can never
/// succeed on retry as non-retryable.
pub mod error_kind {
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
}

/// The activities a rollout calls.
pub struct RolloutActivities;

/// Marker types of the activities, for `#[activity(definition = ...)]` in implementations.
pub use rollout_activities::{Build, RunCommand, Verify};

#[activity_definitions]
impl RolloutActivities {
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
}
