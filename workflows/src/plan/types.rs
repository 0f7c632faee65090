//! The normalized plan: every default filled in, every value checked.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StepKind;
use crate::duration_serde;

/// A validated rollout plan, ready to be the input of `RolloutWorkflow`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The service being released, e.g. `checkout`.
    pub service: String,
    /// Where it is released, e.g. `staging`.
    pub environment: String,
    /// The version being released, e.g. a tag or commit SHA.
    pub version: String,
    /// Where the release lives and which driver acts on it.
    pub target: Target,
    /// The steps, run in order.
    pub steps: Vec<Step>,
    /// What happens when a step fails for good.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// What started this rollout; set by the starter (CLI, webhook receiver), not by plans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// Who may promote, pause, resume, abort and retry; absent, anyone may (see
    /// [`crate::guard`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controls: Option<Controls>,
    /// `separation: author`: the person whose push or start created the release may not
    /// approve it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separation: Option<Separation>,
    /// Values steps refer to as `${vars.NAME}` (see [`crate::plan::vars`]); `rollout start
    /// --var NAME=VALUE` overrides them. They enter the workflow's history: no secrets here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// Windows in which this plan's rollouts do not start (see [`crate::plan::freeze`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<super::freeze::FreezeWindow>,
    /// Set by the starter (`rollout start --override-freeze REASON`), not by plans: who
    /// started this rollout inside a freeze window, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze_override: Option<super::freeze::FreezeOverride>,
    /// Who is told when the rollout starts, waits for approval, pauses and ends (see
    /// [`crate::plan::notify`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<super::notify::Notifier>,
}

/// Who may take each control action: people by name, groups as `group:NAME`. An action not
/// listed is open to anyone with a verified identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controls {
    /// `cutover rollout promote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<Vec<String>>,
    /// `cutover rollout pause`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Vec<String>>,
    /// `cutover rollout resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Vec<String>>,
    /// `cutover rollout abort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<Vec<String>>,
    /// `cutover rollout retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Vec<String>>,
}

/// Duties that must be held by different people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Separation {
    /// Whoever created the release (the push's author, the person who ran `rollout start`)
    /// may not approve it.
    Author,
}

/// What started a rollout, kept in its release record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// Who started it.
    pub kind: TriggerKind,
    /// Who, or which delivery and rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `<provider>:<delivery ID>` for webhook deliveries: kept in the workflow's memo, so a
    /// receiver that loses a start race can tell the running rollout is its own delivery's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    /// The person who created the release: the push's sender, the user who ran
    /// `rollout start`. `separation: author` refuses their approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// Who started a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// `cutover rollout start`.
    Cli,
    /// A GitHub webhook delivery.
    Github,
    /// A GitLab webhook delivery.
    Gitlab,
    /// A generic (HMAC-signed) webhook delivery.
    Generic,
    /// A Temporal Schedule (`cutover rollout schedule`).
    Schedule,
}

impl TriggerKind {
    /// The name in the ledger, the memo and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Cli => "cli",
            TriggerKind::Github => "github",
            TriggerKind::Gitlab => "gitlab",
            TriggerKind::Generic => "generic",
            TriggerKind::Schedule => "schedule",
        }
    }
}

/// A kind of deploy target: which driver provisions, deploys and switches traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Driver {
    /// Processes, nginx and PostgreSQL on the worker's machine.
    #[default]
    Host,
    /// Objects on a Kubernetes cluster, through its API server.
    Kubernetes,
}

impl Driver {
    /// The name in plans and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Host => "host",
            Driver::Kubernetes => "kubernetes",
        }
    }
}

