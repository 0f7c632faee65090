//! The Kubernetes driver end to end: the real worker and CLI against a real control plane
//! (etcd, kube-apiserver and kube-controller-manager built from source, see
//! `tests/src/kube.rs`). There is no kubelet here: `Kubelet` marks pods Ready (or holds them
//! in ImagePullBackOff) through the API, as a kubelet would; every Deployment, ReplicaSet,
//! watch, server-side apply and RBAC decision is the real API server's and controllers'.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cutover_tests::kube::{ControlPlane, Fate, Kubelet};
use cutover_tests::{
    DevServer, WorkerProcess, bin, cutover, outcome, status, unique_queue, wait_for,
};
use cutover_workflows::status::RolloutState;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use temporalio_client::errors::WorkflowGetResultError;

const IMAGE: &str = "registry.example.com/shop";

/// A secret the worker reads from its environment; it must never appear in history.
const SECRET_VALUE: &str = "postgres://shop:s3cret-value-4711@db/shop";

/// A provision step for the namespace `ns` with a label, a ServiceAccount, a quota and a
/// Secret from the worker's environment.
const PROVISION: &str = "  - name: provision\n    kind: provision\n    namespace_labels: { team: shop }\n    service_account: shop\n    resource_quota: { pods: \"20\" }\n    secrets: { shop-db: { DATABASE_URL: { env: SHOP_DB_URL } } }\n";

/// The manifests of the `shop` service: a Deployment of `replicas` and its Service.
fn manifests(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{ app: shop }}\n  template:\n    metadata:\n      labels: {{ app: shop }}\n    spec:\n      containers:\n        - name: app\n          ports: [{{ containerPort: 8080 }}]\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: shop\nspec:\n  selector: {{ app: shop }}\n  ports: [{{ port: 80, targetPort: 8080 }}]\n"
    )
}

/// The manifests of `shop` with an HTTPRoute sending its traffic to the Service (the Gateway
/// it attaches to need not exist: no gateway controller runs here, the route's spec is what
/// the tests read).
fn manifests_with_route(replicas: u32) -> String {
    format!(
        "{}---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: shop\nspec:\n  parentRefs: [{{ name: public }}]\n  rules:\n    - backendRefs: [{{ name: shop, port: 80 }}]\n",
        manifests(replicas)
    )
}

/// A cluster, a namespace, a Temporal dev server and a worker whose kubeconfig reaches the
/// cluster.
struct Scene {
    plane: ControlPlane,
    server: DevServer,
    dir: tempfile::TempDir,
    queue: String,
    worker: WorkerProcess,
    client: Client,
    namespace: String,
}

impl Scene {
    async fn start(namespace: &str) -> anyhow::Result<Self> {
        Self::start_as(namespace, None).await
    }

