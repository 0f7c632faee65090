//! What drill activities take and return. Times are Unix milliseconds of the worker's clock:
//! RTO is measured between real events (the fault, the first verified write), not between
//! workflow tasks.

use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

use super::{AppCheck, DatabaseNode, DatabasePair, DrillPlan, WriteCheck};
use crate::plan::SecretRef;

/// Input of `drill.preflight`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreflightInput {
    /// The whole plan.
    pub plan: DrillPlan,
}

/// What preflight found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreflightOutput {
    /// The standby's replay lag, in bytes of WAL.
    pub lag_bytes: u64,
    /// `sync` or `async`, as the primary reports the standby.
    pub sync_state: String,
}

/// Input of `drill.mark`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarkInput {
    /// The primary to write markers on.
    pub primary: SecretRef,
    /// Tags this drill run's markers.
    pub run: String,
    /// Stop after this long, if the primary has not gone away first (ms).
    pub for_ms: u64,
}

/// The markers whose commit the primary acknowledged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MarkOutput {
    /// Acknowledged markers: number and the primary's WAL position right after its commit.
    pub markers: Vec<(u64, String)>,
    /// Why writing stopped: `duration` or the primary's error.
    pub ended_by: String,
}

/// Input of `drill.fault` and `drill.restart`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeInput {
    /// The pair (for the OS user and binaries).
    pub database: DatabasePair,
    /// The server acted on.
    pub node: DatabaseNode,
    /// Fault: wait for the standby to replay everything, then stop cleanly (a switchover).
    #[serde(default)]
    pub graceful: bool,
    /// Promote: how long the promoted server has to accept a write (ms; 0 = 60 s).
    #[serde(default)]
    pub within_ms: u64,
}

/// Input of `drill.rebuild`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RebuildInput {
    /// The pair (for the OS user and binaries).
    pub database: DatabasePair,
    /// The server rebuilt as a standby (its data directory is rewound or replaced).
    pub node: DatabaseNode,
    /// The primary it will stream from.
    pub source: DatabaseNode,
}

/// When something happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct At {
    /// Unix ms, the worker's clock.
    pub at_ms: i64,
    /// What was done (or found already done).
    pub note: String,
}

/// Input of `drill.switch`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwitchInput {
    /// The file the app reads its database URL from (empty on Kubernetes).
    #[serde(default)]
    pub endpoint_file: String,
    /// The primary to point it at.
    pub primary: SecretRef,
    /// On Kubernetes: the Secret key the app reads instead, and the Deployment to restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubeEndpoint>,
}

/// Where an application on Kubernetes reads its database URL:
/// `traffic: { kubernetes: { secret: shop-db, key: DATABASE_URL, restart: shop } }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeEndpoint {
    /// `kubernetes://CONTEXT/NAMESPACE`, from the drill's `namespace` and `context`.
    pub root: String,
    /// The Secret holding the URL.
    pub secret: String,
    /// Its key.
    pub key: String,
    /// The Deployment whose pods read it, restarted after a switch (none: the app rereads
    /// the mounted Secret by itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// How long the restart may take to roll out.
    #[serde(with = "crate::duration_serde")]
    pub rollout_within: std::time::Duration,
}

/// Input of `drill.verify`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppVerifyInput {
    /// HTTP checks.
    pub checks: Vec<AppCheck>,
    /// The write-then-read check.
    pub write_check: Option<WriteCheck>,
    /// Tags the written marker.
    pub run: String,
    /// How long to keep trying (ms).
    pub within_ms: u64,
}

/// Input of `drill.survey`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurveyInput {
    /// The new primary.
    pub primary: SecretRef,
    /// This run's markers.
    pub run: String,
    /// The acknowledged markers, to compare.
    pub acknowledged: Vec<(u64, String)>,
}

/// RPO, measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurveyOutput {
    /// Acknowledged markers missing on the new primary.
    pub lost: u64,
    /// Their numbers (the first 100).
    pub lost_markers: Vec<u64>,
    /// WAL bytes between the last marker present and the last acknowledged.
    pub lost_bytes: u64,
}

/// Input of `drill.record`: the drill as it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordInput {
    /// The plan.
    pub plan: DrillPlan,
    /// The final status.
    pub status: super::DrillStatus,
}

/// The activities of a drill.
pub struct DrillActivities;

#[activity_definitions]
impl DrillActivities {
    /// Checks the standby streams within the lag limit and the app is healthy. Changes nothing.
    #[activity(name = "drill.preflight")]
    pub fn preflight(input: PreflightInput) -> Result<PreflightOutput, ActivityError> {
        unimplemented!()
    }

    /// Writes marker transactions on the primary until it goes away or the time is up.
    #[activity(name = "drill.mark")]
    pub fn mark(input: MarkInput) -> Result<MarkOutput, ActivityError> {
        unimplemented!()
    }

    /// Stops a server at once (`pg_ctl stop -m immediate`). A stopped server stays stopped.
    #[activity(name = "drill.fault")]
    pub fn fault(input: NodeInput) -> Result<At, ActivityError> {
        unimplemented!()
    }

    /// Starts a stopped server again (compensation). A running server is left running.
    #[activity(name = "drill.restart")]
    pub fn restart(input: NodeInput) -> Result<At, ActivityError> {
        unimplemented!()
    }

    /// Stops a server only if it is a primary (not in recovery): before the old primary is
    /// restarted, a standby that was promoted is fenced so that one primary remains.
    #[activity(name = "drill.fence")]
    pub fn fence(input: NodeInput) -> Result<At, ActivityError> {
        unimplemented!()
    }

    /// Rebuilds a server as a streaming standby of `source`: `pg_rewind`, or a fresh base
    /// backup when rewinding cannot; its own configuration files are kept. A server already
    /// streaming from `source` is left alone.
    #[activity(name = "drill.rebuild")]
    pub fn rebuild(input: RebuildInput) -> Result<At, ActivityError> {
        unimplemented!()
    }

    /// Promotes the standby and waits until it accepts writes; "already promoted" is success.
    #[activity(name = "drill.promote")]
    pub fn promote(input: NodeInput) -> Result<At, ActivityError> {
        unimplemented!()
    }

    /// Points the app at `primary` by rewriting its endpoint file (atomically, mode 0600).
    #[activity(name = "drill.switch")]
    pub fn switch(input: SwitchInput) -> Result<At, ActivityError> {
        unimplemented!()
    }

    /// Runs the app checks until they pass; returns when the first verified write happened.
    #[activity(name = "drill.verify")]
    pub fn verify(input: AppVerifyInput) -> Result<At, ActivityError> {
        unimplemented!()
    }

    /// Writes the drill's evidence to the ledger (an upsert: safe to repeat).
    #[activity(name = "drill.record")]
    pub fn record(input: RecordInput) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Counts which acknowledged markers the new primary has.
    #[activity(name = "drill.survey")]
    pub fn survey(input: SurveyInput) -> Result<SurveyOutput, ActivityError> {
        unimplemented!()
    }
}

pub use drill_activities::{
    Fault, Fence, Mark, Preflight, Promote, Rebuild, Record, Restart, Survey, Switch, Verify,
};