/// Compares with the plan's name, e.g. `target.driver == "host"`.
impl PartialEq<&str> for Driver {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What a rollout does when a step fails after its retries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Undo the completed steps in reverse (traffic back, new instances stopped, reversible
    /// migrations reverted unless a point of no return was passed).
    #[default]
    Rollback,
    /// Hold the rollout for a person: `retry` re-runs the failed step, `abort` rolls back.
    Pause,
    /// Stop where it is.
    Fail,
}

impl Plan {
    /// What is wrong with a plan that arrived as JSON rather than through the parser (which
    /// checks all of this and more, with positions): names, an empty or duplicated step list.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (field, value) in [
            ("service", &self.service),
            ("environment", &self.environment),
        ] {
            if let Err(e) = crate::name::Name::parse(value) {
                out.push(format!("{field}: {e}"));
            }
        }
        if self.version.is_empty() {
            out.push("version: empty".to_owned());
        }
        for (i, w) in self.freeze.iter().enumerate() {
            if let Some(why) = w.problem() {
                out.push(format!("freeze[{i}]: {why}"));
            }
        }
        if self.steps.is_empty() {
            out.push("steps: a plan needs at least one step".to_owned());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            if step.name.is_empty() || !seen.insert(step.name.as_str()) {
                out.push(format!(
                    "steps[{i}].name: `{}` is empty or used twice",
                    step.name
                ));
            }
        }
        out.extend(self.target.problems());
        out.extend(self.kube_problems());
        for (i, step) in self.steps.iter().enumerate() {
            if let StepAction::Deploy(spec) = &step.action
                && let Some(why) =
                    spec.fleet_problem(self.target.fleet(), self.target.router.is_some())
            {
                out.push(format!("steps[{i}]: {why}"));
            }
            if !self.target.hosts.is_empty()
                && step.on == Placement::Host
                && step.fleet(&self.target).is_empty()
            {
                out.push(format!("steps[{i}].on: {FLEET_ON_HOST}"));
            }
        }
        out
    }

    /// What is wrong with a Kubernetes plan that arrived as JSON: a target without its
    /// cluster, deploys without their objects, or host deploys on a cluster.
    fn kube_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let kube = self.target.driver == Driver::Kubernetes;
        match (&self.target.kubernetes, kube) {
            (None, true) => out.push("target: `driver: kubernetes` needs `namespace`".to_owned()),
            (Some(_), false) => {
                out.push("target: `namespace` needs `driver: kubernetes`".to_owned())
            }
            (Some(t), true) if !super::kube::dns_label(&t.namespace) => {
                out.push(format!(
                    "target.namespace: `{}` is not a valid namespace",
                    t.namespace
                ));
            }
            _ => {}
        }
        if kube && !super::kube::valid_image_version(&self.version) {
            out.push(format!(
                "version: `{}` cannot be an image tag",
                self.version
            ));
        }
        for (i, step) in self.steps.iter().enumerate() {
            let StepAction::Deploy(spec) = &step.action else {
                continue;
            };
            match (&spec.kubernetes, kube) {
                (Some(k), true) if k.objects.is_empty() => out.push(format!(
                    "steps[{i}]: the deploy carries no objects; load the plan with `cutover` so its manifests are read"
                )),
                (Some(_), true) | (None, false) => {}
                (None, true) => out.push(format!(
                    "steps[{i}]: a host deploy on a Kubernetes target"
                )),
                (Some(_), false) => out.push(format!(
                    "steps[{i}]: a Kubernetes deploy on a `{}` target",
                    self.target.driver.as_str()
                )),
            }
        }
        out
    }

    /// The workflow ID of this plan's rollout: one running rollout per service and environment.
    pub fn workflow_id(&self) -> String {
        crate::rollout_workflow_id(&self.service, &self.environment)
    }
}

/// The target section: which driver provisions, deploys and switches traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The driver.
    pub driver: Driver,
    /// The machine the release lives on, by its agent's name (`cutover-worker --host NAME`).
    /// Its host activities go to that agent's task queue, so they cannot run anywhere else;
    /// without it the plan means "the machine of whichever worker runs the rollout".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A fleet: every host runs the release; deploys roll them in waves. Exclusive with `host`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// A fleet's traffic router, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<super::fleet::Router>,
    /// A fleet in regions: each a group of `hosts` with its own router, rolled one after
    /// another (`hosts` lists them all, in region order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<super::fleet::Region>,
    /// The cluster and namespace, for `driver: kubernetes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<super::kube::KubeTarget>,
}

/// Why `on: host` is refused on a fleet's command, build, verify or migrate step.
pub(crate) const FLEET_ON_HOST: &str = "`on: host` names one host, and this target is a fleet of several; such a step runs once, on an orchestrating worker";

/// Most hosts a fleet may list: each is a parallel activity per wave in one workflow.
pub(crate) const MAX_FLEET: usize = 100;

impl Target {
    /// The fleet's hosts; empty for a single machine.
    pub fn fleet(&self) -> &[String] {
        &self.hosts
    }