    /// With `kubeconfig`, the worker acts as that user instead of the admin.
    async fn start_as(namespace: &str, kubeconfig: Option<&Path>) -> anyhow::Result<Self> {
        let plane = ControlPlane::start().await?;
        let client = plane.client().await?;
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}}))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        let server = DevServer::start().await?;
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("shop.yaml"), manifests(2))?;
        let queue = unique_queue("kube");
        let worker = spawn_worker(
            &server.address,
            &queue,
            dir.path(),
            kubeconfig.unwrap_or(&plane.kubeconfig),
        )?;
        Ok(Self {
            plane,
            server,
            dir,
            queue,
            worker,
            client,
            namespace: namespace.to_owned(),
        })
    }

    fn kubelet(&self) -> Kubelet {
        Kubelet::start(self.client.clone(), &self.namespace)
    }

    /// Writes `plan.yaml` and starts it with the CLI (which reads the manifests into it).
    fn start_rollout(&self, plan: &str) -> anyhow::Result<String> {
        std::fs::write(self.dir.path().join("plan.yaml"), plan)?;
        let out = cutover(
            self.dir.path(),
            Some(&self.server.address),
            &["--task-queue", &self.queue, "rollout", "start", "plan.yaml"],
        );
        anyhow::ensure!(
            out.status.success(),
            "cutover rollout start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let service = plan
            .lines()
            .find_map(|l| l.strip_prefix("service: "))
            .unwrap_or("shop");
        Ok(format!("rollout/{service}/test"))
    }

    /// Runs `plan` to its end; returns the outcome and its reason.
    async fn run(&self, plan: &str) -> anyhow::Result<(RolloutState, String)> {
        let id = self.start_rollout(plan)?;
        self.end(&id).await
    }

    /// Waits for the rollout's end: its final state (from `status`) and, when it failed, the
    /// failure's message.
    async fn end(&self, id: &str) -> anyhow::Result<(RolloutState, String)> {
        let message = match outcome(self.server.client(), id).await {
            Ok(_) => String::new(),
            Err(WorkflowGetResultError::Failed(f)) => f.failure().message.clone(),
            Err(e) => format!("{e:?}"),
        };
        let state = cutover_tests::status(self.server.client(), id)
            .await
            .map_or(RolloutState::Failed, |s| s.state);
        Ok((state, message))
    }

    async fn deployment(&self, name: &str) -> anyhow::Result<Option<Deployment>> {
        Ok(
            Api::<Deployment>::namespaced(self.client.clone(), &self.namespace)
                .get_opt(name)
                .await?,
        )
    }

    /// The image of Deployment `name`'s container, and its replicas.
    async fn image(&self, name: &str) -> anyhow::Result<(String, i32)> {
        let d = self
            .deployment(name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no Deployment {name}"))?;
        let spec = d.spec.unwrap_or_default();
        let image = spec
            .template
            .spec
            .and_then(|s| s.containers.first().and_then(|c| c.image.clone()))
            .unwrap_or_default();
        Ok((image, spec.replicas.unwrap_or(1)))
    }

    async fn service_selector(&self, name: &str) -> anyhow::Result<serde_json::Value> {
        let s = Api::<Service>::namespaced(self.client.clone(), &self.namespace)
            .get(name)
            .await?;
        Ok(serde_json::to_value(s.spec.and_then(|s| s.selector))?)
    }

    /// `cutover rollout status ID --output json`, as text.
    fn status_text(&self, id: &str) -> anyhow::Result<String> {
        Ok(cutover_tests::cutover_json(
            self.dir.path(),
            Some(&self.server.address),
            &["rollout", "status", id, "--output", "json"],
        )?
        .to_string())
    }

    /// Promotes the rollout `id` past its hold with the CLI and waits until it succeeded.
    async fn promote_to_the_end(&self, id: &str) -> anyhow::Result<()> {
        // The cluster can show the canary's weight before the step's activity has reported
        // it and the hold has begun: promote once the rollout says it holds.
        wait_for(Duration::from_secs(60), "the canary's hold", || async {
            let st = status(self.server.client(), id).await?;
            st.steps.iter().any(|s| s.hold_ms.is_some()).then_some(())
        })
        .await?;
        let out = cutover(
            self.dir.path(),
            Some(&self.server.address),
            &["rollout", "promote", id, "--by", "lead"],
        );
        anyhow::ensure!(
            out.status.success(),
            "promote: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (state, reason) = self.end(id).await?;
        anyhow::ensure!(
            state == RolloutState::Succeeded,
            "{state:?}: {reason}\n{}",
            self.log()
        );
        Ok(())
    }

    fn log(&self) -> String {
        format!(
            "worker log:\n{}\ncontroller-manager log:\n{}",
            self.worker.log_text(),
            self.plane.log("controller-manager")
        )
    }
}

fn spawn_worker(
    address: &str,
    queue: &str,
    dir: &Path,
    kubeconfig: &Path,
) -> anyhow::Result<WorkerProcess> {
    let mut command = Command::new(bin("cutover-worker"));
    command
        .args([
            "--address",
            address,
            "--task-queue",
            queue,
            "--shutdown-grace",
            "5s",
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("SHOP_DB_URL", SECRET_VALUE);
    WorkerProcess::spawn_command(command, dir)
}

/// A plan deploying `version` of `shop` with the deploy step's own lines `deploy` (one attempt
/// unless they give a `retry`), then `extra_steps`.
fn plan(namespace: &str, version: &str, deploy: &str, extra_steps: &str) -> String {
    let retry = if deploy.contains("retry:") {
        ""
    } else {
        "    retry: { maximum_attempts: 1 }\n"
    };
    format!(
        "service: shop\nenvironment: test\nversion: \"{version}\"\ntarget: {{ driver: kubernetes, namespace: {namespace} }}\nsteps:\n  - name: deploy\n    kind: deploy\n    manifests: [shop.yaml]\n    image: {IMAGE}\n    progress_deadline: 60s\n{retry}{deploy}{extra_steps}"
    )
}

#[tokio::test]
async fn a_rolling_deploy_applies_the_new_image_and_a_failed_verify_rolls_it_back()
-> anyhow::Result<()> {
    let scene = Scene::start("rolling").await?;
    let _kubelet = scene.kubelet();
    let (state, reason) = scene
        .run(&plan("rolling", "1.0.0", "    strategy: rolling\n    max_surge: \"1\"\n    max_unavailable: \"0\"\n    rollback_window: 0s\n", ""))
        .await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}\n{}", scene.log());
    assert_eq!(scene.image("shop").await?, (format!("{IMAGE}:1.0.0"), 2));
    let d = scene.deployment("shop").await?.expect("deployment");
    let rolling = d
        .spec
        .and_then(|s| s.strategy)
        .and_then(|s| s.rolling_update)
        .expect("rolling update");
    assert_eq!(
        serde_json::to_value(&rolling)?,
        json!({"maxSurge": 1, "maxUnavailable": 0})
    );
    assert_eq!(
        d.metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m.manager.clone())
            .collect::<Vec<_>>()
            .first()
            .map(String::as_str),
        Some("cutover"),
        "server-side applied as field manager `cutover`"
    );

    // 2.0.0 rolls out, then its verify fails: the saga puts 1.0.0 back.
    let verify = "  - name: verify\n    kind: command\n    command: \"false\"\n    retry: { maximum_attempts: 1 }\n";
    let (state, reason) = scene
        .run(&plan(
            "rolling",
            "2.0.0",
            "    strategy: rolling\n    rollback_window: 0s\n",
            verify,
        ))
        .await?;
    assert_eq!(state, RolloutState::RolledBack, "{reason}\n{}", scene.log());
    assert!(reason.contains("traffic back to 1.0.0"), "{reason}");
    cutover_tests::replays(
        scene.server.client(),
        "rollout/shop/test",
        "kube-rolling-rolled-back",
    )
    .await?;
    assert_eq!(scene.image("shop").await?.0, format!("{IMAGE}:1.0.0"));
    let record = Api::<ConfigMap>::namespaced(scene.client.clone(), "rolling")
        .get("cutover-shop")
        .await?;
    let text = record
        .data
        .unwrap_or_default()
        .remove("release.json")
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(json["version"], "1.0.0", "{json}");
    Ok(())
}

#[tokio::test]
async fn blue_green_switches_the_service_once_the_new_slot_is_ready() -> anyhow::Result<()> {
    let scene = Scene::start("bluegreen").await?;
    let _kubelet = scene.kubelet();
    let deploy = "    strategy: blue-green\n    rollback_window: 0s\n";
    let (state, reason) = scene.run(&plan("bluegreen", "1.0.0", deploy, "")).await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}\n{}", scene.log());
    assert_eq!(
        scene.image("shop-blue").await?,
        (format!("{IMAGE}:1.0.0"), 2)
    );
    assert_eq!(
        scene.service_selector("shop").await?,
        json!({"app": "shop", "cutover.dev/slot": "blue"})
    );

    let (state, reason) = scene.run(&plan("bluegreen", "2.0.0", deploy, "")).await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}\n{}", scene.log());
    assert_eq!(
        scene.image("shop-green").await?,
        (format!("{IMAGE}:2.0.0"), 2)
    );
    assert_eq!(
        scene.service_selector("shop").await?,
        json!({"app": "shop", "cutover.dev/slot": "green"})
    );
    assert_eq!(
        scene.service_selector("shop-preview").await?,
        json!({"app": "shop", "cutover.dev/slot": "green"}),
        "the preview Service reaches the new slot"
    );
    assert_eq!(
        scene.image("shop-blue").await?.1,
        0,
        "the old slot is scaled to zero, kept for rollback"
    );
    Ok(())
}

