//! Helpers for tests of the host driver: port blocks, a load generator, and a guard that
//! stops every instance and nginx a test started, whatever happens.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// `n` consecutive free ports, plus one more free port apart from them.
pub fn port_block(n: u16) -> anyhow::Result<(u16, u16)> {
    Ok((crate::free_ports(n)?, crate::free_port()?))
}

/// Stops the instances (by pidfile) and the nginx of `<root>/<service>` on drop.
pub struct HostGuard {
    /// `<root>/<service>`.
    pub dir: PathBuf,
}

impl HostGuard {
    /// Guards `<root>/<service>`.
    pub fn new(root: &Path, service: &str) -> Self {
        Self {
            dir: root.join(service),
        }
    }

    /// `(version, port, live)` of every pidfile.
    pub fn pidfiles(&self) -> Vec<(String, u16, bool)> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("run")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let (version, port) = name.strip_suffix(".pid")?.rsplit_once('@')?;
                Some((
                    version.to_owned(),
                    port.parse().ok()?,
                    ours(&e.path()).is_some(),
                ))
            })
            .collect()
    }
}

/// The pid of a pidfile (`<pid> <start time>`) if that very process still runs.
fn ours(pidfile: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pidfile).ok()?;
    let mut fields = text.split_whitespace();
    let pid: i32 = fields.next()?.parse().ok()?;
    let started = fields.next()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let now = stat.rsplit(')').next()?.split_whitespace().nth(19)?;
    (alive(pid) && now == started).then_some(pid)
}

/// Alive and not a zombie.
pub fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or_default()
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
}

/// Pids of live processes whose environment has `CUTOVER_SERVICE=<service>`.
pub fn service_processes(service: &str) -> Vec<i32> {
    let needle = format!("CUTOVER_SERVICE={service}\0");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| String::from_utf8_lossy(&env).contains(&needle))
                && alive(*pid)
        })
        .collect()
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.dir.join("run")) {
            for e in entries.flatten() {
                if let Some(pid) = ours(&e.path()) {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        // Only our nginx: its command line names our config.
        let nginx = std::fs::read_to_string(self.dir.join("nginx/nginx.pid"))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    String::from_utf8_lossy(&c).contains(&self.dir.display().to_string())
                })
            });
        if let Some(pid) = nginx {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
}

/// What a load loop saw.
#[derive(Debug, Default)]
pub struct Load {
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed (no response, or a status other than 200).
    pub failures: u64,
    /// Version → responses.
    pub versions: std::collections::BTreeMap<String, u64>,
    /// The first few failures, described.
    pub errors: Vec<String>,
}

/// Sends `GET /version` through `url` in a loop, from `clients` concurrent clients, until
/// `stop` is set.
pub async fn load(url: String, clients: usize, stop: Arc<AtomicBool>) -> Load {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url, stop) = (http.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Load::default();
                while !stop.load(Ordering::Relaxed) {
                    seen.requests += 1;
                    match http.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            let body = r.text().await.unwrap_or_default();
                            let v: serde_json::Value =
                                serde_json::from_str(&body).unwrap_or_default();
                            let version = v["version"].as_str().unwrap_or("?").to_owned();
                            *seen.versions.entry(version).or_default() += 1;
                        }
                        Ok(r) => {
                            seen.failures += 1;
                            if seen.errors.len() < 5 {
                                seen.errors.push(format!("status {}", r.status()));
                            }
                        }
                        Err(e) => {
                            seen.failures += 1;
                            if seen.errors.len() < 5 {
                                seen.errors.push(e.to_string());
                            }
                        }
                    }
                }
                seen
            })
        })
        .collect();
    let mut total = Load::default();
    for t in tasks {
        if let Ok(seen) = t.await {
            total.requests += seen.requests;
            total.failures += seen.failures;
            total.errors.extend(seen.errors);
            for (v, n) in seen.versions {
                *total.versions.entry(v).or_default() += n;
            }
        }
    }
    total
}