    /// The fleet's routers, each with the hosts behind it: the target's, or each region's.
    pub fn routers(&self) -> Vec<(&super::fleet::Router, &[String])> {
        match &self.router {
            Some(r) => vec![(r, self.hosts.as_slice())],
            None => self
                .regions
                .iter()
                .filter_map(|g| Some((g.router.as_ref()?, g.hosts.as_slice())))
                .collect(),
        }
    }

    /// The fleet cut into groups rolled one after another: its regions, or one group.
    pub fn groups(&self) -> Vec<(Option<&str>, &[String])> {
        if self.regions.is_empty() {
            vec![(None, self.hosts.as_slice())]
        } else {
            self.regions
                .iter()
                .map(|g| (Some(g.name.as_str()), g.hosts.as_slice()))
                .collect()
        }
    }

    /// What is wrong with the target's hosts, for plans that did not come from YAML.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, host) in self.host.iter().chain(&self.hosts).enumerate() {
            if let Err(e) = crate::name::Name::parse(host) {
                out.push(format!("target host #{}: {e}", i + 1));
            }
        }
        if self.host.is_some() && !self.hosts.is_empty() {
            out.push("target: give `host` or `hosts`, not both".to_owned());
        }
        if self.hosts.len() > MAX_FLEET {
            out.push(format!("target.hosts: more than {MAX_FLEET} hosts"));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = self.hosts.iter().find(|h| !seen.insert(h.as_str())) {
            out.push(format!("target.hosts: `{twice}` is listed twice"));
        }
        if let Some(router) = &self.router {
            out.extend(router.problems(&self.hosts));
        }
        if !self.regions.is_empty() {
            let listed: Vec<&String> = self.regions.iter().flat_map(|g| &g.hosts).collect();
            if listed != self.hosts.iter().collect::<Vec<_>>() {
                out.push(
                    "target.regions: `hosts` must list the regions' hosts, in order".to_owned(),
                );
            }
            if self.router.is_some() {
                out.push("target: with regions, each region has its own router".to_owned());
            }
            for g in &self.regions {
                if let Err(e) = crate::name::Name::parse(&g.name) {
                    out.push(format!("target.regions: {e}"));
                }
                if let Some(r) = &g.router {
                    out.extend(r.problems(&g.hosts));
                }
            }
        }
        out
    }
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Unique name within the plan; shown in status and logs.
    pub name: String,
    /// Start-to-close timeout of one attempt.
    #[serde(with = "duration_serde")]
    pub timeout: Duration,
    /// A worker that stops heartbeating for this long is presumed dead and the attempt is retried.
    #[serde(with = "duration_serde")]
    pub heartbeat_timeout: Duration,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// Once this step has succeeded, migrations are no longer rolled back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub point_of_no_return: bool,
    /// Where the step's activities run: on any orchestrating worker, or on the target host's
    /// agent. Provision, deploy and rollback always act on the host.
    #[serde(default, skip_serializing_if = "Placement::is_worker")]
    pub on: Placement,
    /// How long an activity sent to a host may wait for that host's agent to take it before
    /// the step fails (Temporal's schedule-to-start timeout). Applies only to host activities:
    /// an orchestrating worker that is down delays a rollout, it does not fail it.
    #[serde(
        default = "default_host_wait",
        skip_serializing_if = "is_default_host_wait",
        with = "duration_serde"
    )]
    pub schedule_to_start_timeout: Duration,
    /// `command` and `build` steps: what undoes the step's effect when the rollout rolls back
    /// (run by the saga, newest first, unless a `point_of_no_return` step completed since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Box<UndoSpec>>,
    /// What the step does.
    #[serde(flatten)]
    pub action: StepAction,
}

/// A step's compensation: a command with its own timeout and attempts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UndoSpec {
    /// What to run.
    pub command: CommandSpec,
    /// Start-to-close timeout of one attempt.
    #[serde(with = "duration_serde")]
    pub timeout: Duration,
    /// Attempts before the undo is given up (and the rollout ends `failed`, saying so).
    pub attempts: u32,
}

/// Where a step's activities run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// On any worker polling the rollout's task queue.
    #[default]
    Worker,
    /// On the agent of the target's host.
    Host,
}

impl Placement {
    fn is_worker(&self) -> bool {
        *self == Placement::Worker
    }
}

/// How long a host activity waits for its agent unless the plan says otherwise.
pub const DEFAULT_HOST_WAIT: Duration = Duration::from_secs(600);

fn default_host_wait() -> Duration {
    DEFAULT_HOST_WAIT
}

fn is_default_host_wait(d: &Duration) -> bool {
    *d == DEFAULT_HOST_WAIT
}