#[tokio::test]
async fn a_canary_holds_its_weight_as_a_replica_ratio() -> anyhow::Result<()> {
    let scene = Scene::start("canary").await?;
    // The plan names an HTTPRoute, but this cluster serves no Gateway API: the split falls
    // back to a replica ratio, and status says why.
    std::fs::write(scene.dir.path().join("shop.yaml"), manifests_with_route(4))?;
    let _kubelet = scene.kubelet();
    let first = "    strategy: canary\n    rollback_window: 0s\n    canary: [{ weight: 100 }]\n";
    let (state, reason) = scene.run(&plan("canary", "1.0.0", first, "")).await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}\n{}", scene.log());

    let canary = "    strategy: canary\n    rollback_window: 0s\n    canary: [{ weight: 25, bake: 1h }, { weight: 100 }]\n";
    let id = scene.start_rollout(&plan("canary", "2.0.0", canary, ""))?;
    wait_for(Duration::from_secs(60), "the canary at 25%", || async {
        let green = scene.image("shop-green").await.ok()?;
        let blue = scene.image("shop-blue").await.ok()?;
        (green.1 == 1 && blue.1 == 3).then_some(())
    })
    .await?;
    assert_eq!(
        scene.service_selector("shop").await?,
        json!({"app": "shop"}),
        "at 25% the Service selects both slots"
    );
    scene.promote_to_the_end(&id).await?;
    assert_eq!(
        scene.image("shop-green").await?,
        (format!("{IMAGE}:2.0.0"), 4)
    );
    assert_eq!(scene.image("shop-blue").await?.1, 0);
    assert_eq!(
        scene.service_selector("shop").await?,
        json!({"app": "shop", "cutover.dev/slot": "green"})
    );
    // Status says how the weights were made.
    let text = scene.status_text(&id)?;
    assert!(
        text.contains(
            "replica ratio: 1 of 4 pods in slot green (the cluster serves no Gateway API HTTPRoute)"
        ),
        "{text}"
    );
    cutover_tests::replays(scene.server.client(), &id, "kube-canary-promoted").await?;
    Ok(())
}

/// The backendRefs of HTTPRoute `shop`'s first rule.
async fn route_backends(scene: &Scene) -> anyhow::Result<serde_json::Value> {
    let out = kubectl(
        &scene.plane.kubeconfig,
        &[
            "get",
            "httproute",
            "shop",
            "-n",
            &scene.namespace,
            "-o",
            "json",
        ],
    )?;
    let route: serde_json::Value = serde_json::from_str(&out)?;
    Ok(route["spec"]["rules"][0]["backendRefs"].clone())
}

