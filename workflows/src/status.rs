//! What `status` answers and what a rollout returns. Read by the CLI, `temporal workflow
//! query`, and anything else that speaks JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::analysis::{Measurement, Verdict};
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
    /// A step failed (or someone aborted) and the completed steps were undone.
    RolledBack,
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
            RolloutState::RolledBack => "rolled_back",
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
    /// Succeeded, then undone by a rollback.
    RolledBack,
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
            StepState::RolledBack => "rolled_back",
        }
    }
}

/// Why an attempt failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepError {
    /// What kind of failure (the failure's type name on the wire).
    pub kind: crate::contracts::error_kind::ErrorKind,
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
    pub kind: crate::plan::StepKind,
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
    /// Approval steps: who approved so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    /// Approval steps: how many distinct approvers are needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_approvals: Option<u32>,
    /// Bakes (and canary holds): when the wait ends, while its clock runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Bakes, canary holds and analysis intervals: the whole length of the running wait, so
    /// that a progress bar can be drawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_ms: Option<i64>,
    /// Bakes: the time left when the clock was stopped by a pause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_ms: Option<i64>,
    /// Analysis steps and canary analyses: the measurements and verdicts so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStatus>,
    /// The host whose agent runs this step's activities, when the plan names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A deploy on a fleet: its waves and where each host is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetStatus>,
    /// A canary deploy: its script and the entry under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
    /// Every failed attempt's error, oldest first (the most recent [`MAX_ATTEMPT_ERRORS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<AttemptError>,
}

/// How many failed attempts a step keeps in its status: enough for any sane retry policy,
/// and a bound on the query's size for an unlimited one.
pub const MAX_ATTEMPT_ERRORS: usize = 20;

/// One failed attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptError {
    /// Which attempt (1-based, counting across `retry`).
    pub attempt: u32,
    /// When it ended.
    pub at: Option<DateTime<Utc>>,
    /// Why.
    pub error: StepError,
}

impl StepStatus {
    /// Keeps attempt `attempt`'s error (its message's first 500 characters), dropping the
    /// oldest past [`MAX_ATTEMPT_ERRORS`].
    pub fn record_error(&mut self, attempt: u32, at: Option<DateTime<Utc>>, error: &StepError) {
        if self.errors.len() >= MAX_ATTEMPT_ERRORS {
            self.errors.remove(0);
        }
        let mut error = error.clone();
        if error.message.chars().count() > 500 {
            error.message = error.message.chars().take(500).collect::<String>() + "…";
        }
        self.errors.push(AttemptError { attempt, at, error });
    }
}

/// Where a canary's script is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CanaryStatus {
    /// Each entry in a few words: `weight 10`, `bake 10m`, `approval (2)`, `pause`.
    pub script: Vec<String>,
    /// The entry under way (the script's length once it is through).
    pub position: usize,
    /// The traffic weight (percent) the new version has.
    pub weight: u8,
    /// Where the step's `approvals` of the gate under way begin (earlier gates' come first).
    #[serde(default)]
    pub approvals_from: usize,
}

/// Where a fleet deploy is: its waves, the one under way, and each host's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetStatus {
    /// The hosts of each wave, in order.
    pub waves: Vec<Vec<String>>,
    /// With regions: the region of each wave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// The wave being deployed or checked (0-based); `waves.len()` once all are deployed.
    pub wave: usize,
    /// Each host's state, by name.
    pub hosts: std::collections::BTreeMap<String, HostState>,
}

/// One host of a fleet deploy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// Its wave has not started.
    #[default]
    Pending,
    /// Its agent is deploying the new version.
    Deploying,
    /// It serves the new version.
    Deployed,
    /// Its deploy failed.
    Failed,
    /// Its unfinished deploy was undone; it serves what it served before.
    Withdrawn,
    /// The rollout rolled it back to the previous release.
    RolledBack,
}

impl HostState {
    /// The word shown in status.
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Pending => "pending",
            HostState::Deploying => "deploying",
            HostState::Deployed => "deployed",
            HostState::Failed => "failed",
            HostState::Withdrawn => "withdrawn",
            HostState::RolledBack => "rolled back",
        }
    }
}

/// Where an analysis is: its counts, its latest measurements, its verdict once decided.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisStatus {
    /// The canary weight being analysed, for a deploy's analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u8>,
    /// Measurements the analysis takes unless something ends it early.
    pub planned: u32,
    /// Measurements taken (since the last restart after an inconclusive hold).
    pub taken: u32,
    /// Successful measurements.
    pub successful: u32,
    /// Failed measurements.
    pub failed: u32,
    /// Inconclusive measurements.
    pub inconclusive: u32,
    /// Tolerated failed measurements.
    pub failure_limit: u32,
    /// Tolerated inconclusive measurements.
    pub inconclusive_limit: u32,
    /// The verdict, once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The latest measurements, oldest first (at most [`AnalysisStatus::KEPT`]).
    pub measurements: Vec<Measurement>,
}

impl AnalysisStatus {
    /// Measurements kept in status; older ones are counted but dropped, to keep status small.
    pub const KEPT: usize = 20;
}

/// One approval of an approval step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Who.
    pub approver: String,
    /// What they said.
    pub comment: Option<String>,
    /// When.
    pub at: Option<DateTime<Utc>>,
}

/// Something a person did to the rollout: approve, pause, resume, promote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HumanAction {
    /// `approve`, `pause`, `resume`, `promote`.
    pub action: String,
    /// Who.
    pub by: String,
    /// When (workflow time).
    pub at: Option<DateTime<Utc>>,
    /// Why, or their comment.
    pub reason: Option<String>,
    /// The step it concerned, if any.
    pub step: Option<String>,
    /// How the person was identified: `token`, `oidc`, or `claimed` (absent in rollouts that
    /// predate verified identities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
    /// Why the action was refused; absent when it was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// A pause in effect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    /// Who paused.
    pub by: String,
    /// Why.
    pub reason: String,
    /// Since when.
    pub since: Option<DateTime<Utc>>,
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
    /// Set while someone has paused the rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Pause>,
    /// Every human action, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<HumanAction>,
    /// Each notifier's delivery of each message, in order (`notify:` in the plan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::notify::NoticeStatus>,
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
