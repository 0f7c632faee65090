//! What `status` answers and what a rollout returns. Read by the CLI, `temporal workflow
//! query`, and anything else that speaks JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contracts::StepOutput;

/// Overall state of a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Steps are being run.
    Running,
    /// Every step succeeded.
    Succeeded,
    /// A step failed for good.
    Failed,
    /// Someone cancelled the rollout.
    Cancelled,
}

impl RolloutState {
    /// True once the rollout can change no more.
    pub fn is_final(self) -> bool {
        !matches!(self, RolloutState::Running)
    }

    /// Lowercase name for humans.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Succeeded => "succeeded",
            RolloutState::Failed => "failed",
            RolloutState::Cancelled => "cancelled",
        }
    }
}

/// State of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not reached yet.
    Pending,
    /// An attempt is in flight.
    Running,
    /// An attempt failed; the next one waits for its backoff.
    Retrying,
    /// Done.
    Succeeded,
    /// Failed for good.
    Failed,
    /// Stopped by a cancellation.
    Cancelled,
}

impl StepState {
    /// Lowercase name for humans.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Retrying => "retrying",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Cancelled => "cancelled",
        }
    }
}

/// Why an attempt failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepError {
    /// One of [`crate::contracts::error_kind`].
    pub kind: String,
    /// What happened, in words.
    pub message: String,
    /// Whether the failure could be retried.
    pub retryable: bool,
}

/// Everything known about one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepStatus {
    /// The step's name.
    pub name: String,
    /// The step's kind.
    pub kind: String,
    /// Where it is.
    pub state: StepState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed (0: unlimited).
    pub max_attempts: u32,
    /// When the first attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the step ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// When the next attempt starts, while retrying.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The most recent failure.
    pub last_error: Option<StepError>,
    /// The step's result, once it succeeded.
    pub output: Option<StepOutput>,
}

impl StepStatus {
    /// Milliseconds from first start to end, when both are known.
    pub fn duration_ms(&self) -> Option<i64> {
        Some((self.finished_at? - self.started_at?).num_milliseconds())
    }
}

/// The answer to the `status` query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutStatus {
    /// `rollout/<service>/<environment>`.
    pub workflow_id: String,
    /// The service.
    pub service: String,
    /// The environment.
    pub environment: String,
    /// The version.
    pub version: String,
    /// Overall state.
    pub state: RolloutState,
    /// The step running now, if any.
    pub current_step: Option<String>,
    /// When the rollout started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed or was cancelled.
    pub reason: Option<String>,
    /// Every step, in plan order.
    pub steps: Vec<StepStatus>,
}

/// What a rollout returns when it ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutSummary {
    /// How it ended.
    pub outcome: RolloutState,
    /// The service.
    pub service: String,
    /// The environment.
    pub environment: String,
    /// The version.
    pub version: String,
    /// Per-step outcome and duration.
    pub steps: Vec<StepSummary>,
}

/// One step in a [`RolloutSummary`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    /// The step's name.
    pub name: String,
    /// How it ended.
    pub state: StepState,
    /// Attempts it took.
    pub attempts: u32,
    /// Milliseconds from first start to end.
    pub duration_ms: Option<i64>,
}