#[tokio::test]
async fn a_canary_through_an_http_route_splits_traffic_by_backend_weights() -> anyhow::Result<()> {
    let scene = Scene::start("routed").await?;
    scene.plane.install_gateway_api().await?;
    std::fs::write(scene.dir.path().join("shop.yaml"), manifests_with_route(4))?;
    let _kubelet = scene.kubelet();
    let first = "    strategy: canary\n    rollback_window: 0s\n    canary: [{ weight: 100 }]\n";
    let (state, reason) = scene.run(&plan("routed", "1.0.0", first, "")).await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}\n{}", scene.log());
    assert_eq!(
        route_backends(&scene).await?,
        json!([{"group": "", "kind": "Service", "name": "shop", "port": 80, "weight": 1}]),
        "after the first release the route sends everything to the Service, as written"
    );

    let canary = "    strategy: canary\n    rollback_window: 0s\n    canary: [{ weight: 25, bake: 1h }, { weight: 100 }]\n";
    let id = scene.start_rollout(&plan("routed", "2.0.0", canary, ""))?;
    let split = wait_for(Duration::from_secs(60), "the route at 25%", || async {
        let b = route_backends(&scene).await.ok()?;
        (b.as_array()?.len() == 2).then_some(b)
    })
    .await?;
    assert_eq!(
        split,
        json!([
            {"group": "", "kind": "Service", "name": "shop", "port": 80, "weight": 75},
            {"group": "", "kind": "Service", "name": "shop-green", "port": 80, "weight": 25}
        ])
    );
    // Both slots run whole: the weights split the traffic, not the replicas.
    assert_eq!(
        scene.image("shop-green").await?,
        (format!("{IMAGE}:2.0.0"), 4)
    );
    assert_eq!(
        scene.image("shop-blue").await?,
        (format!("{IMAGE}:1.0.0"), 4)
    );
    assert_eq!(
        scene.service_selector("shop").await?,
        json!({"app": "shop", "cutover.dev/slot": "blue"}),
        "the Service keeps the serving slot"
    );
    assert_eq!(
        scene.service_selector("shop-green").await?,
        json!({"app": "shop", "cutover.dev/slot": "green"})
    );
    scene.promote_to_the_end(&id).await?;
    assert_eq!(
        route_backends(&scene).await?,
        json!([{"group": "", "kind": "Service", "name": "shop", "port": 80, "weight": 1}])
    );
    assert_eq!(
        scene.service_selector("shop").await?,
        json!({"app": "shop", "cutover.dev/slot": "green"})
    );
    assert_eq!(
        scene.image("shop-blue").await?.1,
        0,
        "the old slot is retired"
    );
    // Status says how the weights were made.
    let status = scene.status_text(&id)?;
    assert!(
        status.contains(
            "Gateway API HTTPRoute shop: 25% to shop-green (slot green), 75% to shop (slot blue)"
        ),
        "{status}"
    );
    cutover_tests::replays(scene.server.client(), &id, "kube-canary-by-route").await?;

    // A third version aborted at 25%: the route goes back to the Service alone, which
    // selects the serving slot, and the new slot is scaled away.
    let id = scene.start_rollout(&plan("routed", "3.0.0", canary, ""))?;
    wait_for(Duration::from_secs(60), "3.0.0 at 25%", || async {
        let b = route_backends(&scene).await.ok()?;
        (b.as_array()?.len() == 2 && b[1]["name"] == "shop-blue").then_some(())
    })
    .await?;
    let out = cutover(
        scene.dir.path(),
        Some(&scene.server.address),
        &["rollout", "abort", &id, "--by", "sre"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (state, reason) = scene.end(&id).await?;
    assert_ne!(state, RolloutState::Succeeded, "{reason}");
    assert_eq!(
        route_backends(&scene).await?,
        json!([{"group": "", "kind": "Service", "name": "shop", "port": 80, "weight": 1}]),
        "{reason}\n{}",
        scene.log()
    );
    let ran: Vec<String> = cutover_tests::history_events(scene.server.client(), &id)
        .await?
        .iter()
        .filter_map(|e| {
            e["attributes"]["ActivityTaskScheduledEventAttributes"]["activity_type"]["name"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        scene.service_selector("shop").await?,
        json!({"app": "shop", "cutover.dev/slot": "green"}),
        "{ran:?}"
    );
    assert_eq!(
        scene.image("shop-blue").await?,
        (format!("{IMAGE}:3.0.0"), 0)
    );
    assert_eq!(
        scene.image("shop-green").await?,
        (format!("{IMAGE}:2.0.0"), 4)
    );
    Ok(())
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_the_step_with_its_events_and_keeps_the_old_version()
-> anyhow::Result<()> {
    let scene = Scene::start("pullfail").await?;
    let kubelet = scene.kubelet();
    let deploy = "    strategy: blue-green\n    rollback_window: 0s\n";
    let (state, reason) = scene.run(&plan("pullfail", "1.0.0", deploy, "")).await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}\n{}", scene.log());

    kubelet.set(&format!("{IMAGE}:2.0.0"), Fate::ImagePullBackOff);
    let (state, reason) = scene.run(&plan("pullfail", "2.0.0", deploy, "")).await?;
    assert_ne!(state, RolloutState::Succeeded, "{reason}");
    assert!(
        reason.contains("ImagePullBackOff"),
        "the waiting reason is in the step's reason: {reason}"
    );
    assert!(
        reason.contains("Failed to pull image"),
        "the pod's events are in the reason: {reason}"
    );
    assert_eq!(
        scene.service_selector("shop").await?,
        json!({"app": "shop", "cutover.dev/slot": "blue"})
    );
    assert_eq!(
        scene.image("shop-blue").await?,
        (format!("{IMAGE}:1.0.0"), 2)
    );
    assert_eq!(
        scene.image("shop-green").await?.1,
        0,
        "the unfinished slot is withdrawn"
    );
    Ok(())
}

#[tokio::test]
async fn a_request_forbidden_by_rbac_fails_at_once_with_the_api_message() -> anyhow::Result<()> {
    // The worker acts as `cutover-driver`, who may read but not write Deployments.
    let plane_dir = tempfile::tempdir()?;
    let kubeconfig = plane_dir.path().join("driver.kubeconfig");
    let scene = {
        let scene = Scene::start("rbac").await?;
        scene.plane.driver_kubeconfig(&kubeconfig)?;
        scene
    };
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "read-only", "namespace": "rbac"},
        "rules": [{"apiGroups": ["", "apps"], "resources": ["deployments", "configmaps", "services", "pods", "events"], "verbs": ["get", "list", "watch"]}],
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "driver-read-only", "namespace": "rbac"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-only"},
        "subjects": [{"kind": "User", "name": "cutover-driver", "apiGroup": "rbac.authorization.k8s.io"}],
    });
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    Api::<Role>::namespaced(scene.client.clone(), "rbac")
        .create(&PostParams::default(), &serde_json::from_value(role)?)
        .await?;
    Api::<RoleBinding>::namespaced(scene.client.clone(), "rbac")
        .create(&PostParams::default(), &serde_json::from_value(binding)?)
        .await?;
    let mut scene = scene;
    scene.worker = spawn_worker(
        &scene.server.address,
        &scene.queue,
        scene.dir.path(),
        &kubeconfig,
    )?;
    let p = plan(
        "rbac",
        "1.0.0",
        "    strategy: rolling\n    rollback_window: 0s\n    retry: { maximum_attempts: 5, initial_interval: 100ms }\n",
        "",
    );
    let (state, reason) = scene.run(&p).await?;
    assert_ne!(state, RolloutState::Succeeded);
    assert!(
        reason.contains("KubeRefused") || reason.contains("Kubernetes refused"),
        "{reason}"
    );
    assert!(reason.contains("forbidden"), "the API's message: {reason}");
    assert!(
        reason.contains("after 1 attempt"),
        "a 403 is not retried: {reason}"
    );
    Ok(())
}

