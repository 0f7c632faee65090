//! From a YAML tree to a [`Plan`], collecting every problem on the way.
//!
//! The walk never stops at the first problem: a person fixing a plan wants the whole list, in
//! file order, each with a position and a hint. Defaults are filled in here so that
//! `cutover plan show` can print exactly what the workflow will run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::types::{
    ApprovalSpec, BakeSpec, BuildSpec, CanaryStep, CommandSpec, DatabaseProvision, DeploySpec,
    HealthCheck, JsonExpectation, MigrateSpec, OnFailure, OnTimeout, Plan, ProvisionSpec,
    RetryPolicy, RollbackSpec, SecretRef, Step, StepAction, Strategy, Target, VerifySpec,
};
use super::yaml::{self, Node, Value};

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

const KINDS: &[&str] = &[
    "command",
    "build",
    "verify",
    "provision",
    "migrate",
    "deploy",
    "rollback",
    "approval",
    "bake",
];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// Longest duration accepted anywhere in a plan.
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses and validates a plan. Returns the normalized plan, or every problem found.
///
/// # Errors
///
/// [`Diagnostics`] listing each problem with its line, column, path, message and hint.
pub fn parse_plan(text: &str, limits: PlanLimits) -> Result<Plan, Diagnostics> {
    if text.len() > limits.max_bytes {
        return Err(Diagnostics(vec![Diagnostic {
            line: 1,
            column: 1,
            path: String::new(),
            message: format!(
                "the plan is {} bytes; plans are limited to {} bytes",
                text.len(),
                limits.max_bytes
            ),
            hint: Some("split it into several plans".to_owned()),
        }]));
    }
    let root = yaml::read(text).map_err(|d| Diagnostics(vec![d]))?;
    let mut cx = Cx::default();
    let plan = cx.plan(&root, limits);
    if cx.problems.is_empty() {
        plan.ok_or_else(Diagnostics::default)
    } else {
        cx.problems.sort_by_key(|d| (d.line, d.column));
        Err(Diagnostics(cx.problems))
    }
}

#[derive(Default)]
struct Cx {
    problems: Vec<Diagnostic>,
}

/// The entries of one mapping, with bookkeeping of which keys were used.
struct Fields<'a> {
    node: &'a Node,
    path: String,
    entries: BTreeMap<String, (&'a Node, &'a Node)>,
}

impl Cx {
    fn report(&mut self, node: &Node, path: &str, message: impl Into<String>, hint: &str) {
        self.problems.push(Diagnostic {
            line: node.line,
            column: node.column,
            path: path.to_owned(),
            message: message.into(),
            hint: (!hint.is_empty()).then(|| hint.to_owned()),
        });
    }