impl Step {
    /// The host this step's activities are sent to: the target's host, when the plan names
    /// one and the step acts on a host (always for provision, deploy and rollback; for
    /// command, build, verify and migrate when it says `on: host`).
    pub fn host<'a>(&self, target: &'a Target) -> Option<&'a str> {
        target.host.as_deref().filter(|_| self.acts_on_host())
    }

    /// The fleet hosts this step acts on, each by its own agent: every host of the target's
    /// `hosts` for provision, deploy and rollback; none otherwise (a fleet's other steps run
    /// on an orchestrating worker).
    pub fn fleet<'a>(&self, target: &'a Target) -> &'a [String] {
        match &self.action {
            StepAction::Provision(_) | StepAction::Deploy(_) | StepAction::Rollback(_) => {
                target.fleet()
            }
            _ => &[],
        }
    }

    fn acts_on_host(&self) -> bool {
        match &self.action {
            StepAction::Provision(_) | StepAction::Deploy(_) | StepAction::Rollback(_) => true,
            _ => self.on == Placement::Host,
        }
    }
}

/// What a step does; the YAML `kind` field selects the variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepAction {
    /// Run a command: the escape hatch for runbook steps without a first-class driver.
    Command(CommandSpec),
    /// Build the release: run a command, then fingerprint the artifact it declares.
    Build(BuildSpec),
    /// Check the running service over HTTP.
    Verify(VerifySpec),
    /// Create what the service needs: database, role, release layout, env file.
    Provision(ProvisionSpec),
    /// Apply a directory of SQL migrations to PostgreSQL.
    Migrate(MigrateSpec),
    /// Run a migration as a Kubernetes Job (`kind: migrate` on a Kubernetes target).
    MigrateJob(super::kube::KubeJob),
    /// Start the version and move traffic to it.
    Deploy(DeploySpec),
    /// Point traffic back at the previous release and stop the current one.
    Rollback(RollbackSpec),
    /// Wait for people to approve.
    Approval(ApprovalSpec),
    /// Wait a while (a durable timer), e.g. to let a new version show its colours.
    Bake(BakeSpec),
    /// Measure the release repeatedly and judge it: pass, fail (roll back), or ask a person.
    Analysis(AnalysisSpec),
}

impl StepAction {
    /// The YAML `kind` of this action.
    pub fn kind(&self) -> StepKind {
        match self {
            StepAction::Command(_) => StepKind::Command,
            StepAction::Build(_) => StepKind::Build,
            StepAction::Verify(_) => StepKind::Verify,
            StepAction::Provision(_) => StepKind::Provision,
            StepAction::Migrate(_) | StepAction::MigrateJob(_) => StepKind::Migrate,
            StepAction::Deploy(_) => StepKind::Deploy,
            StepAction::Rollback(_) => StepKind::Rollback,
            StepAction::Approval(_) => StepKind::Approval,
            StepAction::Bake(_) => StepKind::Bake,
            StepAction::Analysis(_) => StepKind::Analysis,
        }
    }
}

/// A command to run, with its arguments, environment and working directory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandSpec {
    /// The program (looked up on `PATH` when it has no slash).
    pub command: String,
    /// Arguments, passed as they are: no shell is involved.
    #[serde(default)]
    pub args: Vec<String>,
    /// Literal environment variables. Do not put secrets here: they would enter history.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values the worker reads from a secret reference.
    #[serde(default)]
    pub secret_env: BTreeMap<String, SecretRef>,
    /// Working directory; relative paths are relative to the worker's working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

/// A build: a command plus the artifact it must leave behind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildSpec {
    /// How to build.
    #[serde(flatten)]
    pub command: CommandSpec,
    /// Path of the artifact the build produces (relative to `workdir`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
}

/// An HTTP check of the running service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifySpec {
    /// URL to request.
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// Status the response must have.
    pub expect_status: u16,
    /// A substring the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// A JSON pointer whose value must equal the given value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonExpectation>,
    /// Timeout of one HTTP request.
    #[serde(with = "duration_serde")]
    pub request_timeout: Duration,
    /// How many checks must pass in a row.
    pub consecutive: u32,
    /// The window in which `consecutive` checks must pass.
    #[serde(with = "duration_serde")]
    pub within: Duration,
    /// Pause between two checks.
    #[serde(with = "duration_serde")]
    pub interval: Duration,
}