#[tokio::test]
async fn a_watch_cut_by_an_api_server_restart_resumes_and_the_rollout_finishes()
-> anyhow::Result<()> {
    let mut scene = Scene::start("restart").await?;
    let id = scene.start_rollout(&plan(
        "restart",
        "1.0.0",
        "    strategy: rolling\n    rollback_window: 0s\n",
        "",
    ))?;
    // No kubelet yet: the pods cannot become ready, so the driver is watching.
    wait_for(
        Duration::from_secs(60),
        "the Deployment applied",
        || async { scene.deployment("shop").await.ok().flatten().map(|_| ()) },
    )
    .await?;
    scene.plane.restart_apiserver().await?;
    let _kubelet = scene.kubelet();
    let (state, reason) = scene.end(&id).await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}\n{}", scene.log());
    assert_eq!(
        rolling_attempts(&scene, &id).await?,
        1,
        "one attempt: its watch resumed after the restart"
    );
    Ok(())
}

/// How many times the rollout scheduled `deploy.rolling` (the workflow schedules each attempt
/// of a step itself).
async fn rolling_attempts(scene: &Scene, id: &str) -> anyhow::Result<usize> {
    let events = cutover_tests::history_events(scene.server.client(), id).await?;
    Ok(events
        .iter()
        .filter(|e| {
            e["attributes"]["ActivityTaskScheduledEventAttributes"]["activity_type"]["name"]
                == "deploy.rolling"
        })
        .count())
}

#[tokio::test]
async fn a_worker_killed_mid_rollout_is_replaced_and_applies_the_same_object() -> anyhow::Result<()>
{
    let mut scene = Scene::start("crash").await?;
    let deploy = "    strategy: rolling\n    rollback_window: 0s\n    heartbeat_timeout: 2s\n    retry: { maximum_attempts: 3, initial_interval: 100ms }\n";
    let id = scene.start_rollout(&plan("crash", "1.0.0", deploy, ""))?;
    let generation = wait_for(
        Duration::from_secs(60),
        "the Deployment applied",
        || async {
            scene
                .deployment("shop")
                .await
                .ok()
                .flatten()
                .and_then(|d| d.metadata.generation)
        },
    )
    .await?;
    scene.worker.kill9();
    scene.worker = spawn_worker(
        &scene.server.address,
        &scene.queue,
        scene.dir.path(),
        &scene.plane.kubeconfig,
    )?;
    let _kubelet = scene.kubelet();
    let (state, reason) = scene.end(&id).await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}\n{}", scene.log());
    let d = scene.deployment("shop").await?.expect("deployment");
    assert_eq!(
        d.metadata.generation,
        Some(generation),
        "the retried apply changed nothing"
    );
    let sets =
        Api::<k8s_openapi::api::apps::v1::ReplicaSet>::namespaced(scene.client.clone(), "crash")
            .list(&ListParams::default())
            .await?;
    assert_eq!(
        sets.items.len(),
        1,
        "one ReplicaSet: the same template applied twice"
    );
    assert_eq!(
        rolling_attempts(&scene, &id).await?,
        2,
        "the killed worker's attempt timed out and the new worker ran the second"
    );
    Ok(())
}

