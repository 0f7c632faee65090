//! A service released by the tests on this host: plans of the example service, helpers that
//! start a rollout and wait for its end.

use temporalio_client::errors::WorkflowGetResultError;

use crate::host::port_block;
use crate::{Harness, bin, outcome};
use cutover_workflows::status::RolloutState;

/// A service's place on this host: release root, instance ports, nginx port.
pub struct Site {
    /// Release root.
    pub root: String,
    /// First instance port.
    pub base: u16,
    /// nginx's port.
    pub listen: u16,
}

impl Site {
    /// A free block of ports and a release root under the harness' directory.
    pub fn new(h: &Harness) -> anyhow::Result<Self> {
        let (base, listen) = port_block(4)?;
        Ok(Self {
            root: h.dir.path().join("releases").display().to_string(),
            base,
            listen,
        })
    }

    /// A plan with one deploy step of `version`; `extra` is appended to the step.
    pub fn plan(&self, service: &str, version: &str, strategy: &str, extra: &str) -> String {
        format!(
            "service: {service}\nenvironment: test\nversion: \"{version}\"\nsteps:\n  - name: deploy\n    kind: deploy\n    root: \"{root}\"\n    strategy: {strategy}\n    start: {{ command: \"{bin}\" }}\n    instances: 2\n    base_port: {base}\n    listen: {listen}\n    health: {{ timeout: 15s, interval: 100ms }}\n    retry: {{ initial_interval: 200ms, maximum_attempts: 1 }}\n{extra}",
            root = self.root,
            bin = bin("hello-service").display(),
            base = self.base,
            listen = self.listen,
        )
    }

    /// `/version` through nginx.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/version", self.listen)
    }

    /// Every instance port (both slots), as Prometheus scrape targets.
    pub fn targets(&self) -> Vec<String> {
        (self.base..self.base + 4)
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// The version nginx serves now.
    pub async fn serving(&self) -> anyhow::Result<String> {
        let body = reqwest::get(self.url()).await?.text().await?;
        let v: serde_json::Value = serde_json::from_str(&body)?;
        Ok(v["version"].as_str().unwrap_or_default().to_owned())
    }
}

/// Starts `plan` and fails unless it succeeds.
pub async fn succeed(h: &Harness, plan: &str) -> anyhow::Result<()> {
    let id = h.start_rollout(plan).await?;
    let summary = outcome(h.client(), &id)
        .await
        .map_err(|e| anyhow::anyhow!("{id}: {e:?}\nworker log:\n{}", h.worker.log_text()))?;
    anyhow::ensure!(summary.outcome == RolloutState::Succeeded, "{summary:?}");
    Ok(())
}

/// The example service's migrations.
pub fn migrations_dir() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/hello-service/migrations")
        .display()
        .to_string()
}

/// A migrate step against `url_file`, up to `target` (all when `None`).
pub fn migrate_step(url_file: &std::path::Path, target: Option<i64>, extra: &str) -> String {
    format!(
        "  - name: migrate\n    kind: migrate\n    database_url: {{ file: \"{}\" }}\n    directory: \"{}\"\n{}{extra}",
        url_file.display(),
        migrations_dir(),
        target
            .map(|t| format!("    target_version: {t}\n"))
            .unwrap_or_default()
    )
}

/// `plan` with `before` inserted as the first steps.
pub fn with_steps_before(plan: &str, before: &str) -> String {
    plan.replacen("steps:\n", &format!("steps:\n{before}"), 1)
}

/// The failure message of a rollout that must end unsuccessfully.
pub async fn rollout_failure(h: &Harness, id: &str) -> String {
    match outcome(h.client(), id).await {
        Err(WorkflowGetResultError::Failed(f)) => f.failure().message.clone(),
        other => panic!("{id} should end unsuccessfully, got {other:?}"),
    }
}
