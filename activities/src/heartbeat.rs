//! Heartbeating around long operations, so a dead worker is noticed within the heartbeat
//! timeout and a cancellation reaches the activity.

use std::future::Future;
use std::time::Duration;

use temporalio_sdk::activities::ActivityContext;

use crate::error::StepFailure;

/// Heartbeat often enough that a missed beat means a dead worker, not a busy one.
pub(crate) fn interval(ctx: &ActivityContext) -> Duration {
    ctx.info()
        .heartbeat_timeout
        .map_or(Duration::from_secs(5), |t| t / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(10))
}

/// Runs `work`, heartbeating meanwhile; a cancellation drops it and returns `Cancelled`.
pub(crate) async fn beating<T>(
    ctx: &ActivityContext,
    work: impl Future<Output = Result<T, StepFailure>>,
) -> Result<T, StepFailure> {
    tokio::pin!(work);
    let mut beat = tokio::time::interval(interval(ctx));
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = beat.tick() => { let _ = ctx.record_heartbeat(()).await; }
            () = ctx.cancelled() => return Err(StepFailure::Cancelled),
        }
    }
}