/// `kubectl` against the test control plane.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[tokio::test]
async fn the_overlays_apply_and_the_driver_needs_no_right_the_overlay_does_not_grant()
-> anyhow::Result<()> {
    let mut scene = Scene::start("apps").await?;
    let admin = scene.plane.kubeconfig.clone();
    let k8s = Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s/overlays");
    for ns in ["shop", "payments"] {
        kubectl(&admin, &["create", "namespace", ns])?;
    }
    for overlay in ["dev", "production"] {
        let rendered = scene.dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(
            &rendered,
            kubectl(
                &admin,
                &["kustomize", &k8s.join(overlay).display().to_string()],
            )?,
        )?;
        let applied = kubectl(
            &admin,
            &[
                "apply",
                "--server-side",
                "--field-manager",
                "cutover-test",
                "-f",
                &rendered.display().to_string(),
            ],
        )?;
        assert!(
            applied.contains("deployment.apps/cutover-worker serverside-applied"),
            "{applied}"
        );
    }
    // The worker acts as the overlay's ServiceAccount, with only the dev overlay's binding
    // in `apps`: any verb the driver uses that the ClusterRole lacks fails a rollout below.
    let token = kubectl(
        &admin,
        &["create", "token", "cutover-worker", "-n", "cutover"],
    )?;
    let kubeconfig = scene.dir.path().join("worker.kubeconfig");
    std::fs::write(
        &kubeconfig,
        std::fs::read_to_string(&admin)?.replace("admin-token", token.trim()),
    )?;
    let who = kubectl(
        &kubeconfig,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    )?;
    assert_eq!(who, "system:serviceaccount:cutover:cutover-worker");
    scene.worker = spawn_worker(
        &scene.server.address,
        &scene.queue,
        scene.dir.path(),
        &kubeconfig,
    )?;
    let kubelet = scene.kubelet();

    let bg = "    strategy: blue-green\n    rollback_window: 0s\n";
    for version in ["1.0.0", "2.0.0"] {
        let text =
            plan("apps", version, bg, "").replace("steps:\n", &format!("steps:\n{PROVISION}"));
        let (state, reason) = scene.run(&text).await?;
        assert_eq!(
            state,
            RolloutState::Succeeded,
            "{version}: {reason}\n{}",
            scene.log()
        );
    }
    kubelet.set(&format!("{IMAGE}:3.0.0"), Fate::CrashLoop);
    kubelet.logs(
        &format!("{IMAGE}:3.0.0"),
        "starting shop 3.0.0\npanic: DATABASE_URL is not set\n",
    );
    let (state, reason) = scene.run(&plan("apps", "3.0.0", bg, "")).await?;
    assert_ne!(state, RolloutState::Succeeded);
    assert!(reason.contains("CrashLoopBackOff"), "{reason}");
    assert!(
        !reason.contains("forbidden"),
        "the pods, events and logs were readable: {reason}"
    );
    assert!(
        reason.contains("panic: DATABASE_URL is not set"),
        "the pod's last log lines, through the API server's log proxy: {reason}"
    );
    // A canary through a Gateway API route: discovery, the route's patch, the slot Services.
    scene.plane.install_gateway_api().await?;
    std::fs::write(scene.dir.path().join("shop.yaml"), manifests_with_route(2))?;
    let routed = "    strategy: canary\n    rollback_window: 0s\n    canary: [{ weight: 50 }, { weight: 100 }]\n";
    let id = scene.start_rollout(&plan("apps", "4.0.0", routed, ""))?;
    let (state, reason) = scene.end(&id).await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}\n{}", scene.log());
    let status = scene.status_text(&id)?;
    assert!(
        status.contains("Gateway API HTTPRoute shop: 50%"),
        "{status}"
    );
    // A drill's switch patches the app's Secret key, and the driver never reads a Secret:
    // asked in `shop`, where the production overlay binds the driver's role alone.
    let can = |verb: &str| -> anyhow::Result<String> {
        // `can-i` answers on stdout, and exits 1 when the answer is no.
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&admin)
            .args(["auth", "can-i", verb, "secrets", "-n", "shop", "--as"])
            .arg("system:serviceaccount:cutover:cutover-worker")
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    assert_eq!(can("patch")?, "yes");
    assert_eq!(can("get")?, "no");
    // A rolling deploy of another service exercises the rest of the driver's requests.
    let rolling = "    strategy: rolling\n    rollback_window: 0s\n";
    std::fs::write(
        scene.dir.path().join("shop.yaml"),
        manifests(2).replace("name: shop\n", "name: cart\n"),
    )?;
    let (state, reason) = scene
        .run(&plan("apps", "1.0.0", rolling, "").replace("service: shop", "service: cart"))
        .await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}\n{}", scene.log());
    assert_eq!(scene.image("cart").await?.0, format!("{IMAGE}:1.0.0"));
    // Waits are watches, not polls: the driver never GETs a Deployment or a pod.
    let requests = scene
        .plane
        .requests_by("system:serviceaccount:cutover:cutover-worker");
    let count = |verb: &str, resource: &str| {
        requests
            .iter()
            .filter(|(v, r)| v == verb && r == resource)
            .count()
    };
    assert!(count("watch", "deployments") >= 1, "{requests:?}");
    assert_eq!(count("get", "deployments"), 0, "{requests:?}");
    assert_eq!(count("get", "pods"), 0, "{requests:?}");
    // A namespace the overlay does not bind is refused, with the API's words.
    let (state, reason) = scene.run(&plan("default", "1.0.0", bg, "")).await?;
    assert_ne!(state, RolloutState::Succeeded);
    assert!(reason.contains("forbidden"), "{reason}");
    Ok(())
}

