//! Releases of several services: one parent workflow (`release/<name>/<environment>`) that
//! runs a shared migration, then each service's plan as a child `RolloutWorkflow`, in the
//! order their `after:` dependencies give; if one fails, the services already released are
//! rolled back in reverse order.
//!
//! Each child is an ordinary rollout with its usual ID (`rollout/<service>/<environment>`),
//! lock, status, approvals and saga, so `cutover rollout status` works on it as on any other;
//! the parent only orders them and undoes what succeeded when a later one fails.

mod workflow;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::plan::{MigrateSpec, Plan, RetryPolicy, Step, StepAction};

pub use workflow::{RELEASE_FAILED, ReleaseWorkflow};

/// The workflow ID of a release.
pub fn release_workflow_id(name: &str, environment: &str) -> String {
    format!("release/{name}/{environment}")
}

/// Most services one release may list.
pub const MAX_SERVICES: usize = 32;

/// A validated release plan: the input of `ReleaseWorkflow`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReleasePlan {
    /// The release's name, e.g. `shop`.
    pub name: String,
    /// Where every service is released; each service plan's own environment is replaced.
    pub environment: String,
    /// The migration run once before any service, gating them all. It is kept when services
    /// roll back (see the README: a shared migration must be one the old versions run with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<MigrateSpec>,
    /// The services, in the order written; `after` may reorder them.
    pub services: Vec<ReleaseService>,
}

/// One service of a release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleaseService {
    /// Services that must be released first (by their plans' `service` names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Its plan, as a rollout would run it.
    pub plan: Plan,
}

impl ReleasePlan {
    /// The workflow ID of this release: one running release per name and environment.
    pub fn workflow_id(&self) -> String {
        release_workflow_id(&self.name, &self.environment)
    }

    /// What is wrong with this release (for inputs that did not come from YAML).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (field, value) in [("name", &self.name), ("environment", &self.environment)] {
            if let Err(e) = crate::name::Name::parse(value) {
                out.push(format!("{field}: {e}"));
            }
        }
        if self.services.is_empty() || self.services.len() > MAX_SERVICES {
            out.push(format!(
                "services: a release lists 1 to {MAX_SERVICES} services, this one {}",
                self.services.len()
            ));
        }
        let mut names = BTreeSet::new();
        for (i, s) in self.services.iter().enumerate() {
            if !names.insert(s.plan.service.as_str()) {
                out.push(format!(
                    "services[{i}]: `{}` is listed twice",
                    s.plan.service
                ));
            }
            if s.plan.environment != self.environment {
                out.push(format!(
                    "services[{i}]: its plan is for `{}`, the release for `{}`",
                    s.plan.environment, self.environment
                ));
            }
            out.extend(
                s.plan
                    .problems()
                    .into_iter()
                    .map(|p| format!("services[{i}] ({}): {p}", s.plan.service)),
            );
        }
        for (i, s) in self.services.iter().enumerate() {
            for dep in &s.after {
                if !names.contains(dep.as_str()) {
                    out.push(format!(
                        "services[{i}].after: no service `{dep}` in this release"
                    ));
                }
            }
        }
        if self.order().is_none() {
            out.push("services: their `after` lists form a cycle".to_owned());
        }
        out
    }

    /// Service indexes in release order: each after everything it names in `after`, ties
    /// in the order written. `None` when the dependencies form a cycle.
    pub fn order(&self) -> Option<Vec<usize>> {
        let index: BTreeMap<&str, usize> = self
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.plan.service.as_str(), i))
            .collect();
        let mut done = vec![false; self.services.len()];
        let mut order = Vec::new();
        while order.len() < self.services.len() {
            let next = (0..self.services.len()).find(|&i| {
                !done[i]
                    && self.services[i]
                        .after
                        .iter()
                        .all(|d| index.get(d.as_str()).is_none_or(|&j| done[j]))
            })?;
            done[next] = true;
            order.push(next);
        }
        Some(order)
    }
}