/// A JSON pointer (RFC 6901) and the value it must point at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonExpectation {
    /// e.g. `/version`.
    pub pointer: String,
    /// The expected value.
    pub equals: serde_json::Value,
}

/// A `migrate` step: sqlx-style migrations (`<version>_<name>.sql`, or reversible
/// `.up.sql`/`.down.sql`) applied under an advisory lock, one transaction each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MigrateSpec {
    /// The database's connection string, resolved on the worker.
    pub database_url: SecretRef,
    /// The migrations directory (relative to the worker's working directory).
    pub directory: String,
    /// List what would be applied; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Apply migrations up to and including this version only; with `direction: down`, the
    /// version to revert to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<i64>,
    /// `up` (apply) or `down` (revert to `target_version` with the `.down.sql` files).
    #[serde(default, skip_serializing_if = "Direction::is_up")]
    pub direction: Direction,
}

/// Which way a `migrate` step goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Apply pending migrations.
    #[default]
    Up,
    /// Revert applied migrations newer than the target, newest first.
    Down,
}

impl Direction {
    fn is_up(&self) -> bool {
        *self == Direction::Up
    }
}

/// A `provision` step: everything the service needs before its first deploy. Idempotent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProvisionSpec {
    /// Root of the release layout: `<root>/<service>/{releases/<version>,shared,current}`.
    pub root: String,
    /// The service's PostgreSQL role and database, created if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseProvision>,
    /// Written to `<root>/<service>/shared/env` (mode 0600) from secret references.
    #[serde(default)]
    pub env_file: BTreeMap<String, SecretRef>,
    /// On Kubernetes: the namespace, ServiceAccount, quota and Secrets (`root` is then the
    /// target's `kubernetes://CONTEXT/NAMESPACE` location).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<Box<super::kube::KubeProvision>>,
}

/// The database part of a `provision` step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatabaseProvision {
    /// A connection string with the right to create roles and databases.
    pub admin_url: SecretRef,
    /// Database name.
    pub name: String,
    /// Owning role, created with LOGIN if absent.
    pub owner: String,
    /// The owner's password, set when the role is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_password: Option<SecretRef>,
}

/// How a new version replaces the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Start all new instances beside the old, check them, switch all traffic at once.
    BlueGreen,
    /// Replace instances one at a time.
    Rolling,
    /// Shift traffic in weighted steps, each held for a bake time.
    Canary,
}

/// A `deploy` step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploySpec {
    /// Root of the release layout (as in `provision`).
    pub root: String,
    /// How to replace the running version.
    pub strategy: Strategy,
    /// How to start one instance; it gets `PORT` and the shared env file in its environment.
    pub start: CommandSpec,
    /// Instances to run.
    pub instances: u32,
    /// Instances listen on `base_port ..`; two slots of `instances` ports alternate.
    pub base_port: u16,
    /// The port nginx listens on for the service's traffic.
    pub listen: u16,
    /// The address nginx listens on (`0.0.0.0` behind a load balancer); default 127.0.0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<std::net::IpAddr>,
    /// When an instance is ready for traffic.
    pub health: HealthCheck,
    /// How long the previous version keeps running after the switch.
    #[serde(with = "duration_serde")]
    pub rollback_window: Duration,
    /// Canary weights (percent of traffic to the new version) and how long each is held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canary: Vec<CanaryStep>,
    /// Canary deploys: the analysis run at each weight below 100, before its bake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,
    /// On a fleet: which hosts change together, and what is checked between waves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waves: Option<Box<super::fleet::Waves>>,
    /// On Kubernetes: the manifests, image and rollout settings. The host fields above are
    /// then unused (`root` is the target's `kubernetes://CONTEXT/NAMESPACE` location).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<Box<super::kube::KubeDeploy>>,
}

impl DeploySpec {
    /// Why this deploy cannot run on a target whose fleet is `fleet` (empty: one machine),
    /// with a `target.router` in front of it or not.
    pub fn fleet_problem(&self, fleet: &[String], routed: bool) -> Option<String> {
        match (&self.waves, fleet.is_empty()) {
            (Some(_), true) => {
                Some("`waves` apply to a fleet, and the target lists no `hosts`".to_owned())
            }
            (_, false) if self.strategy == Strategy::Canary && !routed => Some(
                "a canary across a fleet sets traffic weights between hosts at its router, and the target has no `router`"
                    .to_owned(),
            ),
            (Some(w), false) => w.problem(),
            (None, false) => None,
            (None, true) => None,
        }
    }
}