#[tokio::test]
async fn a_migration_runs_as_a_job_and_its_exit_code_is_the_verdict() -> anyhow::Result<()> {
    let scene = Scene::start("jobs").await?;
    let kubelet = scene.kubelet();
    let migrate = "  - name: migrate\n    kind: migrate\n    job:\n      image: registry.example.com/shop-migrate\n      command: [./migrate, up]\n      env: { LOG: debug }\n      env_from_secrets: [shop-db]\n";
    let with_migration = |version: &str| {
        plan(
            "jobs",
            version,
            "    strategy: rolling\n    rollback_window: 0s\n",
            "",
        )
        .replace("steps:\n", &format!("steps:\n{migrate}"))
    };
    kubelet.logs(
        "registry.example.com/shop-migrate:1.0.0",
        "connecting to the database\napplying 0001_init\nmigrated to version 1\n",
    );
    let (state, reason) = scene.run(&with_migration("1.0.0")).await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}\n{}", scene.log());
    // The Job's output was streamed into the worker's log and kept in the step's output.
    let worker_log = scene.worker.log_text();
    assert!(
        worker_log.contains("applying 0001_init") && worker_log.contains("job="),
        "{worker_log}"
    );
    let status = scene.status_text("rollout/shop/test")?;
    assert!(status.contains("migrated to version 1"), "{status}");
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(scene.client.clone(), "jobs")
        .list(&ListParams::default())
        .await?;
    assert_eq!(jobs.items.len(), 1);
    let job = serde_json::to_value(&jobs.items[0])?;
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "registry.example.com/shop-migrate:1.0.0"
    );
    assert_eq!(container["command"], json!(["./migrate", "up"]));
    assert_eq!(
        container["envFrom"],
        json!([{"secretRef": {"name": "shop-db"}}])
    );

    // 2.0.0's migration exits 3: the rollout stops before its deploy, the Job is kept.
    kubelet.set("registry.example.com/shop-migrate:2.0.0", Fate::Exit(3));
    kubelet.logs(
        "registry.example.com/shop-migrate:2.0.0",
        "applying 0002_orders\nERROR: relation \"orders\" already exists\n",
    );
    let (state, reason) = scene.run(&with_migration("2.0.0")).await?;
    assert_ne!(state, RolloutState::Succeeded);
    assert!(reason.contains("MigrationFailed"), "{reason}");
    assert!(reason.contains("exit code 3"), "{reason}");
    assert!(
        reason.contains("ERROR: relation \"orders\" already exists"),
        "the Job's last log lines: {reason}"
    );
    assert!(reason.contains("kept for inspection"), "{reason}");
    assert_eq!(
        scene.image("shop").await?.0,
        format!("{IMAGE}:1.0.0"),
        "the deploy did not run"
    );
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(scene.client.clone(), "jobs")
        .list(&ListParams::default())
        .await?;
    assert_eq!(jobs.items.len(), 2, "both Jobs are kept");
    cutover_tests::replays(
        scene.server.client(),
        "rollout/shop/test",
        "kube-migration-job-failed",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn provision_creates_the_namespace_and_secrets_without_their_values_in_history()
-> anyhow::Result<()> {
    let scene = Scene::start("existing").await?;
    let _kubelet = Kubelet::start(scene.client.clone(), "fresh");
    let bg = "    strategy: rolling\n    rollback_window: 0s\n";
    let text = plan("fresh", "1.0.0", bg, "").replace("steps:\n", &format!("steps:\n{PROVISION}"));
    let (state, reason) = scene.run(&text).await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}\n{}", scene.log());
    let ns = Api::<Namespace>::all(scene.client.clone())
        .get("fresh")
        .await?;
    assert_eq!(
        ns.metadata
            .labels
            .unwrap_or_default()
            .get("team")
            .map(String::as_str),
        Some("shop")
    );
    let secret =
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(scene.client.clone(), "fresh")
            .get("shop-db")
            .await?;
    let data = secret.data.unwrap_or_default();
    assert_eq!(
        data.get("DATABASE_URL").map(|b| b.0.as_slice()),
        Some(SECRET_VALUE.as_bytes())
    );
    let quota =
        Api::<k8s_openapi::api::core::v1::ResourceQuota>::namespaced(scene.client.clone(), "fresh")
            .get("cutover-shop")
            .await?;
    assert_eq!(
        serde_json::to_value(quota.spec)?["hard"],
        json!({"pods": "20"})
    );
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(scene.client.clone(), "fresh")
        .get("shop")
        .await?;
    let history = decoded_history(&scene).await?;
    assert!(
        !history.contains("s3cret-value-4711"),
        "a secret value is in history"
    );
    assert!(
        history.contains("Secret shop-db set (DATABASE_URL)"),
        "the change is reported by name"
    );
    assert!(history.contains("namespace fresh created"));

    // A second run changes nothing.
    let (state, reason) = scene.run(&text.replace("1.0.0", "1.0.1")).await?;
    assert_eq!(state, RolloutState::Succeeded, "{reason}");
    let history = decoded_history(&scene).await?;
    assert!(
        history.contains(r#"{"changes":[]}"#),
        "nothing changed the second time"
    );
    Ok(())
}

/// The latest rollout's history with every payload decoded, as one text to search.
async fn decoded_history(scene: &Scene) -> anyhow::Result<String> {
    use base64::Engine;
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if let (true, Some(text)) = (k == "data", v.as_str())
                        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text)
                    {
                        out.push_str(&String::from_utf8_lossy(&bytes));
                        out.push('\n');
                    }
                    walk(v, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            other => {
                out.push_str(&other.to_string());
                out.push('\n');
            }
        }
    }
    let events = cutover_tests::history_events(scene.server.client(), "rollout/shop/test").await?;
    let mut out = String::new();
    walk(&serde_json::Value::Array(events), &mut out);
    Ok(out)
}

