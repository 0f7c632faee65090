//! Turning an activity's failure into a step error, and deciding whether to try again.

use temporalio_common::error::{ActivityExecutionError, IncomingError, TimeoutType};

use crate::contracts::error_kind::ErrorKind;
use crate::plan::RetryPolicy;
use crate::status::StepError;

/// What one failed attempt means for the step.
pub(super) enum AttemptFailure {
    /// The workflow is being cancelled.
    Cancelled,
    /// The attempt failed; `retryable` says whether the policy may try again.
    Error(StepError),
}

/// Classifies an activity failure. The activity's own non-retryable flag and the plan's
/// `non_retryable` list both stop retries; timeouts (including a missed heartbeat) are retried,
/// except a schedule-to-start timeout, which only host activities have: no agent of the host
/// took the task, and `host_unavailable` says so.
pub(super) fn classify(
    err: &ActivityExecutionError,
    policy: &RetryPolicy,
    host_unavailable: impl FnOnce() -> String,
) -> AttemptFailure {
    let (kind, message, retryable) = match err {
        ActivityExecutionError::Cancelled(_) => return AttemptFailure::Cancelled,
        ActivityExecutionError::Serialization(e) => (
            ErrorKind::InvalidInput,
            format!("payload conversion failed: {e}"),
            false,
        ),
        ActivityExecutionError::Failed(f) => match f.cause() {
            Some(IncomingError::Application(app)) => (
                ErrorKind::from(app.type_name().unwrap_or("Error").to_owned()),
                app.failure()
                    .map(|f| f.message.clone())
                    .unwrap_or_else(|| app.source_error().to_string()),
                !app.is_non_retryable(),
            ),
            Some(IncomingError::Timeout(t)) if t.timeout_type() == TimeoutType::ScheduleToStart => {
                (ErrorKind::HostUnavailable, host_unavailable(), false)
            }
            Some(IncomingError::Timeout(t)) => (
                ErrorKind::Timeout,
                format!("{:?} timeout", t.timeout_type())
                    .to_lowercase()
                    .replace('_', " "),
                true,
            ),
            Some(IncomingError::Cancelled(_)) => return AttemptFailure::Cancelled,
            Some(other) => (error(), other.failure().message.clone(), true),
            None => (error(), f.failure().message.clone(), true),
        },
        _ => (error(), err.to_string(), true),
    };
    let retryable = retryable && !policy.non_retryable.iter().any(|k| k == &kind);
    AttemptFailure::Error(StepError {
        kind,
        message,
        retryable,
    })
}

/// Whether the attempt was lost to a missed heartbeat: its worker died or hung, and at least
/// the step's `heartbeat_timeout` has passed since it was last heard from.
pub(super) fn missed_heartbeat(err: &ActivityExecutionError) -> bool {
    matches!(err, ActivityExecutionError::Failed(f)
        if matches!(f.cause(), Some(IncomingError::Timeout(t)) if t.timeout_type() == TimeoutType::Heartbeat))
}

/// Whether the activity never started: no worker of its queue took it in time (a host
/// activity's schedule-to-start timeout), so it did nothing.
pub(super) fn never_started(err: &ActivityExecutionError) -> bool {
    matches!(err, ActivityExecutionError::Failed(f)
        if matches!(f.cause(), Some(IncomingError::Timeout(t)) if t.timeout_type() == TimeoutType::ScheduleToStart))
}

/// A failure without a type name of its own.
fn error() -> ErrorKind {
    ErrorKind::Other("Error".to_owned())
}
