//! The kubelet's log endpoint, for the kubelet stand-in: `kubectl logs` and the driver's
//! `pods/log` requests go to the API server, which finds the pod's node and asks that node's
//! kubelet at `https://ADDRESS:PORT/containerLogs/NAMESPACE/POD/CONTAINER` (without a
//! `--kubelet-certificate-authority` it does not verify the kubelet's certificate). This
//! serves that path with the lines a test gave the pod's image, and registers a Node whose
//! address and kubelet port lead here, so the API server's real log proxy is exercised.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::{Path as UrlPath, Query, State};
use axum::routing::get;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// Log lines by image, and the image of each pod the stand-in has seen.
#[derive(Clone, Default)]
pub(crate) struct Logs {
    /// Image → the container's output.
    pub(crate) by_image: Arc<Mutex<HashMap<String, String>>>,
    /// Pod name → its image.
    pub(crate) pods: Arc<Mutex<HashMap<String, String>>>,
}

/// A running log endpoint; stops when dropped.
pub(crate) struct LogServer {
    /// The Node the stand-in binds its pods to.
    pub(crate) node: String,
    handle: axum_server::Handle,
    _dir: tempfile::TempDir,
}

impl Drop for LogServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Serves `logs` over HTTPS on a free loopback port and registers Node `node` there.
pub(crate) async fn start(client: &Client, node: &str, logs: Logs) -> anyhow::Result<LogServer> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    super::kube::self_signed(dir.path(), "kubelet", "kubelet-stand-in")?;
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(
        dir.path().join("kubelet.crt"),
        dir.path().join("kubelet.key"),
    )
    .await
    .context("the kubelet stand-in's certificate")?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let app = axum::Router::new()
        .route("/containerLogs/{ns}/{pod}/{container}", get(container_logs))
        .with_state(logs);
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, tls)
        .handle(handle.clone())
        .serve(app.into_make_service());
    tokio::spawn(server);

    let nodes: Api<Node> = Api::all(client.clone());
    let object: Node = serde_json::from_value(json!({"metadata": {"name": node}}))?;
    match nodes.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = json!({"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "lastHeartbeatTime": now, "lastTransitionTime": now}],
    }});
    nodes
        .patch_status(node, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(LogServer {
        node: node.to_owned(),
        handle,
        _dir: dir,
    })
}

/// `GET /containerLogs/{ns}/{pod}/{container}?tailLines=N`: the image's lines, the last N.
async fn container_logs(
    State(logs): State<Logs>,
    UrlPath((_ns, pod, _container)): UrlPath<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> String {
    let image = logs
        .pods
        .lock()
        .ok()
        .and_then(|p| p.get(&pod).cloned())
        .unwrap_or_default();
    let text = logs
        .by_image
        .lock()
        .ok()
        .and_then(|l| l.get(&image).cloned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = query
        .get("tailLines")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(lines.len());
    let mut out = lines[lines.len().saturating_sub(tail)..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}