    /// Opens a mapping; reports duplicates and keys that are not scalars.
    fn fields<'a>(&mut self, node: &'a Node, path: &str) -> Option<Fields<'a>> {
        let Value::Mapping(entries) = &node.value else {
            self.report(
                node,
                path,
                format!(
                    "expected a mapping of keys to values, found {}",
                    node.shape()
                ),
                "write `key: value` pairs, one per line",
            );
            return None;
        };
        let mut map = BTreeMap::new();
        for (key, value) in entries {
            let Value::Scalar { text, .. } = &key.value else {
                self.report(key, path, "a key must be a plain word", "");
                continue;
            };
            if map.insert(text.clone(), (key, value)).is_some() {
                self.report(
                    key,
                    &join(path, text),
                    format!("`{text}` is given twice"),
                    "keep one of them",
                );
            }
        }
        Some(Fields {
            node,
            path: path.to_owned(),
            entries: map,
        })
    }

    /// Reports every key not in `known`, suggesting the closest known one.
    fn unknown_keys(&mut self, fields: &Fields<'_>, known: &[&str]) {
        for (name, (key, _)) in &fields.entries {
            if known.contains(&name.as_str()) {
                continue;
            }
            let hint = match closest(name, known) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("known keys here: {}", known.join(", ")),
            };
            self.report(
                key,
                &join(&fields.path, name),
                format!("unknown key `{name}`"),
                &hint,
            );
        }
    }

    fn required<'a>(&mut self, fields: &Fields<'a>, key: &str, hint: &str) -> Option<&'a Node> {
        let found = fields.get(key);
        if found.is_none() {
            self.report(
                fields.node,
                &fields.path,
                format!("missing required key `{key}`"),
                hint,
            );
        }
        found
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => Some(text.clone()),
            _ => {
                self.report(
                    node,
                    path,
                    format!("expected a string, found {}", node.shape()),
                    "",
                );
                None
            }
        }
    }

    /// A name that ends up in workflow IDs, paths or logs: lowercase letters, digits, `-_.`.
    fn name(&mut self, node: &Node, path: &str, what: &str) -> Option<String> {
        let text = self.string(node, path)?;
        let ok = !text.is_empty()
            && text.len() <= 63
            && text
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !ok {
            self.report(
                node,
                path,
                format!("`{}` is not a valid {what}", truncate(&text)),
                "use 1 to 63 lowercase letters, digits, `-`, `_` or `.`, starting with a letter or digit",
            );
            return None;
        }
        Some(text)
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let text = self.string(node, path)?;
        let hint = "write a duration such as `90s`, `5m` or `1h 30m`";
        if text.trim_start().starts_with('-') {
            self.report(node, path, format!("`{text}` is negative"), hint);
            return None;
        }
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d.is_zero() => {
                self.report(node, path, "a duration of zero is not allowed", hint);
                None
            }
            Ok(d) if d > MAX_DURATION => {
                self.report(
                    node,
                    path,
                    format!("`{text}` is longer than the 30 days allowed"),
                    hint,
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.report(
                    node,
                    path,
                    format!("`{}` is not a duration ({e})", truncate(&text)),
                    hint,
                );
                None
            }
        }
    }

    fn integer(&mut self, node: &Node, path: &str, min: u64, max: u64) -> Option<u64> {
        let text = self.string(node, path)?;
        match text.trim().parse::<i128>() {
            Ok(n) if n >= i128::from(min) && n <= i128::from(max) => u64::try_from(n).ok(),
            Ok(n) => {
                self.report(
                    node,
                    path,
                    format!("{n} is out of range"),
                    &format!("use a whole number from {min} to {max}"),
                );
                None
            }
            Err(_) => {
                self.report(
                    node,
                    path,
                    format!("`{}` is not a whole number", truncate(&text)),
                    &format!("use a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    fn string_list(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                path,
                format!("expected a list, found {}", node.shape()),
                "write `[a, b]` or one `- item` per line",
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            out.push(self.string(item, &format!("{path}[{i}]"))?);
        }
        Some(out)
    }

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
            ],
        );
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
        let defaults = match fields.get("defaults") {
            Some(n) => self.defaults(n),
            None => Some(StepDefaults::default()),
        };
        let steps = self
            .required(&fields, "steps", "list the steps to run under `steps:`")
            .and_then(|n| self.steps(n, defaults.as_ref(), limits));
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
        Some(Plan {
            on_failure: on_failure?,
            service: service?,
            environment: environment?,
            version: version?,
            target: target?,
            steps: steps?,
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
        self.unknown_keys(&fields, &["driver"]);
        let driver = match fields.get("driver") {
            Some(n) => self.string(n, "target.driver")?,
            None => "host".to_owned(),
        };
        match driver.as_str() {
            "host" => Some(Target { driver }),
            "kubernetes" => {
                self.report(
                    fields.get("driver").unwrap_or(node),
                    "target.driver",
                    "the `kubernetes` driver is not available in this version",
                    "use `driver: host`",
                );
                None
            }
            other => {
                self.report(
                    fields.get("driver").unwrap_or(node),
                    "target.driver",
                    format!("unknown driver `{}`", truncate(other)),
                    "use `driver: host`",
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

    fn step(&mut self, node: &Node, path: &str, defaults: &StepDefaults) -> Option<Step> {
        let fields = self.fields(node, path)?;
        let name = self
            .required(&fields, "name", "give the step a name, e.g. `name: build`")
            .and_then(|n| self.name(n, &join(path, "name"), "step name"));
        let kind_node = self.required(
            &fields,
            "kind",
            &format!("choose one of: {}", KINDS.join(", ")),
        );
        let kind = kind_node.and_then(|n| self.string(n, &join(path, "kind")));
        let common = [
            "name",
            "kind",
            "timeout",
            "heartbeat_timeout",
            "retry",
            "point_of_no_return",
        ];
        let specific: &[&str] = match kind.as_deref() {
            Some("command") => &["command", "args", "env", "secret_env", "workdir"],
            Some("build") => &[
                "command",
                "args",
                "env",
                "secret_env",
                "workdir",
                "artifact",
            ],
            Some("verify") => &[
                "url",
                "method",
                "expect_status",
                "body_contains",
                "json",
                "request_timeout",
                "consecutive",
                "within",
                "interval",
            ],
            Some("provision") => &["root", "database", "env_file"],
            Some("migrate") => &["database_url", "directory", "dry_run", "target_version"],
            Some("deploy") => &[
                "root",
                "strategy",
                "start",
                "instances",
                "base_port",
                "listen",
                "health",
                "rollback_window",
                "canary",
            ],
            Some("rollback") => &["root"],
            Some("approval") => &["required", "on_timeout"],
            Some("bake") => &["duration"],
            Some(other) => {
                let hint = match closest(other, KINDS) {
                    Some(best) => format!("did you mean `{best}`? kinds: {}", KINDS.join(", ")),
                    None => format!("choose one of: {}", KINDS.join(", ")),
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
        let known: Vec<&str> = common.iter().chain(specific).copied().collect();
        self.unknown_keys(&fields, &known);

        let timeout_default = defaults.timeout.unwrap_or(match kind.as_deref() {
            Some("build") => Duration::from_secs(30 * 60),
            _ => DEFAULT_TIMEOUT,
        });
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
        let action = match kind.as_deref() {
            Some("command") => self.command(&fields, path).map(StepAction::Command),
            Some("build") => self.build(&fields, path).map(StepAction::Build),
            Some("provision") => self.provision(&fields, path).map(StepAction::Provision),
            Some("migrate") => self.migrate(&fields, path).map(StepAction::Migrate),
            Some("deploy") => self.deploy(&fields, path).map(StepAction::Deploy),
            Some("rollback") => self.rollback(&fields, path).map(StepAction::Rollback),
            Some("approval") => self.approval(&fields, path).map(StepAction::Approval),
            Some("bake") => self
                .required(&fields, "duration", "say how long, e.g. `duration: 10m`")
                .and_then(|n| self.duration(n, &join(path, "duration")))
                .map(|duration| StepAction::Bake(BakeSpec { duration })),
            _ => self.verify(&fields, path).map(StepAction::Verify),
        };
        let point_of_no_return = match fields.get("point_of_no_return") {
            Some(n) => self.boolean(n, &join(path, "point_of_no_return")),
            None => Some(false),
        };
        let (timeout, heartbeat_timeout) = (timeout?, heartbeat_timeout?);
        Some(Step {
            point_of_no_return: point_of_no_return?,
            name: name?,
            timeout,
            heartbeat_timeout: heartbeat_timeout.min(timeout),
            retry: retry?,
            action: action?,
        })
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
                Some(list) => policy.non_retryable = list,
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

    fn command(&mut self, fields: &Fields<'_>, path: &str) -> Option<CommandSpec> {
        let command = self
            .required(
                fields,
                "command",
                "name the program to run, e.g. `command: make`",
            )
            .and_then(|n| self.string(n, &join(path, "command")));
        if let (Some(c), Some(n)) = (&command, fields.get("command"))
            && c.trim().is_empty()
        {
            self.report(
                n,
                &join(path, "command"),
                "the command is empty",
                "name the program to run",
            );
            return None;
        }
        let args = match fields.get("args") {
            Some(n) => self.string_list(n, &join(path, "args")),
            None => Some(Vec::new()),
        };
        let env = match fields.get("env") {
            Some(n) => self.env(n, &join(path, "env")),
            None => Some(BTreeMap::new()),
        };
        let secret_env = match fields.get("secret_env") {
            Some(n) => self.secret_env(n, &join(path, "secret_env")),
            None => Some(BTreeMap::new()),
        };
        let workdir = match fields.get("workdir") {
            Some(n) => self.string(n, &join(path, "workdir")).map(Some),
            None => Some(None),
        };
        Some(CommandSpec {
            command: command?,
            args: args?,
            env: env?,
            secret_env: secret_env?,
            workdir: workdir?,
        })
    }

    fn build(&mut self, fields: &Fields<'_>, path: &str) -> Option<BuildSpec> {
        let command = self.command(fields, path);
        let artifact = match fields.get("artifact") {
            Some(n) => self.string(n, &join(path, "artifact")).map(Some),
            None => Some(None),
        };
        Some(BuildSpec {
            command: command?,
            artifact: artifact?,
        })
    }

    fn env(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let fields = self.fields(node, path)?;
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (name, (key, value)) in &fields.entries {
            let p = join(path, name);
            if !valid_env_name(name) {
                self.report(
                    key,
                    &p,
                    format!("`{}` is not a valid variable name", truncate(name)),
                    "use letters, digits and `_`, not starting with a digit",
                );
                ok = false;
            }
            match self.string(value, &p) {
                Some(v) => {
                    out.insert(name.clone(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn secret_env(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, SecretRef>> {
        let fields = self.fields(node, path)?;
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (name, (key, value)) in &fields.entries {
            let p = join(path, name);
            if !valid_env_name(name) {
                self.report(
                    key,
                    &p,
                    format!("`{}` is not a valid variable name", truncate(name)),
                    "use letters, digits and `_`, not starting with a digit",
                );
                ok = false;
            }
            match self.secret_ref(value, &p) {
                Some(s) => {
                    out.insert(name.clone(), s);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn verify(&mut self, fields: &Fields<'_>, path: &str) -> Option<VerifySpec> {
        let url = self
            .required(
                fields,
                "url",
                "give the URL to check, e.g. `url: http://127.0.0.1:8080/health`",
            )
            .and_then(|n| {
                let url = self.string(n, &join(path, "url"))?;
                let lower = url.to_ascii_lowercase();
                let rest = lower
                    .strip_prefix("http://")
                    .or_else(|| lower.strip_prefix("https://"));
                if rest.is_none_or(|r| r.is_empty() || r.starts_with('/'))
                    || url.len() > 2048
                    || url.chars().any(char::is_whitespace)
                {
                    self.report(
                        n,
                        &join(path, "url"),
                        format!("`{}` is not an http(s) URL", truncate(&url)),
                        "write a URL such as `http://127.0.0.1:8080/health`",
                    );
                    return None;
                }
                let authority = rest.unwrap_or_default().split(['/', '?', '#']).next().unwrap_or_default();
                if authority.contains('@') {
                    self.report(n, &join(path, "url"), "the URL carries credentials, which would be stored in workflow history and logs", "remove `user:password@`; checks should use an endpoint that needs no secret");
                    return None;
                }
                Some(url)
            });
        let method = match fields.get("method") {
            Some(n) => self.string(n, &join(path, "method")).and_then(|m| {
                let upper = m.to_ascii_uppercase();
                if METHODS.contains(&upper.as_str()) {
                    Some(upper)
                } else {
                    self.report(
                        n,
                        &join(path, "method"),
                        format!("unknown HTTP method `{}`", truncate(&m)),
                        &format!("use one of: {}", METHODS.join(", ")),
                    );
                    None
                }
            }),
            None => Some("GET".to_owned()),
        };
        let expect_status = match fields.get("expect_status") {
            Some(n) => self
                .integer(n, &join(path, "expect_status"), 100, 599)
                .map(|s| s as u16),
            None => Some(200),
        };
        let body_contains = match fields.get("body_contains") {
            Some(n) => self.string(n, &join(path, "body_contains")).map(Some),
            None => Some(None),
        };
        let json = match fields.get("json") {
            Some(n) => self.json_expectation(n, &join(path, "json")).map(Some),
            None => Some(None),
        };
        let request_timeout = match fields.get("request_timeout") {
            Some(n) => self.duration(n, &join(path, "request_timeout")),
            None => Some(Duration::from_secs(5)),
        };
        let consecutive = match fields.get("consecutive") {
            Some(n) => self
                .integer(n, &join(path, "consecutive"), 1, 10_000)
                .map(|c| c as u32),
            None => Some(1),
        };
        let within = match fields.get("within") {
            Some(n) => self.duration(n, &join(path, "within")),
            None => Some(Duration::from_secs(60)),
        };
        let interval = match fields.get("interval") {
            Some(n) => self.duration(n, &join(path, "interval")),
            None => Some(Duration::from_secs(1)),
        };
        Some(VerifySpec {
            url: url?,
            method: method?,
            expect_status: expect_status?,
            body_contains: body_contains?,
            json: json?,
            request_timeout: request_timeout?,
            consecutive: consecutive?,
            within: within?,
            interval: interval?,
        })
    }

    /// `{ env: VAR }` or `{ file: /path }`.
    fn secret_ref(&mut self, node: &Node, path: &str) -> Option<SecretRef> {
        let hint = "write `{ env: VAR }` or `{ file: /path/to/secret }`";
        let reference = self.fields(node, path)?;
        self.unknown_keys(&reference, &["env", "file"]);
        match (reference.get("env"), reference.get("file")) {
            (Some(n), None) => self.string(n, &join(path, "env")).map(SecretRef::Env),
            (None, Some(n)) => self.string(n, &join(path, "file")).map(SecretRef::File),
            _ => {
                self.report(
                    node,
                    path,
                    "a secret reference needs exactly one of `env` or `file`",
                    hint,
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match self.string(node, path)?.as_str() {
            "true" | "True" | "TRUE" | "yes" => Some(true),
            "false" | "False" | "FALSE" | "no" => Some(false),
            other => {
                self.report(
                    node,
                    path,
                    format!("`{}` is not true or false", truncate(other)),
                    "write `true` or `false`",
                );
                None
            }
        }
    }

    /// A filesystem path that must not be empty.
    fn path_value(
        &mut self,
        fields: &Fields<'_>,
        key: &str,
        path: &str,
        hint: &str,
    ) -> Option<String> {
        let node = self.required(fields, key, hint)?;
        let text = self.string(node, &join(path, key))?;
        if text.trim().is_empty() {
            self.report(node, &join(path, key), "the path is empty", hint);
            return None;
        }
        Some(text)
    }

    /// A duration where zero is allowed (e.g. no rollback window).
    fn duration_or_zero(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let text = self.string(node, path)?;
        if matches!(text.trim(), "0" | "0s" | "0ms") {
            return Some(Duration::ZERO);
        }
        self.duration(node, path)
    }

    fn provision(&mut self, fields: &Fields<'_>, path: &str) -> Option<ProvisionSpec> {
        let root = self.path_value(
            fields,
            "root",
            path,
            "give the release root, e.g. `root: /srv/releases`",
        );
        let database = match fields.get("database") {
            Some(n) => self.database(n, &join(path, "database")).map(Some),
            None => Some(None),
        };
        let env_file = match fields.get("env_file") {
            Some(n) => self.secret_env(n, &join(path, "env_file")),
            None => Some(BTreeMap::new()),
        };
        Some(ProvisionSpec {
            root: root?,
            database: database?,
            env_file: env_file?,
        })
    }

    fn database(&mut self, node: &Node, path: &str) -> Option<DatabaseProvision> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(&fields, &["admin_url", "name", "owner", "owner_password"]);
        let admin_url = self
            .required(
                &fields,
                "admin_url",
                "reference a superuser connection string, e.g. `admin_url: { env: PG_ADMIN_URL }`",
            )
            .and_then(|n| self.secret_ref(n, &join(path, "admin_url")));
        let name = self
            .required(&fields, "name", "name the database")
            .and_then(|n| self.sql_identifier(n, &join(path, "name")));
        let owner = self
            .required(&fields, "owner", "name the owning role")
            .and_then(|n| self.sql_identifier(n, &join(path, "owner")));
        let owner_password = match fields.get("owner_password") {
            Some(n) => self.secret_ref(n, &join(path, "owner_password")).map(Some),
            None => Some(None),
        };
        Some(DatabaseProvision {
            admin_url: admin_url?,
            name: name?,
            owner: owner?,
            owner_password: owner_password?,
        })
    }

    /// Database and role names: plain lowercase identifiers, so no quoting surprises.
    fn sql_identifier(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.string(node, path)?;
        let ok = !text.is_empty()
            && text.len() <= 63
            && text.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            self.report(
                node,
                path,
                format!("`{}` is not a plain SQL identifier", truncate(&text)),
                "use 1 to 63 lowercase letters, digits and `_`, starting with a letter or `_`",
            );
            return None;
        }
        Some(text)
    }

    fn migrate(&mut self, fields: &Fields<'_>, path: &str) -> Option<MigrateSpec> {
        let database_url = self
            .required(
                fields,
                "database_url",
                "reference the connection string, e.g. `database_url: { env: DATABASE_URL }`",
            )
            .and_then(|n| self.secret_ref(n, &join(path, "database_url")));
        let directory = self.path_value(
            fields,
            "directory",
            path,
            "give the migrations directory, e.g. `directory: migrations`",
        );
        let dry_run = match fields.get("dry_run") {
            Some(n) => self.boolean(n, &join(path, "dry_run")),
            None => Some(false),
        };
        let target_version = match fields.get("target_version") {
            Some(n) => self
                .integer(n, &join(path, "target_version"), 0, i64::MAX as u64)
                .map(|v| Some(v as i64)),
            None => Some(None),
        };
        Some(MigrateSpec {
            database_url: database_url?,
            directory: directory?,
            dry_run: dry_run?,
            target_version: target_version?,
        })
    }

    fn deploy(&mut self, fields: &Fields<'_>, path: &str) -> Option<DeploySpec> {
        let root = self.path_value(
            fields,
            "root",
            path,
            "give the release root, e.g. `root: /srv/releases`",
        );
        let strategy_node = self.required(
            fields,
            "strategy",
            "choose `blue-green`, `rolling` or `canary`",
        );
        let strategy =
            strategy_node.and_then(
                |n| match self.string(n, &join(path, "strategy"))?.as_str() {
                    "blue-green" => Some(Strategy::BlueGreen),
                    "rolling" => Some(Strategy::Rolling),
                    "canary" => Some(Strategy::Canary),
                    other => {
                        self.report(
                            n,
                            &join(path, "strategy"),
                            format!("unknown strategy `{}`", truncate(other)),
                            "choose `blue-green`, `rolling` or `canary`",
                        );
                        None
                    }
                },
            );
        let start = self
            .required(
                fields,
                "start",
                "say how to start an instance, e.g. `start: { command: target/release/app }`",
            )
            .and_then(|n| {
                let p = join(path, "start");
                let start = self.fields(n, &p)?;
                self.unknown_keys(&start, &["command", "args", "env", "secret_env", "workdir"]);
                self.command(&start, &p)
            });
        let instances = match fields.get("instances") {
            Some(n) => self
                .integer(n, &join(path, "instances"), 1, 32)
                .map(|v| v as u32),
            None => Some(1),
        };
        let base_port = self
            .required(
                fields,
                "base_port",
                "give the first instance port, e.g. `base_port: 18100`",
            )
            .and_then(|n| {
                self.integer(n, &join(path, "base_port"), 1024, 65_000)
                    .map(|v| v as u16)
            });
        let listen = self
            .required(
                fields,
                "listen",
                "give the port nginx listens on, e.g. `listen: 18080`",
            )
            .and_then(|n| {
                self.integer(n, &join(path, "listen"), 1024, 65_535)
                    .map(|v| v as u16)
            });
        let health = match fields.get("health") {
            Some(n) => self.health(n, &join(path, "health")),
            None => Some(HealthCheck {
                path: "/health".to_owned(),
                expect_status: 200,
                timeout: Duration::from_secs(30),
                interval: Duration::from_millis(200),
            }),
        };
        let rollback_window = match fields.get("rollback_window") {
            Some(n) => self.duration_or_zero(n, &join(path, "rollback_window")),
            None => Some(Duration::from_secs(30)),
        };
        let canary = match fields.get("canary") {
            Some(n) => self.canary(n, &join(path, "canary")),
            None => Some(Vec::new()),
        };
        if let (Some(strategy), Some(canary)) = (strategy, &canary) {
            let node = fields
                .get("canary")
                .or(strategy_node)
                .unwrap_or(fields.node);
            if strategy == Strategy::Canary && canary.is_empty() {
                self.report(node, &join(path, "canary"), "a canary deploy needs its weights", "add e.g. `canary: [{ weight: 10, bake: 5m }, { weight: 50, bake: 5m }, { weight: 100 }]`");
                return None;
            }
            if strategy != Strategy::Canary && !canary.is_empty() {
                self.report(
                    node,
                    &join(path, "canary"),
                    "`canary` only applies to `strategy: canary`",
                    "remove it, or use `strategy: canary`",
                );
                return None;
            }
        }
        if let (Some(base), Some(listen), Some(n)) = (base_port, listen, instances) {
            let last = u32::from(base) + 2 * n - 1;
            if last > 65_535 {
                self.report(
                    fields.node,
                    &join(path, "base_port"),
                    format!("instances need ports {base}..={last}, past 65535"),
                    "lower base_port",
                );
                return None;
            }
            if (u32::from(base)..=last).contains(&u32::from(listen)) {
                self.report(
                    fields.get("listen").unwrap_or(fields.node),
                    &join(path, "listen"),
                    format!("port {listen} is inside the instance ports {base}..={last}"),
                    "pick a listen port outside base_port .. base_port + 2 × instances",
                );
                return None;
            }
        }
        Some(DeploySpec {
            root: root?,
            strategy: strategy?,
            start: start?,
            instances: instances?,
            base_port: base_port?,
            listen: listen?,
            health: health?,
            rollback_window: rollback_window?,
            canary: canary?,
        })
    }

    fn health(&mut self, node: &Node, path: &str) -> Option<HealthCheck> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(&fields, &["path", "expect_status", "timeout", "interval"]);
        let check_path = match fields.get("path") {
            Some(n) => self.string(n, &join(path, "path")).and_then(|p| {
                if p.starts_with('/') && !p.chars().any(char::is_whitespace) {
                    Some(p)
                } else {
                    self.report(
                        n,
                        &join(path, "path"),
                        format!("`{}` is not a URL path", truncate(&p)),
                        "start it with `/`, e.g. `/health`",
                    );
                    None
                }
            }),
            None => Some("/health".to_owned()),
        };
        let expect_status = match fields.get("expect_status") {
            Some(n) => self
                .integer(n, &join(path, "expect_status"), 100, 599)
                .map(|v| v as u16),
            None => Some(200),
        };
        let timeout = match fields.get("timeout") {
            Some(n) => self.duration(n, &join(path, "timeout")),
            None => Some(Duration::from_secs(30)),
        };
        let interval = match fields.get("interval") {
            Some(n) => self.duration(n, &join(path, "interval")),
            None => Some(Duration::from_millis(200)),
        };
        Some(HealthCheck {
            path: check_path?,
            expect_status: expect_status?,
            timeout: timeout?,
            interval: interval?,
        })
    }

    fn canary(&mut self, node: &Node, path: &str) -> Option<Vec<CanaryStep>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                path,
                format!("expected a list of canary steps, found {}", node.shape()),
                "write `- { weight: 10, bake: 5m }` per step",
            );
            return None;
        };
        let mut steps: Vec<CanaryStep> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let Some(fields) = self.fields(item, &p) else {
                ok = false;
                continue;
            };
            self.unknown_keys(&fields, &["weight", "bake"]);
            let weight = self
                .required(&fields, "weight", "give the percent of traffic, 1 to 100")
                .and_then(|n| {
                    self.integer(n, &join(&p, "weight"), 1, 100)
                        .map(|v| v as u8)
                });
            let bake = match fields.get("bake") {
                Some(n) => self.duration_or_zero(n, &join(&p, "bake")),
                None => Some(Duration::ZERO),
            };
            match (weight, bake) {
                (Some(weight), Some(bake)) => {
                    if steps.last().is_some_and(|s| s.weight >= weight) {
                        self.report(
                            item,
                            &join(&p, "weight"),
                            "canary weights must increase",
                            "order the steps from the smallest weight to 100",
                        );
                        ok = false;
                    }
                    steps.push(CanaryStep { weight, bake });
                }
                _ => ok = false,
            }
        }
        if ok && steps.last().is_some_and(|s| s.weight != 100) {
            self.report(
                node,
                path,
                "the last canary step must send 100% of traffic",
                "end with `{ weight: 100 }`",
            );
            ok = false;
        }
        ok.then_some(steps)
    }

    /// An approval's `timeout` is how long to wait for people (absent: forever), not an
    /// activity timeout, so it is read here rather than as the step's.
    fn approval(&mut self, fields: &Fields<'_>, path: &str) -> Option<ApprovalSpec> {
        let required = match fields.get("required") {
            Some(n) => self
                .integer(n, &join(path, "required"), 1, 20)
                .map(|v| v as u32),
            None => Some(1),
        };
        let timeout = match fields.get("timeout") {
            Some(n) => self.duration(n, &join(path, "timeout")).map(Some),
            None => Some(None),
        };
        let on_timeout = match fields.get("on_timeout") {
            Some(n) => match self.string(n, &join(path, "on_timeout")).as_deref() {
                Some("abort") => Some(OnTimeout::Abort),
                Some("continue") => Some(OnTimeout::Continue),
                Some(other) => {
                    self.report(
                        n,
                        &join(path, "on_timeout"),
                        format!("unknown on_timeout `{}`", truncate(other)),
                        "use `abort` or `continue`",
                    );
                    None
                }
                None => None,
            },
            None => Some(OnTimeout::Abort),
        };
        Some(ApprovalSpec {
            required: required?,
            timeout: timeout?,
            on_timeout: on_timeout?,
        })
    }

    fn rollback(&mut self, fields: &Fields<'_>, path: &str) -> Option<RollbackSpec> {
        let root = self.path_value(
            fields,
            "root",
            path,
            "give the release root used by the deploy",
        );
        Some(RollbackSpec { root: root? })
    }

    fn json_expectation(&mut self, node: &Node, path: &str) -> Option<JsonExpectation> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(&fields, &["pointer", "equals"]);
        let pointer = self
            .required(
                &fields,
                "pointer",
                "give a JSON pointer, e.g. `pointer: /version`",
            )
            .and_then(|n| {
                let p = self.string(n, &join(path, "pointer"))?;
                if !p.is_empty() && !p.starts_with('/') {
                    self.report(
                        n,
                        &join(path, "pointer"),
                        format!("`{}` is not a JSON pointer", truncate(&p)),
                        "JSON pointers start with `/`, e.g. `/status/ready`",
                    );
                    return None;
                }
                Some(p)
            });
        let equals = self
            .required(&fields, "equals", "give the value expected at the pointer")
            .map(to_json);
        Some(JsonExpectation {
            pointer: pointer?,
            equals: equals?,
        })
    }
}

impl<'a> Fields<'a> {
    /// The value of `key`; an explicit `null` counts as absent, so defaults apply.
    fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .get(key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_null())
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

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

/// Converts a YAML value into JSON, resolving plain scalars the YAML 1.2 core way.
fn to_json(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Scalar { text, plain: false } => serde_json::Value::String(text.clone()),
        Value::Scalar { text, .. } if node.is_null() => {
            let _ = text;
            serde_json::Value::Null
        }
        Value::Scalar { text, .. } => match text.as_str() {
            "true" | "True" | "TRUE" => serde_json::Value::Bool(true),
            "false" | "False" | "FALSE" => serde_json::Value::Bool(false),
            t => t
                .parse::<i64>()
                .map(serde_json::Value::from)
                .or_else(|_| t.parse::<f64>().map(serde_json::Value::from))
                .unwrap_or_else(|_| serde_json::Value::String(t.to_owned())),
        },
        Value::Sequence(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Mapping(entries) => serde_json::Value::Object(
            entries
                .iter()
                .filter_map(|(k, v)| match &k.value {
                    Value::Scalar { text, .. } => Some((text.clone(), to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Keeps echoed user input short in messages.
fn truncate(text: &str) -> String {
    const MAX: usize = 60;
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if clean.chars().count() > MAX {
        format!("{}…", clean.chars().take(MAX).collect::<String>())
    } else {
        clean
    }
}

/// The known word closest to `word`, if it is close enough to be a likely typo.
fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
