//! Exit codes, decided in one place: 0 success, 1 the operation failed, 2 bad usage or input.

use std::process::ExitCode;

/// A command's failure and the exit code it maps to.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The operation ran and failed (a rollout failed, a server refused). Exit 1.
    Failed(anyhow::Error),
    /// The input was wrong (an invalid plan, a bad ID). Exit 2.
    Input(anyhow::Error),
    /// The failure was already printed in full (e.g. plan diagnostics). Exit 2.
    InputReported,
    /// A rollout ended unsuccessfully and its outcome was printed. Exit 1.
    FailedReported,
}

pub(crate) type Outcome = Result<(), Failure>;

impl Failure {
    pub(crate) fn report(self) -> ExitCode {
        match self {
            Failure::Failed(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
            Failure::Input(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
            Failure::InputReported => ExitCode::from(2),
            Failure::FailedReported => ExitCode::from(1),
        }
    }
}

impl Failure {
    /// As one error for library callers (e.g. tests building a receiver). Diagnostics that
    /// were already printed are summarised.
    pub(crate) fn into_anyhow(self) -> anyhow::Error {
        match self {
            Failure::Failed(e) | Failure::Input(e) => e,
            Failure::InputReported => anyhow::anyhow!("invalid input (problems printed above)"),
            Failure::FailedReported => anyhow::anyhow!("the operation failed (printed above)"),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Failed(e)
    }
}

impl From<cutover_client::ConnectError> for Failure {
    fn from(e: cutover_client::ConnectError) -> Self {
        Failure::Failed(e.into())
    }
}
