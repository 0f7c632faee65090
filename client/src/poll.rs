//! Waiting for a condition the world does not announce (a process to exit, nginx to finish
//! reloading, a standby to catch up, a workflow run to end): check, sleep `every`, until it
//! holds or `limit` passes. One helper, so every such wait has a deadline and says so.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The condition did not hold within the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not within {0:?}")]
pub struct TimedOut(pub Duration);

/// Calls `check` every `every` until it returns `Some`, or `limit` has passed (the check runs
/// at least once, and once more at the deadline).
///
/// # Errors
/// [`TimedOut`] when the limit passed first.
pub async fn until<T, F, Fut>(limit: Duration, every: Duration, mut check: F) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(TimedOut(limit));
        }
        tokio::time::sleep(every.min(deadline - now)).await;
    }
}

/// Like [`until`] for a check that can fail: its first error ends the wait.
///
/// # Errors
/// The check's error, or `timed_out()` when the limit passed first.
pub async fn try_until<T, E, F, Fut>(
    limit: Duration,
    every: Duration,
    mut check: F,
    timed_out: impl FnOnce() -> E,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    // An error is an answer too: it ends the wait like a value does.
    let found = until(limit, every, || {
        let attempt = check();
        async move {
            match attempt.await {
                Ok(found) => found.map(Ok),
                Err(e) => Some(Err(e)),
            }
        }
    })
    .await;
    match found {
        Ok(result) => result,
        Err(TimedOut(_)) => Err(timed_out()),
    }
}

/// Calls `check` every `every` until it succeeds; when `limit` passes first, returns the last
/// error, so the caller can say what was still wrong ("within 60 s: connection refused").
///
/// # Errors
/// The last attempt's error.
pub async fn until_ok<T, E, F, Fut>(limit: Duration, every: Duration, mut check: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let failed = match check().await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(failed);
        }
        tokio::time::sleep(every.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn returns_the_first_value_and_gives_up_at_the_limit() {
        let mut n = 0;
        let got = until(Duration::from_secs(1), Duration::from_millis(10), || {
            n += 1;
            let v = n;
            async move { (v == 3).then_some(v) }
        })
        .await;
        assert_eq!(got, Ok(3));
        let never = until(
            Duration::from_secs(1),
            Duration::from_millis(100),
            || async { None::<()> },
        )
        .await;
        assert_eq!(never, Err(TimedOut(Duration::from_secs(1))));
    }

    #[tokio::test(start_paused = true)]
    async fn until_ok_returns_the_last_error_at_the_limit() {
        let mut n = 0;
        let got: Result<(), String> =
            until_ok(Duration::from_secs(1), Duration::from_millis(300), || {
                n += 1;
                let attempt = n;
                async move { Err(format!("attempt {attempt}")) }
            })
            .await;
        assert_eq!(got, Err("attempt 5".to_owned()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_check_ends_the_wait_with_its_error() {
        let got: Result<(), &str> = try_until(
            Duration::from_secs(1),
            Duration::from_millis(10),
            || async { Err("broken") },
            || "timed out",
        )
        .await;
        assert_eq!(got, Err("broken"));
        let got: Result<(), &str> = try_until(
            Duration::from_secs(1),
            Duration::from_millis(10),
            || async { Ok(None) },
            || "timed out",
        )
        .await;
        assert_eq!(got, Err("timed out"));
    }
}
