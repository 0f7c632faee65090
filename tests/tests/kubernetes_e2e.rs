//! The Kubernetes driver against a real cluster with real kubelets (kind, k3d, a cloud
//! cluster), when `CUTOVER_E2E_KUBECONFIG` names its kubeconfig. Without it every test here
//! says it was skipped and passes: this machine has no container runtime, so
//! `tests/kubernetes.rs` covers the same scenarios against a control plane built from source.
//!
//! Pods run `registry.k8s.io/pause` (tags 3.9 and 3.10 are the versions), so the suite needs
//! nothing but a cluster that can pull from registry.k8s.io. Each test works in a namespace of
//! its own, deleted at the end.
//!
//! ```text
//! CUTOVER_E2E_KUBECONFIG=$HOME/.kube/config cargo test -p cutover-tests --test kubernetes_e2e
//! ```

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cutover_tests::{DevServer, WorkerProcess, bin, cutover, outcome, status, unique_queue};
use cutover_workflows::status::RolloutState;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const IMAGE: &str = "registry.k8s.io/pause";

fn kubeconfig() -> Option<PathBuf> {
    match std::env::var_os("CUTOVER_E2E_KUBECONFIG") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            // Written to the process's stderr directly, past the test harness's capture, so
            // the skip shows in every run's output.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED kubernetes_e2e: CUTOVER_E2E_KUBECONFIG is not set; set it to a real cluster's kubeconfig (kind, k3d) to run the end-to-end suite"
            );
            None
        }
    }
}

struct E2e {
    server: DevServer,
    dir: tempfile::TempDir,
    queue: String,
    _worker: WorkerProcess,
    client: Client,
    namespace: String,
}

impl E2e {
    async fn start(kubeconfig: &PathBuf, name: &str) -> anyhow::Result<Self> {
        let client = cutover_tests::kube::client_from(kubeconfig).await?;
        let namespace = format!("cutover-e2e-{name}-{}", std::process::id());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}}))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        let server = DevServer::start().await?;
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("app.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 2\n  selector:\n    matchLabels: { app: app }\n  template:\n    metadata:\n      labels: { app: app }\n    spec:\n      containers:\n        - name: pause\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: app\nspec:\n  selector: { app: app }\n  ports: [{ port: 80 }]\n",
        )?;
        let queue = unique_queue("e2e");
        let mut command = Command::new(bin("cutover-worker"));
        command
            .args(["--address", &server.address, "--task-queue", &queue])
            .env("KUBECONFIG", kubeconfig);
        let worker = WorkerProcess::spawn_command(command, dir.path())?;
        Ok(Self {
            server,
            dir,
            queue,
            _worker: worker,
            client,
            namespace,
        })
    }

    async fn run(&self, version: &str, strategy: &str) -> anyhow::Result<RolloutState> {
        self.run_with(version, strategy, "").await
    }

    /// Like `run`, with more lines for the deploy step.
    async fn run_with(
        &self,
        version: &str,
        strategy: &str,
        extra: &str,
    ) -> anyhow::Result<RolloutState> {
        let plan = format!(
            "service: app\nenvironment: e2e\nversion: \"{version}\"\ntarget: {{ driver: kubernetes, namespace: {} }}\nsteps:\n  - name: deploy\n    kind: deploy\n    strategy: {strategy}\n    manifests: [app.yaml]\n    image: {IMAGE}\n    progress_deadline: 90s\n    rollback_window: 0s\n    retry: {{ maximum_attempts: 1 }}\n{extra}",
            self.namespace
        );
        std::fs::write(self.dir.path().join("plan.yaml"), plan)?;
        let out = cutover(
            self.dir.path(),
            Some(&self.server.address),
            &["--task-queue", &self.queue, "rollout", "start", "plan.yaml"],
        );
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = tokio::time::timeout(
            Duration::from_secs(300),
            outcome(self.server.client(), "rollout/app/e2e"),
        )
        .await?;
        Ok(status(self.server.client(), "rollout/app/e2e")
            .await
            .map_or(RolloutState::Failed, |s| s.state))
    }

    async fn image(&self, deployment: &str) -> anyhow::Result<String> {
        let d = Api::<Deployment>::namespaced(self.client.clone(), &self.namespace)
            .get(deployment)
            .await?;
        Ok(d.spec
            .and_then(|s| s.template.spec)
            .and_then(|s| s.containers.first().and_then(|c| c.image.clone()))
            .unwrap_or_default())
    }

    async fn finish(self) -> anyhow::Result<()> {
        Api::<Namespace>::all(self.client.clone())
            .delete(&self.namespace, &DeleteParams::default())
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn e2e_rolling_then_a_bad_image_keeps_the_old_version() -> anyhow::Result<()> {
    let Some(kubeconfig) = kubeconfig() else {
        return Ok(());
    };
    let e2e = E2e::start(&kubeconfig, "rolling").await?;
    assert_eq!(e2e.run("3.9", "rolling").await?, RolloutState::Succeeded);
    assert_eq!(e2e.run("3.10", "rolling").await?, RolloutState::Succeeded);
    assert_eq!(e2e.image("app").await?, format!("{IMAGE}:3.10"));
    assert_ne!(
        e2e.run("no-such-tag", "rolling").await?,
        RolloutState::Succeeded
    );
    assert_eq!(
        e2e.image("app").await?,
        format!("{IMAGE}:3.10"),
        "withdrawn to 3.10"
    );
    e2e.finish().await
}

#[tokio::test]
async fn e2e_blue_green_switches_the_service() -> anyhow::Result<()> {
    let Some(kubeconfig) = kubeconfig() else {
        return Ok(());
    };
    let e2e = E2e::start(&kubeconfig, "bluegreen").await?;
    assert_eq!(e2e.run("3.9", "blue-green").await?, RolloutState::Succeeded);
    assert_eq!(
        e2e.run("3.10", "blue-green").await?,
        RolloutState::Succeeded
    );
    assert_eq!(e2e.image("app-green").await?, format!("{IMAGE}:3.10"));
    let svc = Api::<Service>::namespaced(e2e.client.clone(), &e2e.namespace)
        .get("app")
        .await?;
    assert_eq!(
        serde_json::to_value(svc.spec.and_then(|s| s.selector))?,
        json!({"app": "app", "cutover.dev/slot": "green"})
    );
    e2e.finish().await
}

#[tokio::test]
async fn e2e_canary_by_replica_ratio_ends_on_the_new_slot() -> anyhow::Result<()> {
    let Some(kubeconfig) = kubeconfig() else {
        return Ok(());
    };
    let e2e = E2e::start(&kubeconfig, "canary").await?;
    let whole = "    canary: [{ weight: 100 }]\n";
    assert_eq!(
        e2e.run_with("3.9", "canary", whole).await?,
        RolloutState::Succeeded
    );
    let steps = "    canary: [{ weight: 50, bake: 5s }, { weight: 100 }]\n";
    assert_eq!(
        e2e.run_with("3.10", "canary", steps).await?,
        RolloutState::Succeeded
    );
    assert_eq!(e2e.image("app-green").await?, format!("{IMAGE}:3.10"));
    let blue = Api::<Deployment>::namespaced(e2e.client.clone(), &e2e.namespace)
        .get("app-blue")
        .await?;
    assert_eq!(
        blue.spec.and_then(|s| s.replicas),
        Some(0),
        "the old slot retired"
    );
    e2e.finish().await
}