/// One entry of a canary's script: a weight (traffic shifted to it, then held for `bake`), or
/// a gate at the weight reached so far.
///
/// Plans written before gates existed are weights only; their entries serialize exactly as
/// they did (no `gate` key), so recorded rollouts replay unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanaryStep {
    /// Percent of traffic to the new version, 1 to 100. For a gate: the weight in effect
    /// when it runs (0 before the first weight).
    pub weight: u8,
    /// How long to hold the weight (a weight entry), or the `bake` gate's length.
    #[serde(with = "duration_serde")]
    pub bake: Duration,
    /// A gate: the entry holds the traffic where it is until the gate opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<CanaryGate>,
}

impl CanaryStep {
    /// The entry in a few words, for status: `weight 10`, `bake 10m`, `approval (2)`.
    pub fn describe(&self) -> String {
        match &self.gate {
            None if self.bake.is_zero() => format!("weight {}", self.weight),
            None => format!(
                "weight {} for {}",
                self.weight,
                humantime::format_duration(self.bake)
            ),
            Some(CanaryGate::Bake) => format!("bake {}", humantime::format_duration(self.bake)),
            Some(CanaryGate::Pause) => "pause".to_owned(),
            Some(CanaryGate::Analysis(_)) => "analysis".to_owned(),
            Some(CanaryGate::Approval(a)) => format!("approval ({})", a.required),
        }
    }
}

/// What holds a canary between two weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryGate {
    /// A durable wait of the entry's `bake`: `pause` stops its clock, `promote` ends it.
    Bake,
    /// Waits until someone promotes (or aborts).
    Pause,
    /// Measures the release at the weight reached; fails, passes, or asks a person.
    Analysis(Box<AnalysisSpec>),
    /// Waits for distinct people to approve. `promote` never skips it.
    Approval(Box<ApprovalSpec>),
}

/// An instance's readiness check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Path requested on the instance, e.g. `/health`.
    pub path: String,
    /// Status that means healthy.
    pub expect_status: u16,
    /// How long an instance may take to become healthy.
    #[serde(with = "duration_serde")]
    pub timeout: Duration,
    /// Pause between checks.
    #[serde(with = "duration_serde")]
    pub interval: Duration,
    /// How long one check may take before it counts as "no answer" (absent: 2s).
    #[serde(
        default,
        with = "duration_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub request_timeout: Option<Duration>,
}

impl HealthCheck {
    /// How long one request may take.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout.unwrap_or(Duration::from_secs(2))
    }
}

/// A `rollback` step: traffic back to the previous release, current instances stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackSpec {
    /// Root of the release layout (as in `deploy`).
    pub root: String,
}

/// An `approval` step: waits durably for approvals from distinct people.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalSpec {
    /// Distinct approvers needed.
    pub required: u32,
    /// How long to wait; none means until someone decides, however long that takes.
    ///
    /// On the wire this is `approval_timeout`: the step is flattened into [`Step`], whose own
    /// `timeout` would otherwise swallow it, and an approval started through JSON (the CLI,
    /// the receiver, another SDK) would wait forever. Histories recorded before the rename
    /// carry the duplicate key and replay as they ran: without a timeout.
    #[serde(
        default,
        rename = "approval_timeout",
        with = "duration_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// What happens when the timeout passes.
    pub on_timeout: OnTimeout,
    /// Who may approve or refuse: people by name, groups as `group:NAME`. Empty: anyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
}

/// What an approval that timed out does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// Fail the rollout.
    Abort,
    /// Go on without the approvals.
    Continue,
}

/// A `bake` step: a durable wait. `promote` ends it early; `pause` stops its clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BakeSpec {
    /// How long.
    #[serde(with = "duration_serde")]
    pub duration: Duration,
}

/// An analysis: every `interval`, each metric is measured and judged by its condition, until
/// `duration` has passed (or `consecutive_successes` measurements in a row succeeded).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSpec {
    /// Time between two measurements.
    #[serde(with = "duration_serde")]
    pub interval: Duration,
    /// How long the analysis runs: `duration / interval` measurements (at least one).
    #[serde(with = "duration_serde")]
    pub duration: Duration,
    /// Failed measurements tolerated; one more fails the analysis.
    pub failure_limit: u32,
    /// Inconclusive measurements tolerated; one more holds the rollout for a person.
    pub inconclusive_limit: u32,
    /// Pass as soon as this many measurements in a row succeeded (0: run the whole duration).
    pub consecutive_successes: u32,
    /// What is measured.
    pub metrics: Vec<MetricSpec>,
}

