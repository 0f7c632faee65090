//! From a YAML tree to a [`Plan`], collecting every problem on the way.
//!
//! The walk never stops at the first problem: a person fixing a plan wants the whole list, in
//! file order, each with a position and a hint. Defaults are filled in here so that
//! `cutover plan show` can print exactly what the workflow will run.

use std::collections::BTreeSet;
use std::time::Duration;

#[cfg(test)]
use super::diagnostic::Diagnostic;
use super::diagnostic::Diagnostics;
use super::kind::StepKind;
use super::types::{
    BakeSpec, DEFAULT_HOST_WAIT, Driver, OnFailure, Placement, Plan, RetryPolicy, Step, StepAction,
    Target,
};
use super::yaml::{Node, Value};
use crate::contracts::error_kind::ErrorKind;
use cx::{Cx, Document, Fields, closest, join, parse_document, to_json, truncate, valid_env_name};
pub use release::parse_release;

/// Where a plan's target puts host steps, for judging each step's placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placing {
    /// "This machine": whichever worker runs the rollout.
    Hostless,
    /// One host's agent.
    Host,
    /// Every host of a fleet, each by its agent; `routed` with a `target.router`.
    Fleet { routed: bool },
}

/// Bounds that keep a hostile or mistaken plan from becoming a huge workflow input.
#[derive(Clone, Copy, Debug)]
pub struct PlanLimits {
    /// Largest plan file accepted, in bytes.
    pub max_bytes: usize,
    /// Most steps in one plan.
    pub max_steps: usize,
}

impl Default for PlanLimits {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024,
            max_steps: 200,
        }
    }
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Parses and validates a plan. Returns the normalized plan, or every problem found.
///
/// # Errors
///
/// [`Diagnostics`] listing each problem with its line, column, path, message and hint.
pub fn parse_plan(text: &str, limits: PlanLimits) -> Result<Plan, Diagnostics> {
    parse_document(
        text,
        Document {
            what: "plan",
            max_bytes: limits.max_bytes,
            hint: "split it into several plans",
        },
        |cx, root| cx.plan(root, limits),
    )
}

