//! DR drill plans: a PostgreSQL primary and its standby, how the application reaches the
//! primary, what proves the service works, and the objectives the drill is measured against.
//!
//! Parsed and validated like rollout plans ([`crate::plan::parse_drill`]); `DrillWorkflow`
//! runs them (its phases: preflight, mark, fault, promote, switch, verify, measure, failback,
//! report).

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod contracts;
mod workflow;

pub use workflow::{DRILL_FAILED, DrillState, DrillStatus, DrillWorkflow, Phase, PhaseState};

use crate::duration_serde;
use crate::plan::SecretRef;

pub use crate::plan::parse_drill;

/// A validated drill plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrillPlan {
    /// The drill's name, e.g. `hello-db`; part of its workflow ID.
    pub drill: String,
    /// The service whose database is exercised; a drill and a rollout of it never overlap.
    pub service: String,
    /// Where, e.g. `staging`.
    pub environment: String,
    /// Unplanned (`failover`: the primary is stopped at once) or planned (`switchover`).
    pub mode: DrillMode,
    /// The database pair.
    pub database: DatabasePair,
    /// How the application is pointed at the primary.
    pub traffic: Traffic,
    /// HTTP checks that must pass through the normal path after the switch.
    pub checks: Vec<AppCheck>,
    /// A write through the application, then a read of it: proves the new primary takes writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_check: Option<WriteCheck>,
    /// What the drill must achieve.
    pub objectives: Objectives,
    /// The largest replay lag (bytes) preflight accepts before touching anything.
    pub max_lag_bytes: u64,
    /// How long the promoted standby has to accept a write (each attempt of `promote`).
    #[serde(with = "duration_serde", default = "default_promote_within")]
    pub promote_within: Duration,
    /// After measuring: rebuild the old primary as a standby, and optionally switch back.
    pub failback: Failback,
    /// Application traffic moved to another region along with the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<RegionMove>,
    /// Who is told when the drill starts and how it ended (see [`crate::plan::notify`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<crate::plan::notify::Notifier>,
}

/// A drill that moves the application's traffic, not only its database endpoint, to a
/// secondary region: the secondary stack is checked before anything is touched, the global
/// router is switched after the database, and the checks run through it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionMove {
    /// The router in front of the regions; its backends are the regions' entry points, by
    /// region name. It runs on `router.host`'s agent.
    pub router: crate::plan::Router,
    /// The region serving before the drill.
    pub from: String,
    /// The region it moves to.
    pub to: String,
    /// Checks of the secondary region's own stack, made directly (not through the router)
    /// before the fault.
    pub secondary_checks: Vec<AppCheck>,
}

/// Failover or switchover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillMode {
    /// Inject a fault: stop the primary immediately.
    Failover,
    /// Planned: stop writes, wait for the standby to catch up, then promote (no data loss).
    Switchover,
}

impl DrillMode {
    /// Lowercase name, as in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            DrillMode::Failover => "failover",
            DrillMode::Switchover => "switchover",
        }
    }
}

/// The primary and the standby.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatabasePair {
    /// The current primary.
    pub primary: DatabaseNode,
    /// Its streaming standby.
    pub standby: DatabaseNode,
    /// The OS user that owns the data directories (`pg_ctl` runs as it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_user: Option<String>,
    /// Where `pg_ctl`, `pg_rewind` and `pg_basebackup` are; found under
    /// `/usr/lib/postgresql/*/bin` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
}

/// One PostgreSQL server of the pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatabaseNode {
    /// A superuser connection string, resolved on the worker.
    pub url: SecretRef,
    /// Its data directory on the worker's machine (for stopping, rewinding, restarting).
    pub data_dir: String,
    /// The name it streams under when it is a standby (`application_name` in
    /// `primary_conninfo`): what the other server's `synchronous_standby_names` lists. Failback
    /// rebuilds a server as a standby under this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    /// The machine it runs on, by its agent's name (`cutover-worker --host NAME`): stopping,
    /// promoting, fencing and rebuilding it go to that agent, since they act on its data
    /// directory. Without it they run on whichever worker takes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// How traffic reaches the primary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Traffic {
    /// Host driver: the application reads its database URL from this file and reconnects
    /// when it changes; switching writes the new primary's URL (mode 0600).
    EndpointFile {
        /// The file.
        path: String,
        /// The machine the file is on, by its agent's name; the switch runs there.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    /// Kubernetes: the application's pods read their database URL from a Secret's key;
    /// switching writes the new primary's URL there (resolved on the worker, never in
    /// history) and restarts the Deployment so its pods read it, waiting until it rolled out.
    Kubernetes(crate::drill::contracts::KubeEndpoint),
}

impl Traffic {
    /// The input of `drill.switch` pointing the application at `primary`.
    pub fn switch_to(
        &self,
        primary: &crate::plan::SecretRef,
    ) -> crate::drill::contracts::SwitchInput {
        let (endpoint_file, kubernetes) = match self {
            Traffic::EndpointFile { path, .. } => (path.clone(), None),
            Traffic::Kubernetes(k) => (String::new(), Some(k.clone())),
        };
        crate::drill::contracts::SwitchInput {
            endpoint_file,
            primary: primary.clone(),
            kubernetes,
        }
    }

    /// The agent that switches it: the endpoint file's host, if named.
    pub fn host(&self) -> Option<&str> {
        match self {
            Traffic::EndpointFile { host, .. } => host.as_deref(),
            Traffic::Kubernetes(_) => None,
        }
    }
}

/// An HTTP check of the application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppCheck {
    /// URL (no credentials).
    pub url: String,
    /// Expected status.
    pub expect_status: u16,
}

/// A write through the application and a read that must see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WriteCheck {
    /// `POST {"name": <marker>}` here, then `GET` it and look for the marker.
    pub url: String,
}

/// Recovery objectives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Objectives {
    /// Longest acceptable time from the fault to the first verified write.
    #[serde(with = "duration_serde")]
    pub rto: Duration,
    /// Most marker transactions that may be lost.
    pub rpo_markers: u64,
}

/// What happens after the measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failback {
    /// Rebuild the old primary as a standby of the new one (pg_rewind, else a base backup).
    pub rebuild: bool,
    /// Then switch back (a switchover that waits for the standby to catch up).
    pub switch_back: bool,
}

/// How long a promoted standby has to accept writes unless the plan says otherwise.
pub const DEFAULT_PROMOTE_WITHIN: Duration = Duration::from_secs(60);

fn default_promote_within() -> Duration {
    DEFAULT_PROMOTE_WITHIN
}

impl DrillPlan {
    /// The drill's workflow ID.
    pub fn workflow_id(&self) -> String {
        format!("drill/{}/{}/{}", self.service, self.environment, self.drill)
    }
}
