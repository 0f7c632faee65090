//! What the queue's activities take and return.

use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

use crate::plan::Plan;

/// Input of `queue.abort_running`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AbortInput {
    /// The running rollout's workflow ID.
    pub workflow_id: String,
    /// Who asked for the new release.
    pub by: String,
    /// Why: "superseded by VERSION".
    pub reason: String,
}

/// Input of `queue.await_end`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AwaitInput {
    /// The rollout waited for.
    pub workflow_id: String,
}

/// Input of `queue.start`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartInput {
    /// The release to start.
    pub plan: Plan,
    /// Where rollouts run.
    pub task_queue: String,
    /// Temporal's request ID for the start: the same for every attempt of this queue entry,
    /// so an attempt retried after the start went through finds its own run.
    pub request_id: String,
}

/// What `queue.start` found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartOutcome {
    /// Started (or found started by an earlier attempt of this entry): the run.
    Started {
        /// The rollout's run ID.
        run_id: String,
    },
    /// Another rollout started in the meantime: wait for it too.
    Busy {
        /// Its run ID.
        run_id: String,
    },
}

/// The queue's activities.
pub struct QueueActivities;

#[activity_definitions]
impl QueueActivities {
    /// Signals the running rollout to abort (it rolls back). Ended already is success.
    #[activity(name = "queue.abort_running")]
    pub fn abort_running(input: AbortInput) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Returns when the rollout's latest run has ended, heartbeating meanwhile.
    #[activity(name = "queue.await_end")]
    pub fn await_end(input: AwaitInput) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Starts the queued release, unless another rollout got there first.
    #[activity(name = "queue.start")]
    pub fn start(input: StartInput) -> Result<StartOutcome, ActivityError> {
        unimplemented!()
    }
}

pub use queue_activities::{AbortRunning, AwaitEnd, Start};
