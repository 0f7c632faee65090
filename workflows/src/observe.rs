//! What workflows tell the worker's metrics, as it happens.
//!
//! Workflows cannot touch the world, and a metric counted from workflow code would be counted
//! again at every replay. So workflows only *report* [`Event`]s, through [`emit`], and only
//! when the SDK says the code is running for the first time (`is_replaying() == false`); the
//! worker installs a [`Sink`] that turns them into Prometheus series. Reporting issues no
//! command and schedules no activity: a rollout's history, and what it costs the server, are
//! the same with metrics on or off.
//!
//! What is under way (an approval waiting, a step attempt running) is the exception to "first
//! time only": a worker that replays a rollout waiting at an approval (after a restart, or a
//! cache eviction) must count it as waiting, and must not count it twice. Those events
//! therefore carry the workflow ID and are reported on replay too; the sink keeps a set keyed
//! by it.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// One thing a workflow saw. Every label value is a fixed word or a name checked by the name
/// rules (`crate::name`), so series stay bounded: services × environments × the fixed sets.
#[derive(Debug)]
pub enum Event<'a> {
    /// A rollout began its first step (a valid plan, past the freeze check).
    RolloutStarted {
        service: &'a str,
        environment: &'a str,
    },
    /// A rollout reached a final state: `succeeded`, `failed`, `rolled_back`, `cancelled`, ….
    RolloutFinished {
        service: &'a str,
        environment: &'a str,
        outcome: &'static str,
    },
    /// A step finished: its kind (`command`, `deploy`, `approval`, …), how it ended, and how
    /// long it took from its first attempt to its end, retries and holds included.
    StepFinished {
        service: &'a str,
        environment: &'a str,
        kind: &'static str,
        outcome: &'static str,
        duration: Duration,
        attempts: u32,
    },
    /// One attempt of a step ended; `retry` when it was not the step's first attempt.
    StepAttempt {
        service: &'a str,
        kind: &'static str,
        outcome: &'static str,
        retry: bool,
    },
    /// An approval gate began waiting for people (reported on replay too).
    ApprovalWaiting {
        workflow_id: &'a str,
        service: &'a str,
        environment: &'a str,
        since: DateTime<Utc>,
    },
    /// The approval gate of this rollout stopped waiting (reported on replay too).
    ApprovalDone { workflow_id: &'a str },
    /// An attempt of a step that should end within its `timeout` began (reported on replay
    /// too): past `deadline` it is stuck. Steps that hold (deploys' canaries, analyses,
    /// approvals, bakes) are not reported.
    StepRunning {
        workflow_id: &'a str,
        service: &'a str,
        environment: &'a str,
        deadline: DateTime<Utc>,
    },
    /// No attempt of this rollout is running any more (reported on replay too).
    StepIdle { workflow_id: &'a str },
    /// An analysis reached its verdict: `pass`, `fail` or `inconclusive`.
    AnalysisVerdict {
        service: &'a str,
        environment: &'a str,
        verdict: &'static str,
    },
    /// A DR drill ended: `passed`, `missed` (objectives) or `failed`. RTO and RPO (lost
    /// markers) are what was measured, absent when the drill stopped before measuring; the
    /// objectives are the plan's.
    DrillFinished {
        service: &'a str,
        environment: &'a str,
        drill: &'a str,
        outcome: &'static str,
        rto: Option<Duration>,
        rpo_markers: Option<u64>,
        rto_objective: Duration,
        rpo_objective_markers: u64,
    },
    /// A rollout or drill waited this long for its service's lock (`kind`: `rollout` or `drill`).
    LockWaited {
        kind: &'a str,
        service: &'a str,
        environment: &'a str,
        waited: Duration,
    },
}

impl Event<'_> {
    /// Whether the event is reported while replaying (it updates a set, not a count).
    fn on_replay(&self) -> bool {
        matches!(
            self,
            Event::ApprovalWaiting { .. }
                | Event::ApprovalDone { .. }
                | Event::StepRunning { .. }
                | Event::StepIdle { .. }
        )
    }
}

/// Where events go: the worker's metrics.
pub trait Sink: Send + Sync {
    /// Records one event. Called from workflow code: must not block.
    fn record(&self, event: &Event<'_>);
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Installs the process's sink. The first call wins (tests run several workers per process).
pub fn set_sink(sink: Box<dyn Sink>) -> bool {
    SINK.set(sink).is_ok()
}

/// Reports `event` unless the workflow is replaying what it already reported.
pub(crate) fn emit(replaying: bool, event: Event<'_>) {
    if replaying && !event.on_replay() {
        return;
    }
    if let Some(sink) = SINK.get() {
        sink.record(&event);
    }
}

/// The span between two workflow-clock readings; zero when either is missing or they are out
/// of order.
pub(crate) fn between<T>(start: Option<T>, end: Option<T>) -> Duration
where
    T: Into<chrono::DateTime<chrono::Utc>>,
{
    match (start, end) {
        (Some(s), Some(e)) => (e.into() - s.into()).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_approval_events_are_reported_on_replay() {
        assert!(Event::ApprovalDone { workflow_id: "w" }.on_replay());
        assert!(
            !Event::RolloutStarted {
                service: "s",
                environment: "e"
            }
            .on_replay()
        );
    }

    #[test]
    fn between_is_zero_when_unknown_or_backwards() {
        let t =
            chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        assert_eq!(between(Some(t), None), Duration::ZERO);
        assert_eq!(
            between(Some(t), Some(t - chrono::Duration::seconds(1))),
            Duration::ZERO
        );
        assert_eq!(
            between(Some(t), Some(t + chrono::Duration::seconds(2))),
            Duration::from_secs(2)
        );
    }
}
