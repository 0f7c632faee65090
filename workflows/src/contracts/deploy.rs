//! Contracts of the deploy target (through its driver): `deploy.prepare`, `deploy.rolling`,
//! `traffic.shift`, `deploy.retire`, `deploy.rollback`, `deploy.withdraw`, and what a `deploy` step did.

use serde::{Deserialize, Serialize};

use super::StepRef;
use crate::plan::{DeploySpec, Driver, RollbackSpec};

/// Input of `deploy.prepare` and `deploy.rolling`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployInput {
    /// Who runs it.
    pub step: StepRef,
    /// The target driver.
    pub driver: Driver,
    /// The service.
    pub service: String,
    /// The version to deploy.
    pub version: String,
    /// How.
    pub spec: DeploySpec,
}

/// Output of `deploy.prepare`: the new version's instances are up and healthy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrepareOutput {
    /// The version.
    pub version: String,
    /// Its instances' ports.
    pub ports: Vec<u16>,
    /// The version it replaces, if any.
    pub previous: Option<String>,
    /// True when this version was already serving: nothing was started.
    pub already_current: bool,
}

/// Input of `traffic.shift`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShiftInput {
    /// Who runs it.
    pub step: StepRef,
    /// The target driver.
    pub driver: Driver,
    /// The service.
    pub service: String,
    /// Release root.
    pub root: String,
    /// The prepared version.
    pub version: String,
    /// Percent of traffic it gets.
    pub weight: u8,
}

/// Output of `traffic.shift`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShiftOutput {
    /// The weight now in effect.
    pub weight: u8,
    /// From the upstream rewrite to the last old nginx worker gone.
    pub applied_ms: f64,
    /// How the driver split the traffic, when that is not plain weights at a proxy (e.g. on
    /// Kubernetes without the Gateway API: "replica ratio: 1 of 4 pods in slot green").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Input of `deploy.retire`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetireInput {
    /// Who runs it.
    pub step: StepRef,
    /// The target driver.
    pub driver: Driver,
    /// The service.
    pub service: String,
    /// Release root.
    pub root: String,
    /// The version to keep; every other instance is stopped.
    pub keep: String,
}

/// Output of `deploy.retire`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetireOutput {
    /// Instances stopped, as `version@port`.
    pub stopped: Vec<String>,
}

/// Input of `deploy.rollback`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackInput {
    /// Who runs it.
    pub step: StepRef,
    /// The target driver.
    pub driver: Driver,
    /// The service.
    pub service: String,
    /// Where.
    pub spec: RollbackSpec,
}

/// Output of `deploy.rollback`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackOutput {
    /// The version that was serving.
    pub from: String,
    /// The version serving now.
    pub to: String,
}

/// What a `deploy` step did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployOutput {
    /// The new version's instances.
    pub prepared: PrepareOutput,
    /// Each traffic shift, in order.
    pub shifts: Vec<ShiftOutput>,
    /// Instances of older versions stopped after the rollback window.
    pub retired: Vec<String>,
}

/// Input of `traffic.route`: the fleet's router, and which hosts it sends traffic to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteInput {
    /// Who runs it.
    pub step: StepRef,
    /// The target driver.
    pub driver: Driver,
    /// The service.
    pub service: String,
    /// The router.
    pub router: crate::plan::Router,
    /// Hosts taken out of the router (the others get traffic).
    pub drained: Vec<String>,
    /// Relative weights of the hosts in service (a canary across hosts); absent: equal.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub weights: std::collections::BTreeMap<String, u32>,
}

/// What `traffic.route` left: the hosts in service, by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteOutput {
    /// Hosts getting traffic.
    pub serving: Vec<String>,
    /// Hosts taken out.
    pub drained: Vec<String>,
}

/// Input of `deploy.withdraw`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WithdrawInput {
    /// Who runs it.
    pub step: StepRef,
    /// The target driver.
    pub driver: Driver,
    /// The service.
    pub service: String,
    /// Release root.
    pub root: String,
    /// The version whose unfinished deploy is undone.
    pub version: String,
}

/// Output of `deploy.withdraw`: what serves now, checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WithdrawOutput {
    /// What was undone, in words (empty: nothing was left to undo).
    pub undone: Vec<String>,
    /// The version serving all traffic now, if any.
    pub serving: Option<String>,
    /// Its instances' ports, every one of which answered its health check.
    pub ports: Vec<u16>,
    /// True when `version` itself was still serving (it had reached all traffic).
    pub still_serving: bool,
}

impl WithdrawOutput {
    /// One sentence for a rollout's reason: what was undone and what serves now.
    pub fn describe(&self, service: &str) -> String {
        if self.undone.is_empty() {
            format!("nothing left to undo; {}", self.serving_now(service))
        } else {
            format!(
                "undone: {}; {}",
                self.undone.join(", "),
                self.serving_now(service)
            )
        }
    }

    /// What serves now, checked.
    pub fn serving_now(&self, service: &str) -> String {
        match &self.serving {
            Some(v) => format!(
                "{service} {v} serves all traffic on ports {:?}, each answering its health check",
                self.ports
            ),
            None => format!("nothing serves {service}"),
        }
    }
}

/// Input of `kube.job`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobInput {
    /// Who runs it: the Job's name derives from the rollout and step, so a retried attempt
    /// finds the Job its predecessor created instead of running the migration again.
    pub step: StepRef,
    /// The service.
    pub service: String,
    /// The release's version (the image's tag when the plan gives none).
    pub version: String,
    /// The Job.
    pub spec: crate::plan::KubeJob,
}

/// Output of `kube.job`: the Job finished with exit code 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobOutput {
    /// The Job's name, kept in the namespace for inspection.
    pub job: String,
    /// The container's last log lines, when the cluster could serve them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}
