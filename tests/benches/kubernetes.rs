//! The Kubernetes driver's cost per step against a real API server (the test control plane
//! built from source, with the kubelet stand-in marking pods Ready at once):
//!
//! - a rolling deploy step of a 2-replica Deployment as Cutover runs it (SSA apply → the
//!   Deployment observed rolled out, plus the release record), from the step's duration;
//! - the same apply → observed done directly with kube-rs (one server-side apply, one watch),
//!   the floor any driver pays;
//! - the API requests the driver makes per rollout, from the API server's audit log.
//!
//! ```text
//! cargo build --release --workspace --bins && cargo bench -p cutover-tests --bench kubernetes -- --runs 20
//! ```

use std::collections::BTreeMap;
use std::time::Instant;

use cutover_tests::bench::{arg, report};
use cutover_tests::kube::{ControlPlane, Kubelet};
use cutover_tests::{DevServer, WorkerProcess, bin, outcome, unique_queue};
use cutover_workflows::plan::{ManifestSource, PlanLimits, attach_manifests, parse_plan};
use cutover_workflows::status::RolloutState;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use serde_json::json;

const MANIFEST: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  replicas: 2\n  selector:\n    matchLabels: { app: shop }\n  template:\n    metadata:\n      labels: { app: shop }\n    spec:\n      containers:\n        - name: app\n";

fn plan_text(version: usize) -> String {
    format!(
        "service: shop\nenvironment: bench\nversion: \"{version}.0.0\"\ntarget: {{ driver: kubernetes, namespace: bench }}\nsteps:\n  - name: deploy\n    kind: deploy\n    strategy: rolling\n    manifests: [shop.yaml]\n    image: registry.example.com/shop\n    rollback_window: 0s\n"
    )
}

/// Applies `image` to Deployment `bare` and waits, with one watch, until it has rolled out.
async fn bare_apply(client: &Client, image: &str) -> anyhow::Result<f64> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), "bench");
    let started = Instant::now();
    let object = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bare"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "bare"}},
            "template": {"metadata": {"labels": {"app": "bare"}}, "spec": {"containers": [{"name": "app", "image": image}]}}},
    });
    let applied = api
        .patch(
            "bare",
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&object),
        )
        .await?;
    let generation = applied.metadata.generation.unwrap_or(0);
    let mut events =
        watcher::watcher(api, watcher::Config::default().fields("metadata.name=bare")).boxed();
    while let Some(event) = events.next().await {
        if let Ok(Event::Apply(d) | Event::InitApply(d)) = event
            && let Some(s) = &d.status
            && s.observed_generation.unwrap_or(0) >= generation
            && s.updated_replicas == Some(2)
            && s.available_replicas == Some(2)
            && s.replicas == Some(2)
        {
            return Ok(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    anyhow::bail!("the watch ended")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs = arg("runs", 20, 1);
    let plane = ControlPlane::start().await?;
    let admin = plane.client().await?;
    let ns = serde_json::from_value(json!({"metadata": {"name": "bench"}}))?;
    Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    // The worker acts as `cutover-driver` with the ClusterRole of k8s/base, so the audit log
    // tells its requests from the controllers' and the kubelet stand-in's.
    let role = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../k8s/base/driver-clusterrole.yaml"),
    )?;
    let role: serde_json::Value = serde_json::to_value(serde_yaml_like(&role)?)?;
    Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &serde_json::from_value(role)?)
        .await?;
    let binding = json!({
        "metadata": {"name": "driver", "namespace": "bench"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cutover-driver"},
        "subjects": [{"kind": "User", "name": "cutover-driver", "apiGroup": "rbac.authorization.k8s.io"}],
    });
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(admin.clone(), "bench")
        .create(&PostParams::default(), &serde_json::from_value(binding)?)
        .await?;
    let _kubelet = Kubelet::start(admin.clone(), "bench");

    let server = DevServer::start_reachable().await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("driver.kubeconfig");
    plane.driver_kubeconfig(&kubeconfig)?;
    let queue = unique_queue("bench-kube");
    let mut command = std::process::Command::new(bin("cutover-worker"));
    command
        .args(["--address", &server.address, "--task-queue", &queue])
        .env("KUBECONFIG", &kubeconfig);
    let _worker = WorkerProcess::spawn_command(command, dir.path())?;

    let mut steps = Vec::new();
    let mut bare = Vec::new();
    let mut rollouts = Vec::new();
    let mut requests: BTreeMap<(String, String), usize> = BTreeMap::new();
    for v in 0..=runs {
        let mut plan = parse_plan(&plan_text(v + 1), PlanLimits::default())
            .map_err(|d| anyhow::anyhow!("{d:?}"))?;
        attach_manifests(&mut plan, |s| match s {
            ManifestSource::File(_) => Ok(MANIFEST.to_owned()),
            ManifestSource::Kustomize(_) => Err("none".to_owned()),
        })
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let before = plane.requests_by("cutover-driver").len();
        let started = Instant::now();
        let id = cutover_client::start_rollout(server.client(), &plan, &queue, None)
            .await?
            .workflow_id;
        let summary = outcome(server.client(), &id)
            .await
            .map_err(|e| anyhow::anyhow!("{id}: {e:?}"))?;
        anyhow::ensure!(summary.outcome == RolloutState::Succeeded, "{summary:?}");
        // The floor, interleaved so both see the same cluster state.
        let floor = bare_apply(&admin, &format!("registry.example.com/bare:{v}")).await?;
        if v == 0 {
            continue;
        }
        bare.push(floor);
        rollouts.push(started.elapsed().as_secs_f64() * 1000.0);
        if let Some(ms) = summary
            .steps
            .iter()
            .find(|s| s.name == "deploy")
            .and_then(|s| s.duration_ms)
        {
            steps.push(ms as f64);
        }
        // The audit log is written asynchronously; the next rollout's count includes any
        // stragglers, so the total over all runs is exact.
        for r in plane.requests_by("cutover-driver").into_iter().skip(before) {
            *requests.entry(r).or_default() += 1;
        }
    }
    println!("rolling deploy of 2 replicas, kubelet stand-in ready at once, {runs} runs");
    report("kube-rs apply → rolled out (one SSA, one watch)", &mut bare);
    report("Cutover deploy step (deploy.rolling activity)", &mut steps);
    report(
        "Cutover rollout, start → end (lock, step, record)",
        &mut rollouts,
    );
    let total: usize = requests.values().sum();
    println!(
        "API requests by the driver per rollout: {:.1}",
        total as f64 / runs as f64
    );
    for ((verb, resource), n) in &requests {
        println!("  {verb:<6} {resource:<14} {:.1}", *n as f64 / runs as f64);
    }
    Ok(())
}

/// The ClusterRole file is YAML; the bench reads it with the plan toolkit's YAML reader.
fn serde_yaml_like(text: &str) -> anyhow::Result<serde_json::Value> {
    let node = cutover_workflows::plan::syntax::parse_document(
        text,
        cutover_workflows::plan::syntax::Document {
            what: "ClusterRole",
            max_bytes: 64 * 1024,
            hint: "",
        },
        |_, root| Some(cutover_workflows::plan::syntax::to_json(root)),
    )
    .map_err(|d| anyhow::anyhow!("{d:?}"))?;
    Ok(node)
}