impl AnalysisSpec {
    /// Measurements the analysis takes when nothing ends it early.
    pub fn measurements(&self) -> u32 {
        let n = self.duration.as_millis() / self.interval.as_millis().max(1);
        (n as u32).max(1)
    }
}

/// One metric of an analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSpec {
    /// Shown in status with each measurement.
    pub name: String,
    /// Where the value comes from.
    #[serde(flatten)]
    pub source: MetricSource,
    /// When a measurement is a success, e.g. `result[0] < 0.01` (see [`crate::analysis`]).
    pub success_condition: String,
}

/// Where a metric's value comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricSource {
    /// Probes sent by the worker: `success_rate`, `p50_ms`, `p95_ms`, `p99_ms`.
    Http(HttpProbe),
    /// A PromQL instant query: `result[i]` is the i-th sample's value.
    Prometheus(PrometheusQuery),
    /// A SQL query: `result[i]` is the first row's i-th column, as a number.
    Sql(SqlQuery),
}

impl MetricSource {
    /// Named values the source measures, besides `result[i]`.
    pub fn names(&self) -> &'static [&'static str] {
        match self {
            MetricSource::Http(_) => &["success_rate", "p50_ms", "p95_ms", "p99_ms", "errors"],
            MetricSource::Prometheus(_) | MetricSource::Sql(_) => &[],
        }
    }
}

/// HTTP probes: `probes` requests per measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpProbe {
    /// URL probed (no credentials: it enters history).
    pub url: String,
    /// Requests per measurement.
    pub probes: u32,
    /// Status that counts as a success.
    pub expect_status: u16,
    /// Timeout of one request; a timeout counts as a failed probe.
    #[serde(with = "duration_serde")]
    pub request_timeout: Duration,
}

/// A Prometheus instant query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrometheusQuery {
    /// Prometheus' base URL, e.g. `http://127.0.0.1:9090`.
    pub address: String,
    /// The PromQL expression.
    pub query: String,
}

/// A SQL query run on PostgreSQL; its first row's columns are the values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SqlQuery {
    /// The connection string, resolved on the worker.
    pub database_url: SecretRef,
    /// The query; run in a read-only transaction.
    pub query: String,
}

/// Where a secret's value lives. The value itself is read by the worker and never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretRef {
    /// An environment variable of the worker process.
    Env(String),
    /// A file on the worker's machine; trailing newlines are trimmed.
    File(String),
}

/// Retry policy of a step, applied by the workflow so that each attempt shows in `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Delay before the second attempt.
    #[serde(with = "duration_serde")]
    pub initial_interval: Duration,
    /// Each delay is the previous one times this.
    pub backoff_coefficient: f64,
    /// Delays never exceed this.
    #[serde(with = "duration_serde")]
    pub maximum_interval: Duration,
    /// Attempts in all, the first included. `0` means unlimited.
    pub maximum_attempts: u32,
    /// Error kinds that are never retried (in addition to those the activity marks itself).
    #[serde(default)]
    pub non_retryable: Vec<crate::contracts::error_kind::ErrorKind>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            maximum_interval: Duration::from_secs(60),
            maximum_attempts: 3,
            non_retryable: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (1-based) before the next one.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let secs = self.initial_interval.as_secs_f64() * self.backoff_coefficient.powi(exponent);
        let capped = secs.min(self.maximum_interval.as_secs_f64());
        Duration::from_secs_f64(capped.max(0.0))
    }

    /// Whether another attempt may follow attempt number `attempt` (1-based).
    pub fn allows_attempt_after(&self, attempt: u32) -> bool {
        self.maximum_attempts == 0 || attempt < self.maximum_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps() {
        let policy = RetryPolicy {
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            maximum_interval: Duration::from_secs(5),
            maximum_attempts: 10,
            non_retryable: vec![],
        };
        let delays: Vec<u64> = (1..=5).map(|a| policy.delay_after(a).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
        assert!(policy.allows_attempt_after(9));
        assert!(!policy.allows_attempt_after(10));
    }

    #[test]
    fn zero_maximum_attempts_is_unlimited() {
        let policy = RetryPolicy {
            maximum_attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(policy.allows_attempt_after(1_000_000));
    }
}
