//! Plans for tests, built fluently and parsed by the real parser (so a test plan is a valid
//! plan, with the parser's defaults), instead of YAML inside `format!`.
//!
//! ```ignore
//! let plan = PlanBuilder::new("shop")
//!     .step(StepBuilder::command("migrate"))
//!     .step(StepBuilder::approval("gate").set("timeout", "1s").set("on_timeout", "abort"))
//!     .on_failure("rollback");
//! ```

use cutover_workflows::plan::Plan;

/// A rollout plan under construction.
#[derive(Clone, Debug)]
pub struct PlanBuilder {
    service: String,
    environment: String,
    version: String,
    on_failure: Option<String>,
    notify: Vec<String>,
    steps: Vec<StepBuilder>,
}

impl PlanBuilder {
    /// A plan of `service` to `test`, version `2`, with no steps yet.
    pub fn new(service: &str) -> Self {
        Self {
            service: service.to_owned(),
            environment: "test".to_owned(),
            version: "2".to_owned(),
            on_failure: None,
            notify: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// Another environment.
    pub fn environment(mut self, environment: &str) -> Self {
        self.environment = environment.to_owned();
        self
    }

    /// `on_failure: fail | rollback | pause`.
    pub fn on_failure(mut self, on_failure: &str) -> Self {
        self.on_failure = Some(on_failure.to_owned());
        self
    }

    /// Adds a notifier, as the flow mapping of one `notify:` entry
    /// (`{ name: team, slack: { env: X } }`). The in-process fake sends nothing.
    pub fn notify(mut self, entry: &str) -> Self {
        self.notify.push(entry.to_owned());
        self
    }

    /// Appends a step.
    pub fn step(mut self, step: StepBuilder) -> Self {
        self.steps.push(step);
        self
    }

    /// The service and environment.
    pub fn names(&self) -> (String, String) {
        (self.service.clone(), self.environment.clone())
    }

    /// The rollout's workflow ID.
    pub fn workflow_id(&self) -> String {
        cutover_workflows::rollout_workflow_id(&self.service, &self.environment)
    }

    /// The plan as YAML.
    pub fn yaml(&self) -> String {
        let mut text = format!(
            "service: {}\nenvironment: {}\nversion: \"{}\"\n",
            self.service, self.environment, self.version
        );
        if let Some(f) = &self.on_failure {
            text.push_str(&format!("on_failure: {f}\n"));
        }
        if !self.notify.is_empty() {
            text.push_str("notify:\n");
            for entry in &self.notify {
                text.push_str(&format!("  - {entry}\n"));
            }
        }
        text.push_str("steps:\n");
        for step in &self.steps {
            text.push_str(&step.yaml());
        }
        text
    }

    /// The parsed plan; an invalid one panics with the parser's diagnostics (a broken test).
    pub fn build(&self) -> Plan {
        crate::plan(&self.yaml())
    }
}

/// One step under construction: a name, a kind and its fields as YAML scalars.
#[derive(Clone, Debug)]
pub struct StepBuilder {
    fields: Vec<(String, String)>,
}

impl StepBuilder {
    /// A step of `kind` named `name`.
    pub fn new(kind: &str, name: &str) -> Self {
        Self {
            fields: vec![
                ("name".to_owned(), name.to_owned()),
                ("kind".to_owned(), kind.to_owned()),
            ],
        }
    }

    /// `kind: command` running `true`.
    pub fn command(name: &str) -> Self {
        Self::new("command", name).set("command", "\"true\"")
    }

    /// `kind: approval` needing one approval.
    pub fn approval(name: &str) -> Self {
        Self::new("approval", name)
    }

    /// `kind: bake` of `duration`.
    pub fn bake(name: &str, duration: &str) -> Self {
        Self::new("bake", name).set("duration", duration)
    }

    /// `kind: deploy` of a one-instance service on the host driver, blue-green.
    pub fn deploy(name: &str) -> Self {
        Self::new("deploy", name)
            .set("root", ".cutover/releases")
            .set("strategy", "blue-green")
            .set("start", "{ command: ./app }")
            .set("instances", "1")
            .set("base_port", "18100")
            .set("listen", "18080")
    }

    /// Sets (or replaces) a field; `value` is YAML (flow style for maps and lists).
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.fields.retain(|(k, _)| k != key);
        self.fields.push((key.to_owned(), value.to_owned()));
        self
    }

    fn yaml(&self) -> String {
        let mut text = String::new();
        for (i, (k, v)) in self.fields.iter().enumerate() {
            text.push_str(if i == 0 { "  - " } else { "    " });
            text.push_str(&format!("{k}: {v}\n"));
        }
        text
    }
}