/// The plan that undoes a service's release after it succeeded: traffic back to the
/// previous version on every deploy root (on each of a fleet's hosts), the new version's
/// instances stopped. An ordinary rollout, so it has a status and a ledger record.
pub fn rollback_plan(plan: &Plan) -> Plan {
    let steps = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            StepAction::Deploy(d) => Some(Step {
                name: format!("undo-{}", s.name),
                action: StepAction::Rollback(crate::plan::RollbackSpec {
                    root: d.root.clone(),
                }),
                retry: RetryPolicy::default(),
                point_of_no_return: false,
                ..s.clone()
            }),
            _ => None,
        })
        .collect();
    Plan {
        steps,
        trigger: None,
        ..plan.clone()
    }
}

/// Where a release is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseState {
    /// Under way.
    #[default]
    Running,
    /// Every service released.
    Succeeded,
    /// A service failed; the ones released before it were rolled back (or kept, and said).
    Failed,
}

/// Where one service of a release is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Not started.
    #[default]
    Pending,
    /// Its rollout runs.
    Running,
    /// Released.
    Succeeded,
    /// Its rollout failed (and undid itself, as its plan's `on_failure` says).
    Failed,
    /// Released, then rolled back because a later service failed.
    RolledBack,
    /// Released and left so: past its point of no return, or its rollback failed.
    Kept,
    /// Never started: an earlier service or the migration failed.
    Skipped,
}

impl ServiceState {
    /// The word shown in status.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Pending => "pending",
            ServiceState::Running => "running",
            ServiceState::Succeeded => "succeeded",
            ServiceState::Failed => "failed",
            ServiceState::RolledBack => "rolled back",
            ServiceState::Kept => "kept",
            ServiceState::Skipped => "skipped",
        }
    }
}

/// One service in a release's status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// The service.
    pub service: String,
    /// Its version.
    pub version: String,
    /// Its rollout's workflow ID (`rollout/<service>/<environment>`), to ask for its steps.
    pub workflow_id: String,
    /// Where it is.
    pub state: ServiceState,
    /// Why it failed, or what undoing it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A release's status: the `status` query's answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReleaseStatus {
    /// `release/<name>/<environment>`.
    pub workflow_id: String,
    /// The release.
    pub name: String,
    /// The environment.
    pub environment: String,
    /// Where it is.
    pub state: ReleaseState,
    /// The shared migration: `None` without one; its outcome in words once run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<String>,
    /// The services, in release order.
    pub services: Vec<ServiceStatus>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, after: &[&str]) -> ReleaseService {
        ReleaseService {
            after: after.iter().map(|s| (*s).to_owned()).collect(),
            plan: Plan {
                service: name.to_owned(),
                environment: "prod".to_owned(),
                version: "1".to_owned(),
                steps: vec![],
                ..Plan::default()
            },
        }
    }

    fn release(services: Vec<ReleaseService>) -> ReleasePlan {
        ReleasePlan {
            name: "shop".to_owned(),
            environment: "prod".to_owned(),
            migrate: None,
            services,
        }
    }

    #[test]
    fn services_run_after_what_they_name_and_otherwise_as_written() {
        let r = release(vec![
            service("worker", &["api"]),
            service("api", &[]),
            service("web", &[]),
        ]);
        assert_eq!(r.order(), Some(vec![1, 0, 2]));
    }

    #[test]
    fn cycles_unknown_names_and_twins_are_refused() {
        let r = release(vec![service("a", &["b"]), service("b", &["a"])]);
        assert_eq!(r.order(), None);
        let problems = r.problems().join("\n");
        assert!(problems.contains("form a cycle"), "{problems}");
        let r = release(vec![service("a", &["nope"]), service("a", &[])]);
        let problems = r.problems().join("\n");
        assert!(problems.contains("no service `nope`"), "{problems}");
        assert!(problems.contains("listed twice"), "{problems}");
    }
}