impl Cx {
    fn plan(&mut self, root: &Node, limits: PlanLimits) -> Option<Plan> {
        let fields = self.fields(root, "")?;
        self.unknown_keys(
            &fields,
            &[
                "service",
                "environment",
                "version",
                "target",
                "defaults",
                "steps",
                "on_failure",
                "controls",
                "separation",
                "vars",
                "freeze",
                "notify",
            ],
        );
        let vars = match fields.get("vars") {
            Some(n) => self.vars(n),
            None => Some(std::collections::BTreeMap::new()),
        };
        if let Some(v) = &vars {
            self.vars = v.keys().cloned().collect();
        }
        let service = self
            .required(
                &fields,
                "service",
                "name the service, e.g. `service: checkout`",
            )
            .and_then(|n| self.name(n, "service", "service name"));
        let environment = self
            .required(
                &fields,
                "environment",
                "name the environment, e.g. `environment: staging`",
            )
            .and_then(|n| self.name(n, "environment", "environment name"));
        let version = self
            .required(
                &fields,
                "version",
                "give the version, e.g. `version: \"1.4.2\"`",
            )
            .and_then(|n| self.version(n));
        let target = match fields.get("target") {
            Some(n) => self.target(n),
            None => Some(Target::default()),
        };
        if let (Some(t), Some(v), Some(n)) = (&target, &version, fields.get("version"))
            && t.driver == Driver::Kubernetes
            && !super::kube::valid_image_version(v)
        {
            self.report(
                n,
                "version",
                format!("`{}` cannot be an image tag", truncate(v)),
                "on Kubernetes the version is the image's tag (letters, digits, `_`, `.`, `-`; up to 128) or digest (`sha256:` and 64 hex digits)",
            );
        }
        let defaults = match fields.get("defaults") {
            Some(n) => self.defaults(n),
            None => Some(StepDefaults::default()),
        };
        let steps = self
            .required(&fields, "steps", "list the steps to run under `steps:`")
            .and_then(|n| {
                // Placement mistakes are judged only against a target that parsed.
                let placing = target
                    .as_ref()
                    .map(|t| match (&t.host, t.hosts.is_empty()) {
                        (_, false) => Placing::Fleet {
                            routed: t.router.is_some(),
                        },
                        (Some(_), true) => Placing::Host,
                        (None, true) => Placing::Hostless,
                    });
                self.steps(n, defaults.as_ref(), limits, placing)
            });
        let on_failure = match fields.get("on_failure") {
            Some(n) => match self.string(n, "on_failure").as_deref() {
                Some("rollback") => Some(OnFailure::Rollback),
                Some("pause") => Some(OnFailure::Pause),
                Some("fail") => Some(OnFailure::Fail),
                Some(other) => {
                    self.report(
                        n,
                        "on_failure",
                        format!("unknown on_failure `{}`", truncate(other)),
                        "use `rollback`, `pause` or `fail`",
                    );
                    None
                }
                None => None,
            },
            None => Some(OnFailure::Rollback),
        };
        let controls = match fields.get("controls") {
            Some(n) => self.controls(n).map(Some),
            None => Some(None),
        };
        let separation = match fields.get("separation") {
            Some(n) => self.separation(n).map(Some),
            None => Some(None),
        };
        let freeze = match fields.get("freeze") {
            Some(n) => self.freeze(n),
            None => Some(Vec::new()),
        };
        let notify = match fields.get("notify") {
            Some(n) => self.notify(n, "notify", crate::plan::notify::ROLLOUT_EVENTS),
            None => Some(Vec::new()),
        };
        Some(Plan {
            notify: notify?,
            freeze: freeze?,
            freeze_override: None,
            vars: vars?,
            controls: controls?,
            separation: separation?,
            on_failure: on_failure?,
            service: service?,
            environment: environment?,
            version: version?,
            target: target?,
            steps: steps?,
            trigger: None,
        })
    }

