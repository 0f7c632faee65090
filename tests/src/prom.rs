//! A real Prometheus per test: its own config, data directory and loopback port, scraping the
//! given targets every second; killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    _dir: tempfile::TempDir,
    /// Its base URL, e.g. `http://127.0.0.1:40123`.
    pub address: String,
}

impl Prometheus {
    /// Starts Prometheus scraping `/metrics` on each of `targets` (`host:port`) every second,
    /// and waits until it is ready.
    pub async fn start(targets: &[String]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("cutover-prom").tempdir()?;
        let port = crate::free_port()?;
        let list = targets
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: [{list}]\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("log"))?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting `prometheus` (apt-get install prometheus; scripts/setup does)")?;
        let me = Self {
            child,
            _dir: dir,
            address: format!("http://127.0.0.1:{port}"),
        };
        let ready = format!("{}/-/ready", me.address);
        crate::wait_for(Duration::from_secs(30), "Prometheus to be ready", || {
            let ready = ready.clone();
            async move {
                let ok = reqwest::get(&ready)
                    .await
                    .is_ok_and(|r| r.status().is_success());
                ok.then_some(())
            }
        })
        .await?;
        Ok(me)
    }

    /// Runs an instant query and returns the first sample's value, if any.
    pub async fn value(&self, query: &str) -> Option<f64> {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.address))
            .query(&[("query", query)])
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.ok()?).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
