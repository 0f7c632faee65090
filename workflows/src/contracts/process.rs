//! Contracts of the steps that run a process or call HTTP: `process.run`, `build.run`,
//! `http.verify`.

use serde::{Deserialize, Serialize};

use super::StepRef;
use crate::plan::{BuildSpec, CommandSpec, VerifySpec};

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
