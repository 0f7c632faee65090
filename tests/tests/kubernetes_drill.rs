//! A DR drill whose application runs on Kubernetes: its pods read the database URL from a
//! Secret key, so the drill's switch writes the new primary's URL into that Secret and
//! restarts the Deployment. Real PostgreSQL primary and standby, real control plane (see
//! `tests/src/kube.rs`), real worker.
//!
//! No kubelet runs here, so two of its jobs are played by the test: `Kubelet` marks the
//! Deployment's pods Ready, and a secret-volume stand-in projects the Secret's key into the
//! file the example service (running outside the cluster, in the pod's place) reads its
//! database URL from, as a kubelet refreshes a mounted Secret. The drill's checks then prove
//! the app really follows the Secret to the new primary.

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use cutover_tests::drill::scene;
use cutover_tests::kube::{ControlPlane, Kubelet};
use cutover_tests::{DevServer, Harness, WorkerProcess, bin, unique_queue, wait_for};
use cutover_workflows::drill::{DrillWorkflow, parse_drill};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ListParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as Watched};
use kube::{Api, Client};
use serde_json::json;
use temporalio_client::WorkflowGetResultOptions;

const NS: &str = "hello";

/// Writes the Secret's `DATABASE_URL` to `file` whenever it changes, as a kubelet refreshes a
/// Secret mounted as a volume. Stops when the returned task is aborted.
fn project_secret(client: Client, file: std::path::PathBuf) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let secrets: Api<Secret> = Api::namespaced(client, NS);
        let config = watcher::Config::default().fields("metadata.name=hello-db");
        let mut stream = watcher::watcher(secrets, config).default_backoff().boxed();
        while let Some(event) = stream.next().await {
            let (Ok(Watched::Apply(s)) | Ok(Watched::InitApply(s))) = event else {
                continue;
            };
            if let Some(url) = s.data.and_then(|d| d.get("DATABASE_URL").cloned()) {
                let tmp = file.with_extension("projected");
                if std::fs::write(&tmp, &url.0).is_ok() {
                    let _ = std::fs::rename(&tmp, &file);
                }
            }
        }
    })
}

#[tokio::test]
async fn a_drill_switches_the_apps_secret_and_restarts_its_deployment() -> anyhow::Result<()> {
    let plane = ControlPlane::start().await?;
    let client = plane.client().await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let _kubelet = Kubelet::start(client.clone(), NS);

    let server = DevServer::start().await?;
    let dir = tempfile::tempdir()?;
    let queue = unique_queue("kube-drill");
    let mut command = Command::new(bin("cutover-worker"));
    command
        .args(["--address", &server.address, "--task-queue", &queue])
        .env("KUBECONFIG", &plane.kubeconfig);
    let worker = WorkerProcess::spawn_command(command, dir.path())?;
    let h = Harness {
        server,
        dir,
        queue,
        worker,
    };
    let s = scene(&h, "switchover", true).await?;
    let primary_url = s.primary.url("postgres");
    let standby_url = s.standby.url("postgres");

    // The app's Secret and Deployment, as its own manifests would have made them.
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "hello-db"},
        "stringData": {"DATABASE_URL": primary_url},
    }))?;
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await?;
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "hello"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "hello"}},
          "template": {"metadata": {"labels": {"app": "hello"}},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/hello:1"}]}}},
    }))?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), NS);
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    let _projection = project_secret(client.clone(), s.endpoint.clone());
    let replica_sets = || async {
        Api::<ReplicaSet>::namespaced(client.clone(), NS)
            .list(&ListParams::default())
            .await
            .map(|l| l.items.len())
            .ok()
    };
    wait_for(Duration::from_secs(30), "the first ReplicaSet", || async {
        (replica_sets().await? == 1).then_some(())
    })
    .await?;

    let endpoint_line = s
        .plan
        .lines()
        .find(|l| l.starts_with("traffic:"))
        .unwrap_or_default()
        .to_owned();
    let plan_text = s.plan.replace(
        &endpoint_line,
        &format!("traffic: {{ kubernetes: {{ namespace: {NS}, secret: hello-db, key: DATABASE_URL, restart: hello, rollout_within: 60s }} }}"),
    );
    let plan = parse_drill(&plan_text).map_err(|d| anyhow::anyhow!("{d}"))?;
    let started = cutover_client::start_drill(h.client(), &plan, &h.queue).await?;
    let status = h
        .client()
        .get_workflow_handle::<DrillWorkflow>(started.workflow_id.clone())
        .get_result(WorkflowGetResultOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}\n{}", h.worker.log_text()))?;
    assert_eq!(
        status.state,
        cutover_workflows::drill::DrillState::Passed,
        "{status:?}\n{}",
        h.worker.log_text()
    );

    let secret = Api::<Secret>::namespaced(client.clone(), NS)
        .get("hello-db")
        .await?;
    let url = secret
        .data
        .and_then(|d| d.get("DATABASE_URL").cloned())
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    assert_eq!(
        url.as_deref(),
        Some(standby_url.as_str()),
        "the Secret names the new primary"
    );
    let d = deployments.get("hello").await?;
    let stamp = d
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .and_then(|a| a.get("cutover.dev/database-endpoint").cloned());
    assert!(
        stamp.is_some_and(|s| s.starts_with("hello-db@")),
        "the Deployment was restarted"
    );
    assert_eq!(replica_sets().await, Some(2), "restarted once");
    // The new primary took the drill's writes through the app.
    let rows = s.standby.psql("postgres", "SELECT count(*) FROM items")?;
    assert_ne!(rows.trim(), "0", "the app wrote to the new primary");

    // The history holds secret references, never the URL itself.
    let history = h
        .client()
        .get_workflow_handle::<temporalio_client::UntypedWorkflow>(started.workflow_id.clone())
        .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::default())
        .to_json()
        .await?;
    let text = String::from_utf8_lossy(&history).into_owned();
    let mut decoded = text.clone();
    for piece in text.split('"') {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(piece) {
            decoded.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    assert!(!decoded.contains(&standby_url), "the URL entered history");
    cutover_tests::replays(h.client(), &started.workflow_id, "kube-drill").await?;
    Ok(())
}