    fn version(&mut self, node: &Node) -> Option<String> {
        let text = self.string(node, "version")?;
        if text.is_empty()
            || text.len() > 128
            || text.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            self.report(
                node,
                "version",
                format!("`{}` is not a valid version", truncate(&text)),
                "use 1 to 128 characters without spaces, e.g. a tag or a commit SHA",
            );
            return None;
        }
        Some(text)
    }

    fn target(&mut self, node: &Node) -> Option<Target> {
        let fields = self.fields(node, "target")?;
        self.unknown_keys(
            &fields,
            &[
                "driver",
                "host",
                "hosts",
                "router",
                "regions",
                "context",
                "namespace",
            ],
        );
        let host = match fields.get("host") {
            Some(n) => Some(self.name(n, "target.host", "host name")?),
            None => None,
        };
        let regions = match fields.get("regions") {
            Some(n) => self.regions(n)?,
            None => Vec::new(),
        };
        let hosts = match (fields.get("hosts"), regions.is_empty()) {
            (Some(n), true) => self.fleet_hosts(n, "target.hosts")?,
            (Some(n), false) => {
                self.report(
                    n,
                    "target.hosts",
                    "the target gives both `hosts` and `regions`",
                    "list each region's hosts under its `hosts`, and drop the target's",
                );
                return None;
            }
            (None, _) => regions.iter().flat_map(|g| g.hosts.clone()).collect(),
        };
        if let (Some(_), Some(n)) = (&host, fields.get("hosts")) {
            self.report(
                n,
                "target.hosts",
                "the target gives both `host` and `hosts`",
                "use `host: NAME` for one machine, or `hosts: [NAME, ...]` for a fleet",
            );
            return None;
        }
        let driver = match fields.get("driver") {
            Some(n) => self.string(n, "target.driver")?,
            None => "host".to_owned(),
        };
        match driver.as_str() {
            "host" => {
                if let Some((key, n)) = ["context", "namespace"]
                    .iter()
                    .find_map(|k| fields.get(k).map(|n| (*k, n)))
                {
                    self.report(
                        n,
                        &format!("target.{key}"),
                        format!("`{key}` belongs to a Kubernetes target"),
                        "add `driver: kubernetes`, or remove it",
                    );
                    return None;
                }
                let router = match fields.get("router") {
                    Some(n) => Some(self.router(n, &hosts)?),
                    None => None,
                };
                Some(Target {
                    driver: Driver::Host,
                    host,
                    hosts,
                    router,
                    regions,
                    kubernetes: None,
                })
            }
            "kubernetes" => {
                let machines = ["host", "hosts", "router", "regions"];
                if let Some((key, n)) = machines.iter().find_map(|k| fields.get(k).map(|n| (*k, n)))
                {
                    self.report(
                        n,
                        &format!("target.{key}"),
                        format!("`{key}` names machines, and a Kubernetes target has none"),
                        "remove it; the cluster places the pods",
                    );
                    return None;
                }
                let kube = self.kube_target(&fields)?;
                self.kube = Some(kube.clone());
                Some(Target {
                    driver: Driver::Kubernetes,
                    kubernetes: Some(kube),
                    ..Target::default()
                })
            }
            other => {
                self.report(
                    fields.get("driver").unwrap_or(node),
                    "target.driver",
                    format!("unknown driver `{}`", truncate(other)),
                    "use `driver: host` or `driver: kubernetes`",
                );
                None
            }
        }
    }

    fn defaults(&mut self, node: &Node) -> Option<StepDefaults> {
        let fields = self.fields(node, "defaults")?;
        self.unknown_keys(&fields, &["timeout", "heartbeat_timeout", "retry"]);
        let base = StepDefaults::default();
        let timeout = match fields.get("timeout") {
            Some(n) => self.duration(n, "defaults.timeout").map(Some),
            None => Some(None),
        };
        let heartbeat_timeout = match fields.get("heartbeat_timeout") {
            Some(n) => self.duration(n, "defaults.heartbeat_timeout"),
            None => Some(base.heartbeat_timeout),
        };
        let retry = match fields.get("retry") {
            Some(n) => self.retry(n, "defaults.retry", &base.retry),
            None => Some(base.retry),
        };
        Some(StepDefaults {
            timeout: timeout?,
            heartbeat_timeout: heartbeat_timeout?,
            retry: retry?,
        })
    }

    fn steps(
        &mut self,
        node: &Node,
        defaults: Option<&StepDefaults>,
        limits: PlanLimits,
        placing: Option<Placing>,
    ) -> Option<Vec<Step>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                "steps",
                format!("expected a list of steps, found {}", node.shape()),
                "start each step with `- name: ...`",
            );
            return None;
        };
        if items.is_empty() {
            self.report(
                node,
                "steps",
                "the plan has no steps",
                "add at least one step",
            );
            return None;
        }
        if items.len() > limits.max_steps {
            self.report(
                node,
                "steps",
                format!(
                    "the plan has {} steps; at most {} are allowed",
                    items.len(),
                    limits.max_steps
                ),
                "split the rollout into several plans",
            );
            return None;
        }
        let fallback = StepDefaults::default();
        let defaults = defaults.unwrap_or(&fallback);
        let mut seen = BTreeSet::new();
        let mut steps = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.step(item, &format!("steps[{i}]"), defaults) {
                Some(step) => {
                    ok &= placing.is_none_or(|p| self.placed(item, i, &step, p));
                    if placing == Some(Placing::Hostless) && step.on == Placement::Host {
                        self.report(
                            item,
                            &format!("steps[{i}].on"),
                            "`on: host` needs a host, and the plan's target names none",
                            "add `host: NAME` under `target:` (the agent's `cutover-worker --host NAME`), or remove `on`",
                        );
                        ok = false;
                    }
                    ok &= self.references(item, &format!("steps[{i}]"), &seen);
                    if !seen.insert(step.name.clone()) {
                        self.report(
                            item,
                            &format!("steps[{i}].name"),
                            format!("another step is already named `{}`", step.name),
                            "give every step a unique name",
                        );
                        ok = false;
                    }
                    steps.push(step);
                }
                None => ok = false,
            }
        }
        ok.then_some(steps)
    }

    /// Whether `step` fits the target's placement (reports why not). A fleet runs provision,
    /// deploy and rollback on every host and everything else on a worker; waves need a fleet.
    fn placed(&mut self, item: &Node, i: usize, step: &Step, placing: Placing) -> bool {
        let (fleet, routed) = match placing {
            Placing::Fleet { routed } => (true, routed),
            _ => (false, false),
        };
        if fleet && step.on == Placement::Host {
            self.report(
                item,
                &format!("steps[{i}].on"),
                super::types::FLEET_ON_HOST,
                "remove `on: host`, or give the step a plan of its own whose target is that one host",
            );
            return false;
        }
        if let StepAction::Deploy(spec) = &step.action {
            let hosts = if fleet {
                vec![String::new()]
            } else {
                Vec::new()
            };
            if let Some(why) = spec.fleet_problem(&hosts, routed) {
                self.report(
                    item,
                    &format!("steps[{i}]"),
                    why,
                    if fleet {
                        "add a `router` in front of the hosts, or use `strategy: blue-green` or `rolling` on each host, rolled in `waves`"
                    } else {
                        "list the hosts under `target.hosts`, or remove `waves`, `max_unavailable` and `between_waves`"
                    },
                );
                return false;
            }
        }
        true
    }

    fn step(&mut self, node: &Node, path: &str, defaults: &StepDefaults) -> Option<Step> {
        let fields = self.fields(node, path)?;
        let name = self
            .required(&fields, "name", "give the step a name, e.g. `name: build`")
            .and_then(|n| self.name(n, &join(path, "name"), "step name"));
        let kind_node = self.required(
            &fields,
            "kind",
            &format!("choose one of: {}", StepKind::names().join(", ")),
        );
        let kind = kind_node.and_then(|n| self.string(n, &join(path, "kind")));
        let common = [
            "name",
            "kind",
            "timeout",
            "heartbeat_timeout",
            "retry",
            "point_of_no_return",
            "on",
            "schedule_to_start_timeout",
        ];
        let kind = match kind.as_deref().map(|k| (k, StepKind::from_name(k))) {
            Some((_, Some(kind))) => kind,
            Some((other, None)) => {
                let names = StepKind::names();
                let hint = match closest(other, &names) {
                    Some(best) => format!("did you mean `{best}`? kinds: {}", names.join(", ")),
                    None => format!("choose one of: {}", names.join(", ")),
                };
                if let Some(n) = kind_node {
                    self.report(
                        n,
                        &join(path, "kind"),
                        format!("unknown step kind `{}`", truncate(other)),
                        &hint,
                    );
                }
                return None;
            }
            None => return None,
        };
        let specific = match (kind, &self.kube) {
            (StepKind::Deploy, Some(_)) => kube::KUBE_DEPLOY_KEYS,
            (StepKind::Migrate, Some(_)) => &["job"],
            (StepKind::Provision, Some(_)) => kube::KUBE_PROVISION_KEYS,
            _ => kind.keys(),
        };
        let known: Vec<&str> = common.iter().chain(specific).copied().collect();
        self.unknown_keys(&fields, &known);

        let timeout_default = defaults.timeout.unwrap_or(kind.default_timeout());
        let timeout = match fields.get("timeout") {
            Some(n) => self.duration(n, &join(path, "timeout")),
            None => Some(timeout_default),
        };
        let heartbeat_timeout = match fields.get("heartbeat_timeout") {
            Some(n) => self.duration(n, &join(path, "heartbeat_timeout")),
            None => Some(defaults.heartbeat_timeout),
        };
        let retry = match fields.get("retry") {
            Some(n) => self.retry(n, &join(path, "retry"), &defaults.retry),
            None => Some(defaults.retry.clone()),
        };
        let action = match kind {
            StepKind::Command => self.command(&fields, path).map(StepAction::Command),
            StepKind::Build => self.build(&fields, path).map(StepAction::Build),
            StepKind::Verify => self.verify(&fields, path).map(StepAction::Verify),
            StepKind::Provision if self.kube.is_some() => {
                let target = self.kube.clone()?;
                self.kube_provision(&fields, path, &target)
                    .map(StepAction::Provision)
            }
            StepKind::Provision => self.provision(&fields, path).map(StepAction::Provision),
            StepKind::Migrate => match self.kube.clone() {
                Some(target) => self
                    .kube_job(&fields, path, &target)
                    .map(StepAction::MigrateJob),
                None => self.migrate(&fields, path).map(StepAction::Migrate),
            },
            StepKind::Deploy => match self.kube.clone() {
                Some(target) => self
                    .kube_deploy(&fields, path, &target)
                    .map(StepAction::Deploy),
                None => self.deploy(&fields, path).map(StepAction::Deploy),
            },
            StepKind::Rollback => match self.kube.clone() {
                Some(target) => match fields.get("root") {
                    Some(n) => {
                        self.no_root(n, path);
                        None
                    }
                    None => Some(StepAction::Rollback(self.kube_rollback(&target))),
                },
                None => self.rollback(&fields, path).map(StepAction::Rollback),
            },
            StepKind::Approval => self.approval(&fields, path).map(StepAction::Approval),
            StepKind::Bake => self
                .required(&fields, "duration", "say how long, e.g. `duration: 10m`")
                .and_then(|n| self.duration(n, &join(path, "duration")))
                .map(|duration| StepAction::Bake(BakeSpec { duration })),
            StepKind::Analysis => self.analysis(&fields, path).map(StepAction::Analysis),
        };
        let point_of_no_return = match fields.get("point_of_no_return") {
            Some(n) => self.boolean(n, &join(path, "point_of_no_return")),
            None => Some(false),
        };
        let on = match fields.get("on") {
            Some(n) => self.placement(n, &join(path, "on"), kind),
            None => Some(Placement::Worker),
        };
        let schedule_to_start_timeout = match fields.get("schedule_to_start_timeout") {
            Some(n) => self.duration(n, &join(path, "schedule_to_start_timeout")),
            None => Some(DEFAULT_HOST_WAIT),
        };
        let undo = match fields.get("undo") {
            Some(n) => self.undo(n, &join(path, "undo")).map(|u| Some(Box::new(u))),
            None => Some(None),
        };
        let (timeout, heartbeat_timeout) = (timeout?, heartbeat_timeout?);
        Some(Step {
            undo: undo?,
            point_of_no_return: point_of_no_return?,
            on: on?,
            schedule_to_start_timeout: schedule_to_start_timeout?,
            name: name?,
            timeout,
            heartbeat_timeout: heartbeat_timeout.min(timeout),
            retry: retry?,
            action: action?,
        })
    }

    /// `on: host|worker`. Provision, deploy and rollback always act on the host; approvals,
    /// bakes and analyses run no activity on one.
    fn placement(&mut self, node: &Node, path: &str, kind: StepKind) -> Option<Placement> {
        let text = self.string(node, path)?;
        let placement = match text.as_str() {
            "host" => Placement::Host,
            "worker" => Placement::Worker,
            other => {
                self.report(
                    node,
                    path,
                    format!("unknown placement `{}`", truncate(other)),
                    "use `on: host` (the target host's agent) or `on: worker` (any worker)",
                );
                return None;
            }
        };
        match kind {
            StepKind::Command | StepKind::Build | StepKind::Verify | StepKind::Migrate => {
                Some(placement)
            }
            StepKind::Provision | StepKind::Deploy | StepKind::Rollback => {
                if placement == Placement::Worker {
                    self.report(
                        node,
                        path,
                        format!("a `{}` step always runs on the target host", kind.as_str()),
                        "remove `on`",
                    );
                    return None;
                }
                Some(placement)
            }
            StepKind::Approval | StepKind::Bake | StepKind::Analysis => {
                self.report(
                    node,
                    path,
                    format!("a `{}` step runs nothing on a host", kind.as_str()),
                    "remove `on`; it applies to command, build, verify and migrate steps",
                );
                None
            }
        }
    }

    fn retry(&mut self, node: &Node, path: &str, base: &RetryPolicy) -> Option<RetryPolicy> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(
            &fields,
            &[
                "initial_interval",
                "backoff_coefficient",
                "maximum_interval",
                "maximum_attempts",
                "non_retryable",
            ],
        );
        let mut policy = base.clone();
        let mut ok = true;
        if let Some(n) = fields.get("initial_interval") {
            match self.duration(n, &join(path, "initial_interval")) {
                Some(d) => policy.initial_interval = d,
                None => ok = false,
            }
        }
        if let Some(n) = fields.get("maximum_interval") {
            match self.duration(n, &join(path, "maximum_interval")) {
                Some(d) => policy.maximum_interval = d,
                None => ok = false,
            }
        }
        if let Some(n) = fields.get("backoff_coefficient") {
            let p = join(path, "backoff_coefficient");
            match self.string(n, &p).map(|t| t.trim().parse::<f64>()) {
                Some(Ok(c)) if c.is_finite() && (1.0..=100.0).contains(&c) => {
                    policy.backoff_coefficient = c
                }
                Some(_) => {
                    self.report(
                        n,
                        &p,
                        "the backoff coefficient must be a number from 1 to 100",
                        "e.g. `2.0`",
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        if let Some(n) = fields.get("maximum_attempts") {
            match self.integer(n, &join(path, "maximum_attempts"), 0, 10_000) {
                Some(a) => policy.maximum_attempts = a as u32,
                None => ok = false,
            }
        }
        if let Some(n) = fields.get("non_retryable") {
            match self.string_list(n, &join(path, "non_retryable")) {
                Some(list) => {
                    let known: Vec<&str> = ErrorKind::KNOWN.iter().map(ErrorKind::as_str).collect();
                    for name in list {
                        match ErrorKind::known(&name) {
                            Some(kind) => policy.non_retryable.push(kind),
                            None => {
                                let hint = match closest(&name, &known) {
                                    Some(best) => format!(
                                        "did you mean `{best}`? kinds: {}",
                                        known.join(", ")
                                    ),
                                    None => format!("use error kinds: {}", known.join(", ")),
                                };
                                self.report(
                                    n,
                                    &join(path, "non_retryable"),
                                    format!("unknown error kind `{}`", truncate(&name)),
                                    &hint,
                                );
                                ok = false;
                            }
                        }
                    }
                }
                None => ok = false,
            }
        }
        if policy.maximum_interval < policy.initial_interval {
            self.report(
                node,
                path,
                "maximum_interval is shorter than initial_interval",
                "raise maximum_interval or lower initial_interval",
            );
            ok = false;
        }
        ok.then_some(policy)
    }
}

/// Plan-wide defaults for step timeouts and retries.
struct StepDefaults {
    /// `None` lets each kind pick its own default (builds get longer).
    timeout: Option<Duration>,
    heartbeat_timeout: Duration,
    retry: RetryPolicy,
}

impl Default for StepDefaults {
    fn default() -> Self {
        Self {
            timeout: None,
            heartbeat_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

mod analysis;
mod approval;
pub(crate) mod cx;
mod deploy;
mod drill;
mod fleet;
mod freeze;
mod kube;
mod migrate;
mod notify;
mod process;
mod provision;
mod release;
mod verify;

pub(crate) use analysis::ANALYSIS_KEYS;
pub use drill::parse_drill;

#[cfg(test)]
mod placement_tests;

#[cfg(test)]
mod fleet_tests;
#[cfg(test)]
mod kube_tests;
#[cfg(test)]
mod notify_tests;
#[cfg(test)]
mod tests;
