//! The text of an activity's failure, as workflows put it in statuses and reasons.

use temporalio_common::error::{ActivityExecutionError, IncomingError};

/// The activity's own message (not the wrapping "Activity task failed").
pub(crate) fn message(err: &ActivityExecutionError) -> String {
    match err {
        ActivityExecutionError::Failed(f) => match f.cause() {
            Some(IncomingError::Application(app)) => app
                .failure()
                .map(|f| f.message.clone())
                .unwrap_or_else(|| app.source_error().to_string()),
            Some(other) => other.failure().message.clone(),
            None => f.failure().message.clone(),
        },
        other => other.to_string(),
    }
}

/// Whether another attempt may help: an application failure the activity marked
/// non-retryable, or a cancellation, may not; timeouts and anything else may.
pub(crate) fn retryable(err: &ActivityExecutionError) -> bool {
    match err {
        ActivityExecutionError::Failed(f) => match f.cause() {
            Some(IncomingError::Application(app)) => !app.is_non_retryable(),
            _ => true,
        },
        ActivityExecutionError::Cancelled(_) => false,
        _ => true,
    }
}
