//! [`ErrorKind`]: the kinds of failure a step can end an attempt with, typed. On the wire it
//! is the failure's type name, a plain string (`"CommandFailed"`), so histories recorded before
//! the enum replay unchanged, and a type name Cutover does not know (another SDK's activity,
//! a future kind) survives as [`ErrorKind::Other`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error_kind as names;

macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident => $name:expr,)*) => {
        /// A kind of step failure.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum ErrorKind {
            $($(#[$doc])* $variant,)*
            /// A type name Cutover does not know.
            Other(String),
        }

        impl ErrorKind {
            /// Every kind Cutover itself fails with, for plans' `retry.non_retryable`.
            pub const KNOWN: &'static [ErrorKind] = &[$(ErrorKind::$variant,)*];

            /// The type name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorKind::$variant => $name,)*
                    ErrorKind::Other(name) => name,
                }
            }

            /// The known kind named `text`, if any.
            pub fn known(text: &str) -> Option<ErrorKind> {
                Self::KNOWN.iter().find(|k| k.as_str() == text).cloned()
            }
        }
    };
}

kinds! {
    /// An analysis failed its `failure_limit`.
    AnalysisFailed => names::ANALYSIS_FAILED,
    /// A command exited non-zero.
    CommandFailed => names::COMMAND_FAILED,
    /// The program does not exist or cannot be executed.
    CommandNotFound => names::COMMAND_NOT_FOUND,
    /// The working directory does not exist.
    WorkdirMissing => names::WORKDIR_MISSING,
    /// A build's declared artifact is missing.
    ArtifactMissing => names::ARTIFACT_MISSING,
    /// A secret reference could not be resolved.
    SecretUnavailable => names::SECRET_UNAVAILABLE,
    /// An HTTP check did not pass.
    CheckFailed => names::CHECK_FAILED,
    /// The activity input is invalid.
    InvalidInput => names::INVALID_INPUT,
    /// An I/O error on the worker.
    Io => names::IO,
    /// The attempt ran past its timeout, or its worker stopped heartbeating.
    Timeout => names::TIMEOUT,
    /// The database could not be reached.
    DatabaseUnavailable => names::DATABASE_UNAVAILABLE,
    /// An applied migration's file changed.
    MigrationChanged => names::MIGRATION_CHANGED,
    /// A migration's SQL failed.
    MigrationFailed => names::MIGRATION_FAILED,
    /// Another SQL statement failed.
    Database => names::DATABASE,
    /// New instances did not become healthy, or traffic could not be moved.
    DeployFailed => names::DEPLOY_FAILED,
    /// A port the deploy needs is taken.
    PortTaken => names::PORT_TAKEN,
    /// An approval step's timeout passed without enough approvals.
    ApprovalTimedOut => names::APPROVAL_TIMED_OUT,
    /// An approver refused the release at an approval step.
    ApprovalRefused => names::APPROVAL_REFUSED,
    /// No agent of the step's host took the activity in time.
    HostUnavailable => names::HOST_UNAVAILABLE,
    /// The Kubernetes API refused a request (forbidden by RBAC, an invalid object).
    KubeRefused => names::KUBE_REFUSED,
    /// The Kubernetes API could not be reached or failed.
    KubeUnavailable => names::KUBE_UNAVAILABLE,
    /// Another rollout or drill holds the service.
    ServiceLocked => crate::lock::LOCKED,
}

impl From<String> for ErrorKind {
    fn from(text: String) -> Self {
        ErrorKind::known(&text).unwrap_or(ErrorKind::Other(text))
    }
}

impl From<ErrorKind> for String {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Other(name) => name,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the type name, e.g. `last_error.kind == "CommandFailed"`.
impl PartialEq<&str> for ErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_wire_names() {
        for kind in ErrorKind::KNOWN {
            let json = serde_json::to_string(kind).expect("serialises");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(
                &serde_json::from_str::<ErrorKind>(&json).expect("back"),
                kind
            );
        }
        let other: ErrorKind = serde_json::from_str("\"SomethingElse\"").expect("any name");
        assert_eq!(other, ErrorKind::Other("SomethingElse".to_owned()));
        assert_eq!(
            serde_json::to_string(&other).expect("out"),
            "\"SomethingElse\""
        );
    }
}