#[tokio::test]
async fn a_deployment_past_its_progress_deadline_fails_the_step_with_the_probe_events()
-> anyhow::Result<()> {
    let scene = Scene::start("stalled").await?;
    let kubelet = scene.kubelet();
    kubelet.set(&format!("{IMAGE}:1.0.0"), Fate::Unready);
    let text = plan(
        "stalled",
        "1.0.0",
        "    strategy: rolling\n    rollback_window: 0s\n",
        "",
    )
    .replace("progress_deadline: 60s", "progress_deadline: 2s");
    let (state, reason) = scene.run(&text).await?;
    assert_ne!(state, RolloutState::Succeeded);
    assert!(reason.contains("made no progress"), "{reason}");
    assert!(
        reason.contains("has timed out progressing"),
        "the controller's words: {reason}"
    );
    assert!(
        reason.contains("Readiness probe failed"),
        "the pods' events: {reason}"
    );
    assert_eq!(
        scene.image("shop").await?.1,
        0,
        "the unfinished first release is scaled to zero"
    );
    Ok(())
}

#[tokio::test]
async fn an_object_the_api_server_finds_invalid_fails_at_once_with_its_message()
-> anyhow::Result<()> {
    let scene = Scene::start("invalid").await?;
    std::fs::write(
        scene.dir.path().join("shop.yaml"),
        manifests(2).replace("containerPort: 8080", "containerPort: 99999"),
    )?;
    let text = plan(
        "invalid",
        "1.0.0",
        "    strategy: rolling\n    rollback_window: 0s\n    retry: { maximum_attempts: 5, initial_interval: 100ms }\n",
        "",
    );
    let (state, reason) = scene.run(&text).await?;
    assert_ne!(state, RolloutState::Succeeded);
    assert!(reason.contains("KubeRefused"), "{reason}");
    assert!(
        reason.contains("containerPort"),
        "the API's message names the field: {reason}"
    );
    assert!(
        reason.contains("after 1 attempt"),
        "an invalid object is not retried: {reason}"
    );
    Ok(())
}

/// `cutover plan show --objects` in `dir` with `KUBECONFIG=kubeconfig`: exit code, stdout
/// as JSON, stderr.
fn show_objects(dir: &Path, kubeconfig: &Path) -> anyhow::Result<(i32, serde_json::Value, String)> {
    let out = Command::new(bin("cutover"))
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .args(["plan", "show", "plan.yaml", "--objects"])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .map_err(|e| anyhow::anyhow!("stdout is not JSON ({e}); stderr: {stderr}"))?;
    Ok((out.status.code().unwrap_or(-1), json, stderr))
}

#[tokio::test]
async fn plan_show_objects_is_a_server_side_dry_run_that_changes_nothing() -> anyhow::Result<()> {
    let plane = ControlPlane::start().await?;
    let client = plane.client().await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "dry"}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("shop.yaml"), manifests(2))?;
    let bg = "    strategy: blue-green\n    rollback_window: 0s\n";
    std::fs::write(dir.path().join("plan.yaml"), plan("dry", "1.0.0", bg, ""))?;

    let (code, json, stderr) = show_objects(dir.path(), &plane.kubeconfig)?;
    assert_eq!(code, 0, "{stderr}");
    let run = &json[0]["dry_run"];
    assert_eq!(json[0]["step"], "deploy");
    assert!(run.get("unchecked").is_none(), "{json}");
    assert_eq!(run["slot"], "blue", "a first release goes to the blue slot");
    let objects: Vec<&str> = run["objects"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["object"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        objects,
        [
            "Deployment shop-blue",
            "Service shop",
            "Service shop-preview"
        ]
    );
    let deployment = &run["objects"][0]["manifest"];
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{IMAGE}:1.0.0")
    );
    // Defaults only the API server fills in: the objects went through it.
    assert_eq!(
        deployment["spec"]["revisionHistoryLimit"], 10,
        "{deployment}"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    let stored = Api::<Deployment>::namespaced(client.clone(), "dry")
        .get_opt("shop-blue")
        .await?;
    assert!(stored.is_none(), "a dry run creates nothing");

    // An object the API server refuses: named, with its message, exit 1.
    std::fs::write(
        dir.path().join("shop.yaml"),
        manifests(2).replace("containerPort: 8080", "containerPort: 99999"),
    )?;
    let (code, _, stderr) = show_objects(dir.path(), &plane.kubeconfig)?;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("refuses Deployment shop-blue") && stderr.contains("containerPort"),
        "{stderr}"
    );

    // No cluster answering: the objects as rendered, and a plain word that they were not checked.
    let unreachable = dir.path().join("unreachable.kubeconfig");
    let port = cutover_tests::free_port()?;
    std::fs::write(
        &unreachable,
        std::fs::read_to_string(&plane.kubeconfig)?
            .replace(&plane.server, &format!("https://127.0.0.1:{port}")),
    )?;
    std::fs::write(dir.path().join("shop.yaml"), manifests(2))?;
    let (code, json, stderr) = show_objects(dir.path(), &unreachable)?;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("did not check"), "{stderr}");
    assert!(json[0]["dry_run"]["unchecked"].is_string(), "{json}");
    assert!(
        json[0]["dry_run"]["objects"][0]["manifest"]["spec"]
            .get("revisionHistoryLimit")
            .is_none(),
        "as rendered, without server defaults"
    );
    Ok(())
}
