//! Why an activity failed, classified where it is decided (ARCHITECTURE.md, rule 4).

use std::io;

use cutover_workflows::contracts::error_kind;
use temporalio_common::ActivityError;
use temporalio_common::error::ApplicationFailure;

/// A failed activity attempt. Each variant maps to one error kind from
/// [`cutover_workflows::contracts::error_kind`] and says whether retrying can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepFailure {
    /// The command ran and exited unsuccessfully.
    #[error("`{command}` {status}{tail}")]
    CommandFailed {
        /// The program.
        command: String,
        /// "exited with code 2" or "was killed by signal SIGKILL".
        status: String,
        /// The last lines of stderr, already formatted (may be empty).
        tail: String,
    },
    /// The program does not exist or is not executable.
    #[error("cannot run `{command}`: {source}")]
    CommandNotFound {
        /// The program.
        command: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The working directory does not exist.
    #[error("working directory `{path}` does not exist")]
    WorkdirMissing {
        /// The directory as resolved on the worker.
        path: String,
    },
    /// The build exited 0 but left no artifact where the plan said.
    #[error("the build succeeded but its artifact `{path}` is missing")]
    ArtifactMissing {
        /// Where the artifact was expected.
        path: String,
    },
    /// A secret reference could not be resolved.
    #[error("secret for `{var}` is unavailable: {reason}")]
    SecretUnavailable {
        /// The variable it was meant for.
        var: String,
        /// Why (never the value).
        reason: String,
    },
    /// An HTTP check did not pass.
    #[error("{0}")]
    CheckFailed(String),
    /// The service's lock is held by another running workflow.
    #[error("{0}")]
    Locked(String),
    /// The database could not be reached or refused the connection.
    #[error("cannot connect to the database: {0}")]
    DatabaseUnavailable(String),
    /// An applied migration's file has changed since it was applied.
    #[error(
        "migration {version} (`{file}`) was changed after it was applied: the database recorded checksum {applied}, the file now has {current}; restore the file, or add a new migration instead of editing an applied one"
    )]
    MigrationChanged {
        /// The migration's version.
        version: i64,
        /// Its file.
        file: String,
        /// Hex checksum recorded in `_sqlx_migrations`.
        applied: String,
        /// Hex checksum of the file now.
        current: String,
    },
    /// A migration's SQL failed; its transaction was rolled back.
    #[error(
        "migration `{file}` failed at line {line}: {message}; the database is as it was before this migration"
    )]
    MigrationFailed {
        /// The migration file.
        file: String,
        /// 1-based line of the failing SQL in the file (1 when the server did not say).
        line: usize,
        /// The database's error.
        message: String,
    },
    /// A SQL statement of the step failed.
    #[error("{context}: {message}")]
    Database {
        /// What was being done.
        context: String,
        /// The database's error.
        message: String,
    },
    /// A deployed instance did not become ready.
    #[error("{0}")]
    DeployFailed(String),
    /// A port an instance needs is in use by something else.
    #[error("port {port} is already in use by another process; free it or change base_port")]
    PortTaken {
        /// The port.
        port: u16,
    },
    /// The input cannot work, however often it is retried.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A local I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The activity was cancelled and has cleaned up.
    /// The Kubernetes API refused a request (RBAC, an invalid object, an unknown kind).
    #[error("Kubernetes refused to {action}: {message}")]
    KubeRefused {
        /// What was asked, e.g. "apply Deployment checkout-blue".
        action: String,
        /// The API's message.
        message: String,
    },
    /// The Kubernetes API could not be reached, or failed.
    #[error("Kubernetes API unavailable while trying to {action}: {message}")]
    KubeUnavailable {
        /// What was asked.
        action: String,
        /// Why.
        message: String,
    },
    /// A migration Job ended unsuccessfully.
    #[error(
        "migration Job {job} failed: {detail}; the Job is kept for inspection (kubectl logs job/{job})"
    )]
    JobFailed {
        /// The Job's name.
        job: String,
        /// Its exit code and last log lines.
        detail: String,
    },
    #[error("cancelled")]
    Cancelled,
    /// A failure after which the operation undid what it had done; `after` says what was
    /// undone and what the target is now. Keeps the kind and retryability of `failure`.
    #[error("{failure}; {after}")]
    Undone {
        /// The original failure.
        failure: Box<StepFailure>,
        /// What was undone, and the state now.
        after: String,
    },
}

impl StepFailure {
    /// The error kind recorded as the failure's type name.
    pub fn kind(&self) -> &'static str {
        match self {
            StepFailure::CommandFailed { .. } => error_kind::COMMAND_FAILED,
            StepFailure::CommandNotFound { .. } => error_kind::COMMAND_NOT_FOUND,
            StepFailure::WorkdirMissing { .. } => error_kind::WORKDIR_MISSING,
            StepFailure::ArtifactMissing { .. } => error_kind::ARTIFACT_MISSING,
            StepFailure::SecretUnavailable { .. } => error_kind::SECRET_UNAVAILABLE,
            StepFailure::CheckFailed(_) => error_kind::CHECK_FAILED,
            StepFailure::Locked(_) => cutover_workflows::lock::LOCKED,
            StepFailure::DatabaseUnavailable(_) => error_kind::DATABASE_UNAVAILABLE,
            StepFailure::MigrationChanged { .. } => error_kind::MIGRATION_CHANGED,
            StepFailure::MigrationFailed { .. } => error_kind::MIGRATION_FAILED,
            StepFailure::Database { .. } => error_kind::DATABASE,
            StepFailure::DeployFailed(_) => error_kind::DEPLOY_FAILED,
            StepFailure::PortTaken { .. } => error_kind::PORT_TAKEN,
            StepFailure::InvalidInput(_) => error_kind::INVALID_INPUT,
            StepFailure::Io { .. } => error_kind::IO,
            StepFailure::KubeRefused { .. } => error_kind::KUBE_REFUSED,
            StepFailure::KubeUnavailable { .. } => error_kind::KUBE_UNAVAILABLE,
            StepFailure::JobFailed { .. } => error_kind::MIGRATION_FAILED,
            StepFailure::Cancelled => "Cancelled",
            StepFailure::Undone { failure, .. } => failure.kind(),
        }
    }

    /// Whether another attempt could succeed without a person changing something.
    pub fn retryable(&self) -> bool {
        if let StepFailure::Undone { failure, .. } = self {
            return failure.retryable();
        }
        matches!(
            self,
            StepFailure::CommandFailed { .. }
                | StepFailure::CheckFailed(_)
                | StepFailure::Io { .. }
                | StepFailure::DatabaseUnavailable(_)
                | StepFailure::Database { .. }
                | StepFailure::DeployFailed(_)
                | StepFailure::KubeUnavailable { .. }
        )
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        StepFailure::Io {
            context: context.into(),
            source,
        }
    }
}

impl StepFailure {
    /// Converts into the SDK's error, with the kind as the failure type and the retryable flag
    /// set explicitly. (The SDK's blanket `From` would mark everything retryable.)
    pub fn into_activity_error(self) -> ActivityError {
        let failure = self;
        if matches!(failure, StepFailure::Cancelled) {
            return ActivityError::cancelled();
        }
        let mut message = failure.to_string();
        let mut source = std::error::Error::source(&failure);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        ActivityError::application(
            ApplicationFailure::builder(message)
                .type_name(failure.kind().to_owned())
                .non_retryable(!failure.retryable())
                .build(),
        )
    }
}
