//! The service's own nginx: its config and prefix under `<root>/<service>/nginx`, one worker
//! process (so canary weights hold exactly across all requests), an upstream include that is
//! rewritten atomically, and `nginx -s reload` to apply it.
//!
//! A reload is asynchronous: nginx starts new workers with the new upstream and lets the old
//! ones finish their requests. [`Nginx::apply`] waits until every old worker is gone, so when
//! it returns, all traffic goes where the new upstream says.

use cutover_client::poll;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::state::write_atomic;
use crate::error::StepFailure;

pub(crate) struct Nginx {
    prefix: PathBuf,
    listen: std::net::SocketAddr,
}

/// One upstream server and its weight.
pub(crate) type Server = (u16, u32);

impl Nginx {
    pub(crate) fn new(service_dir: &Path, listen: std::net::SocketAddr) -> Self {
        Self {
            prefix: service_dir.join("nginx"),
            listen,
        }
    }

    fn conf(&self) -> PathBuf {
        self.prefix.join("nginx.conf")
    }

    fn upstream(&self) -> PathBuf {
        self.prefix.join("upstream.conf")
    }

    fn pidfile(&self) -> PathBuf {
        self.prefix.join("nginx.pid")
    }

    /// Points the upstream at `servers` and makes nginx serve it, starting nginx if needed.
    /// Returns once no nginx worker with an older configuration is left.
    #[tracing::instrument(name = "nginx.reload", skip_all, fields(servers = servers.len()))]
    pub(crate) async fn apply(&self, servers: &[Server]) -> Result<(), StepFailure> {
        let body: String = servers
            .iter()
            .map(|(port, weight)| format!("server 127.0.0.1:{port} weight={weight} max_fails=0;\n"))
            .collect();
        self.apply_upstream(&body).await
    }

    /// A router's upstream: every backend (`address:port`) with its weight, the drained ones
    /// (`None`) marked `down` (nginx keeps them in the list and sends them nothing).
    #[tracing::instrument(name = "nginx.reload", skip_all, fields(backends = backends.len()))]
    pub(crate) async fn apply_backends(
        &self,
        backends: &[(String, Option<u32>)],
    ) -> Result<(), StepFailure> {
        let body: String = backends
            .iter()
            .map(|(address, weight)| match weight {
                Some(1) => format!("server {address} max_fails=0;\n"),
                Some(w) => format!("server {address} weight={w} max_fails=0;\n"),
                None => format!("server {address} down;\n"),
            })
            .collect();
        self.apply_upstream(&body).await
    }

    async fn apply_upstream(&self, body: &str) -> Result<(), StepFailure> {
        self.write_config()?;
        write_atomic(&self.upstream(), body.as_bytes(), None)?;
        match self.master() {
            None => self.start().await,
            Some(master) => {
                let old = workers(master);
                self.run(&["-s", "reload"])?;
                self.wait_workers_replaced(master, &old).await
            }
        }
    }

    fn write_config(&self) -> Result<(), StepFailure> {
        let p = self.prefix.display();
        for dir in ["logs", "tmp"] {
            std::fs::create_dir_all(self.prefix.join(dir))
                .map_err(|e| StepFailure::io(format!("creating {p}/{dir}"), e))?;
        }
        let conf = format!(
            "# Written by Cutover's host driver; changes are overwritten.
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    # No keep-alive with clients: on reload, old workers close idle keep-alive connections,
    # and a client that sends on one at that instant gets a reset. One handshake per request
    # on the host's own nginx is the price of switches that fail no request.
    keepalive_timeout 0;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    upstream app {{
        include {p}/upstream.conf;
        keepalive 32;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 2s;
        }}
    }}
}}
",
            listen = self.listen
        );
        if std::fs::read_to_string(self.conf()).ok().as_deref() != Some(conf.as_str()) {
            write_atomic(&self.conf(), conf.as_bytes(), None)?;
        }
        Ok(())
    }

    fn master(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pidfile())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        // Our master names our config in its command line; a reused pid does not.
        String::from_utf8_lossy(&cmdline)
            .contains(&self.conf().display().to_string())
            .then_some(pid)
    }

    async fn start(&self) -> Result<(), StepFailure> {
        self.run(&["-t", "-q"])?;
        self.run(&[])?;
        poll::until(
            Duration::from_secs(10),
            Duration::from_millis(20),
            || async {
                self.master()
                    .is_some_and(|m| !workers(m).is_empty())
                    .then_some(())
            },
        )
        .await
        .map_err(|_| {
            StepFailure::DeployFailed(format!(
                "nginx did not start; see {}/logs/error.log",
                self.prefix.display()
            ))
        })
    }

    async fn wait_workers_replaced(&self, master: i32, old: &[i32]) -> Result<(), StepFailure> {
        poll::until(
            Duration::from_secs(30),
            Duration::from_millis(20),
            || async {
                let now = workers(master);
                let fresh = now.iter().any(|w| !old.contains(w));
                let stale = now.iter().any(|w| old.contains(w));
                (fresh && !stale).then_some(())
            },
        )
        .await
        .map_err(|_| {
            StepFailure::DeployFailed(format!(
                "nginx did not finish reloading within 30s; see {}/logs/error.log",
                self.prefix.display()
            ))
        })
    }

    fn run(&self, args: &[&str]) -> Result<(), StepFailure> {
        let out = Command::new(binary())
            .args(args)
            .arg("-c")
            .arg(self.conf())
            .arg("-p")
            .arg(&self.prefix)
            .output()
            .map_err(|source| StepFailure::CommandNotFound {
                command: "nginx".to_owned(),
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(StepFailure::DeployFailed(format!(
                "nginx {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

/// nginx on PATH, else Debian's /usr/sbin/nginx.
fn binary() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("nginx"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"))
}

/// Live (non-zombie) children of `master`: its worker processes.
fn workers(master: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                let rest = s.rsplit(')').next().unwrap_or_default();
                let mut fields = rest.split_whitespace();
                let state = fields.next().unwrap_or("Z");
                let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                ppid == master && state != "Z"
            })
        })
        .collect()
}
