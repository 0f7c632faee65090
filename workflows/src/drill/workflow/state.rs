//! What a drill answers to `status` and leaves as evidence: its state, its phases and their
//! states, RTO and RPO.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::drill::DrillMode;

/// Where a drill is, or how it ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillState {
    /// Phases are running.
    #[default]
    Running,
    /// Every phase succeeded and both objectives were met.
    Passed,
    /// Every phase succeeded but an objective (RTO or RPO) was missed.
    Missed,
    /// A phase failed (compensation says what it restored).
    Failed,
}

impl DrillState {
    /// The name in JSON, the ledger and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            DrillState::Running => "running",
            DrillState::Passed => "passed",
            DrillState::Missed => "missed",
            DrillState::Failed => "failed",
        }
    }
}

/// Compares with the JSON name, so scripts' and tests' `state == "passed"` reads as before.
impl PartialEq<&str> for DrillState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for DrillState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one phase is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseState {
    /// Started, not ended.
    Running,
    /// Done.
    Succeeded,
    /// Failed (the note says why).
    Failed,
}

impl PhaseState {
    /// The name in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseState::Running => "running",
            PhaseState::Succeeded => "succeeded",
            PhaseState::Failed => "failed",
        }
    }
}

/// Compares with the JSON name, so scripts' and tests' `state == "passed"` reads as before.
impl PartialEq<&str> for PhaseState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for PhaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One phase in the status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// `preflight`, `mark`, `fault`, `promote`, `switch`, `verify`, `measure`, `restore`.
    pub name: String,
    /// Running, succeeded or failed.
    pub state: PhaseState,
    /// Workflow time.
    pub started_at: Option<DateTime<Utc>>,
    /// Workflow time.
    pub finished_at: Option<DateTime<Utc>>,
    /// What it found or did.
    pub note: Option<String>,
}

/// What `status` answers, and the drill's result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DrillStatus {
    /// `drill/<service>/<environment>/<drill>`.
    pub workflow_id: String,
    /// Running, passed, missed (objectives not met) or failed.
    pub state: DrillState,
    /// Failover or switchover.
    pub mode: Option<DrillMode>,
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// Fault to first verified write (ms).
    pub rto_ms: Option<i64>,
    /// With a region move: the database's own RTO (fault to promoted), beside `rto_ms`,
    /// which is then the application's (fault to its checks passing through the router).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_rto_ms: Option<i64>,
    /// Acknowledged markers lost.
    pub rpo_markers: Option<u64>,
    /// WAL bytes between the last marker kept and the last acknowledged.
    pub rpo_bytes: Option<u64>,
    /// The lost markers' numbers (the first 100), so the RPO can be checked by anyone.
    #[serde(default)]
    pub lost_markers: Vec<u64>,
    /// Markers acknowledged by the old primary.
    pub markers: u64,
    /// Why it failed, or which objective it missed.
    pub reason: Option<String>,
    /// What compensation did, if anything.
    pub restoration: Option<String>,
    /// Workflow time.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// Workflow time.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Each notifier's delivery of each message, in order (`notify:` in the drill plan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::notify::NoticeStatus>,
}
