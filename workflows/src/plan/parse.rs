//! From a YAML tree to a [`Plan`], collecting every problem on the way.
//!
//! The walk never stops at the first problem: a person fixing a plan wants the whole list, in
//! file order, each with a position and a hint. Defaults are filled in here so that
//! `cutover plan show` can print exactly what the workflow will run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::types::{BakeSpec, OnFailure, Plan, RetryPolicy, SecretRef, Step, StepAction, Target};
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
    "analysis",
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

/// What kind of YAML document is parsed, for the size check and its message.
struct Document {
    /// "plan", "rules file", "drill plan".
    what: &'static str,
    max_bytes: usize,
    /// What to do about an oversized one.
    hint: &'static str,
}

/// The shared frame of every document Cutover reads: the size limit, YAML with positions, and
/// `read`'s problems sorted by position — all of them, or the value.
fn parse_document<T>(
    text: &str,
    doc: Document,
    read: impl FnOnce(&mut Cx, &Node) -> Option<T>,
) -> Result<T, Diagnostics> {
    if text.len() > doc.max_bytes {
        return Err(Diagnostics(vec![Diagnostic {
            line: 1,
            column: 1,
            path: String::new(),
            message: format!(
                "the {what} is {} bytes; {what}s are limited to {} bytes",
                text.len(),
                doc.max_bytes,
                what = doc.what,
            ),
            hint: Some(doc.hint.to_owned()),
        }]));
    }
    let root = yaml::read(text).map_err(|d| Diagnostics(vec![d]))?;
    let mut cx = Cx::default();
    let value = read(&mut cx, &root);
    if cx.problems.is_empty() {
        value.ok_or_else(Diagnostics::default)
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
                "analysis",
            ],
            Some("rollback") => &["root"],
            Some("approval") => &["required", "on_timeout"],
            Some("bake") => &["duration"],
            Some("analysis") => analysis::ANALYSIS_KEYS,
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
            Some("analysis") => self.analysis(&fields, path).map(StepAction::Analysis),
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

mod analysis;
mod drill;
mod process;
mod target;
mod triggers;

pub use drill::parse_drill;
pub use triggers::parse_triggers;

#[cfg(test)]
mod tests;
