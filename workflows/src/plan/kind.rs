//! The kinds of step a plan can have, in one place: their YAML names, the keys each accepts
//! and their default timeouts. The parser, `StepAction::kind`, the status and the docs' table
//! all read this list, so a new kind is added here first and the compiler finds the rest.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A step's `kind:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Run a command.
    Command,
    /// Run a build and fingerprint its artifact.
    Build,
    /// Check the service over HTTP.
    Verify,
    /// Create the database, role, release layout and env file.
    Provision,
    /// Apply (or revert) database migrations.
    Migrate,
    /// Start the new version and move traffic to it.
    Deploy,
    /// Move traffic back to the previous release.
    Rollback,
    /// Wait for people to approve.
    Approval,
    /// Wait a while.
    Bake,
    /// Measure the release and judge it.
    Analysis,
}

/// Step time-out when the plan gives none (builds get `BUILD_TIMEOUT`).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// A build's time-out when the plan gives none.
pub(crate) const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Keys of a process to run (`command` and `build` steps, a deploy's `start`).
pub(crate) const PROCESS_KEYS: &[&str] = &["command", "args", "env", "secret_env", "workdir"];

impl StepKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [StepKind; 10] = [
        StepKind::Command,
        StepKind::Build,
        StepKind::Verify,
        StepKind::Provision,
        StepKind::Migrate,
        StepKind::Deploy,
        StepKind::Rollback,
        StepKind::Approval,
        StepKind::Bake,
        StepKind::Analysis,
    ];

    /// The YAML name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Command => "command",
            StepKind::Build => "build",
            StepKind::Verify => "verify",
            StepKind::Provision => "provision",
            StepKind::Migrate => "migrate",
            StepKind::Deploy => "deploy",
            StepKind::Rollback => "rollback",
            StepKind::Approval => "approval",
            StepKind::Bake => "bake",
            StepKind::Analysis => "analysis",
        }
    }

    /// The kind named `text`, if there is one.
    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Every YAML name, for "choose one of" hints.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.as_str()).collect()
    }

    /// Whether steps of this kind wait (for people, for time) rather than run an activity:
    /// they have no attempts to count or retry.
    pub fn is_wait(self) -> bool {
        matches!(self, StepKind::Approval | StepKind::Bake)
    }

    /// The keys this kind accepts besides the common ones (`name`, `kind`, `timeout`, ...).
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            StepKind::Command => &["command", "args", "env", "secret_env", "workdir", "undo"],
            StepKind::Build => &[
                "command",
                "args",
                "env",
                "secret_env",
                "workdir",
                "artifact",
                "undo",
            ],
            StepKind::Verify => &[
                "url",
                "method",
                "expect_status",
                "body_contains",
                "json",
                "request_timeout",
                "consecutive",
                "within",
                "interval",
            ],
            StepKind::Provision => &["root", "database", "env_file"],
            StepKind::Migrate => &[
                "database_url",
                "directory",
                "dry_run",
                "target_version",
                "direction",
            ],
            StepKind::Deploy => &[
                "root",
                "strategy",
                "start",
                "instances",
                "base_port",
                "listen",
                "listen_address",
                "health",
                "rollback_window",
                "canary",
                "analysis",
                "waves",
                "max_unavailable",
                "between_waves",
            ],
            StepKind::Rollback => &["root"],
            StepKind::Approval => &["required", "on_timeout", "approvers"],
            StepKind::Bake => &["duration"],
            StepKind::Analysis => crate::plan::parse::ANALYSIS_KEYS,
        }
    }

    /// The time-out of one attempt when neither the step nor `defaults` says.
    pub fn default_timeout(self) -> Duration {
        match self {
            StepKind::Build => BUILD_TIMEOUT,
            _ => DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for kind in StepKind::ALL {
            assert_eq!(StepKind::from_name(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).expect("serialises");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(StepKind::from_name("deploi"), None);
    }
}
