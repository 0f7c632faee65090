//! A real `cutover serve` process for the webhook tests, and signing the way providers do.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The secrets the receivers in tests are given.
pub const GITHUB_SECRET: &str = "It's a Secret to Everybody";
/// See [`GITHUB_SECRET`].
pub const GITLAB_TOKEN: &str = "gitlab-token-for-tests";
/// See [`GITHUB_SECRET`].
pub const GENERIC_SECRET: &str = "generic-secret-for-tests";

/// A running receiver.
pub struct Receiver {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its log file.
    pub log: PathBuf,
}

impl Receiver {
    /// Starts `cutover serve` in `cwd` with `rules`, the ledger at `ledger`, talking to the
    /// Temporal server at `address` on `task_queue`, plus `extra` flags; waits for `/healthz`.
    pub async fn start(
        cwd: &Path,
        rules: &Path,
        ledger: &str,
        address: &str,
        task_queue: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        Self::start_with_env(cwd, rules, ledger, address, task_queue, extra, &[]).await
    }

    /// Like [`Receiver::start`], with extra environment variables (e.g. `OTEL_*`).
    pub async fn start_with_env(
        cwd: &Path,
        rules: &Path,
        ledger: &str,
        address: &str,
        task_queue: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let port = crate::free_port()?;
        let log = cwd.join(format!("serve-{port}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(crate::bin("cutover"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--rules")
            .arg(rules)
            .args(["--ledger", ledger, "--task-queue", task_queue])
            .args(extra)
            .current_dir(cwd)
            .env("CUTOVER_TEMPORAL_ADDRESS", address)
            .env(
                "CUTOVER_GITHUB_SECRET",
                format!("an-old-secret\n{GITHUB_SECRET}"),
            )
            .env("CUTOVER_GITLAB_TOKEN", GITLAB_TOKEN)
            .env("CUTOVER_GENERIC_SECRET", GENERIC_SECRET)
            .env_remove("TEMPORAL_ADDRESS")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting cutover serve")?;
        let me = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let health = format!("{}/healthz", me.url);
        let log_path = me.log.clone();
        crate::wait_for(
            Duration::from_secs(30),
            "cutover serve to answer /healthz",
            || {
                let health = health.clone();
                let log_path = log_path.clone();
                async move {
                    let ok = reqwest::get(&health)
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if !ok
                        && std::fs::read_to_string(&log_path)
                            .unwrap_or_default()
                            .contains("error:")
                    {
                        panic!(
                            "cutover serve failed to start:\n{}",
                            std::fs::read_to_string(&log_path).unwrap_or_default()
                        );
                    }
                    ok.then_some(())
                }
            },
        )
        .await?;
        Ok(me)
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, the parts concatenated).
pub fn sign(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    for p in parts {
        mac.update(p);
    }
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A GitHub push delivery of `branch` at `sha` to `repository`.
pub fn github_push(repository: &str, branch: &str, sha: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ref": format!("refs/heads/{branch}"),
        "before": "0000000000000000000000000000000000000000",
        "after": sha,
        "repository": { "full_name": repository },
        "pusher": { "name": "octocat" },
    }))
    .expect("json")
}

/// Posts a signed GitHub delivery.
pub async fn post_github(
    http: &reqwest::Client,
    url: &str,
    event: &str,
    delivery: &str,
    body: Vec<u8>,
) -> anyhow::Result<reqwest::Response> {
    let signature = sign(GITHUB_SECRET, &[&body]);
    Ok(http
        .post(format!("{url}/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await?)
}
