//! One instance of a release: a detached process on its own port, with a pidfile and a log.
//!
//! Instances are started in their own process group and are *not* tied to the worker's life:
//! a worker restart must not take the service down. Their pidfiles are how a later attempt
//! (on any worker of this host) finds, reuses or stops them.

use cutover_client::poll;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::time::Instant;

use super::state::Release;
use crate::error::StepFailure;
use crate::secrets::Secrets;

/// Where an instance's pidfile and log live.
pub(crate) struct InstancePaths {
    pub(crate) pidfile: PathBuf,
    pub(crate) log: PathBuf,
}

pub(crate) fn paths(service_dir: &Path, version: &str, port: u16) -> InstancePaths {
    InstancePaths {
        pidfile: service_dir
            .join("run")
            .join(format!("{version}@{port}.pid")),
        log: service_dir
            .join("logs")
            .join(format!("{version}@{port}.log")),
    }
}

/// The pid in `pidfile` if that process is alive (not a zombie) and is the one we started.
///
/// A pidfile holds `<pid> <start time>`: pids are reused, and signalling a stranger that
/// happens to have an old instance's pid would be a disaster. The start time (in clock ticks
/// since boot, from `/proc/<pid>/stat`) tells our process from a newcomer.
pub(crate) fn live_pid(pidfile: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pidfile).ok()?;
    let mut fields = text.split_whitespace();
    let pid: i32 = fields.next()?.parse().ok()?;
    let started: u64 = fields.next()?.parse().ok()?;
    (alive(pid) && start_time(pid) == Some(started)).then_some(pid)
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks since boot.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or_default()
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Whether something already listens on `port` (on the loopback).
pub(crate) fn port_in_use(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
}

/// Adopts an instance of `version` of `service` on `port` that runs without a pidfile: a
/// worker killed between starting it and writing its pidfile leaves one holding the port.
/// It is recognised by the environment Cutover gave it and by sharing this worker's network
/// namespace (another host's instance on the same machine is not ours), and its pidfile is
/// written. Returns its pid.
pub(crate) fn adopt_orphan(
    service_dir: &Path,
    service: &str,
    version: &str,
    port: u16,
) -> Option<i32> {
    let ours = std::fs::read_link("/proc/self/ns/net").ok()?;
    let wanted = [
        format!("CUTOVER_SERVICE={service}"),
        format!("CUTOVER_VERSION={version}"),
        format!("PORT={port}"),
    ];
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        let matches = wanted.iter().all(|w| vars.contains(&w.as_bytes()));
        let same_net = std::fs::read_link(entry.path().join("ns/net")).ok() == Some(ours.clone());
        if matches && same_net && alive(pid) {
            let started = start_time(pid)?;
            let p = paths(service_dir, version, port);
            std::fs::write(&p.pidfile, format!("{pid} {started}")).ok()?;
            return Some(pid);
        }
    }
    None
}

/// Starts `release`'s instance on `port`. The caller checked that the port is free.
pub(crate) fn spawn(
    service_dir: &Path,
    service: &str,
    release: &Release,
    port: u16,
    secrets: &Secrets,
) -> Result<i32, StepFailure> {
    let p = paths(service_dir, &release.version, port);
    for dir in [p.pidfile.parent(), p.log.parent()].into_iter().flatten() {
        std::fs::create_dir_all(dir)
            .map_err(|e| StepFailure::io(format!("creating {}", dir.display()), e))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p.log)
        .map_err(|e| StepFailure::io(format!("opening {}", p.log.display()), e))?;
    let err_log = log
        .try_clone()
        .map_err(|e| StepFailure::io("duplicating the log handle", e))?;
    let cwd = std::env::current_dir()
        .map_err(|e| StepFailure::io("reading the worker's directory", e))?;
    let workdir = release
        .start
        .workdir
        .as_deref()
        .map_or(cwd.clone(), |w| cwd.join(w));
    let mut cmd = Command::new(&release.start.command);
    // An instance gets only what the plan gives it: the worker's own environment (the ledger
    // URL, the PostgreSQL admin URL, other services' secrets) must not be readable in the
    // app's /proc/<pid>/environ. A minimal PATH, HOME and LANG first, so the plan can
    // override them.
    cmd.args(&release.start.args)
        .current_dir(&workdir)
        .env_clear()
        .envs(BASE_ENV)
        .env("HOME", &workdir)
        .envs(shared_env(service_dir))
        .envs(&release.start.env)
        .envs(secrets.iter())
        .env("PORT", port.to_string())
        .env("CUTOVER_SERVICE", service)
        .env("CUTOVER_VERSION", &release.version)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log);
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            StepFailure::CommandNotFound {
                command: release.start.command.clone(),
                source,
            }
        }
        _ => StepFailure::io(format!("starting `{}`", release.start.command), source),
    })?;
    let pid = child.id() as i32;
    let started = start_time(pid).unwrap_or_default();
    std::fs::write(&p.pidfile, format!("{pid} {started}"))
        .map_err(|e| StepFailure::io(format!("writing {}", p.pidfile.display()), e))?;
    // Reap the instance if it exits while this worker lives, so it never lingers as a zombie
    // that looks alive. If the worker dies first, init adopts and reaps it.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(pid)
}

/// What every instance starts with before the plan's variables (which may override them).
const BASE_ENV: [(&str, &str); 2] = [
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("LANG", "C.UTF-8"),
];

/// `KEY=VALUE` lines of `<service>/shared/env`, written by `provision`.
fn shared_env(service_dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(service_dir.join("shared").join("env"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .collect()
}

/// SIGTERM to the instance's process group, SIGKILL after `grace`, pidfile removed.
pub(crate) async fn stop(pidfile: &Path, grace: Duration) {
    if let Some(pid) = live_pid(pidfile) {
        let group = Pid::from_raw(pid);
        let _ = killpg(group, Signal::SIGTERM);
        let exited = poll::until(grace, Duration::from_millis(50), || async {
            (!alive(pid)).then_some(())
        })
        .await;
        if exited.is_err() {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
    let _ = std::fs::remove_file(pidfile);
}

/// Waits until the instance answers its health check, or says why not.
pub(crate) async fn wait_healthy(
    http: &reqwest::Client,
    release: &Release,
    port: u16,
    pidfile: &Path,
    log: &Path,
) -> Result<(), StepFailure> {
    let url = format!("http://127.0.0.1:{port}{}", release.health.path);
    let deadline = Instant::now() + release.health.timeout;
    let mut last;
    loop {
        if live_pid(pidfile).is_none() {
            return Err(StepFailure::DeployFailed(format!(
                "instance {}@{port} exited before it became healthy{}",
                release.version,
                log_tail(log)
            )));
        }
        let limit = release.health.request_timeout();
        match http.get(&url).timeout(limit).send().await {
            Ok(r) if r.status().as_u16() == release.health.expect_status => return Ok(()),
            Ok(r) => last = answered(r).await,
            Err(e) if e.is_connect() => last = "connection refused".to_owned(),
            Err(e) if e.is_timeout() => {
                last = format!(
                    "no answer within {} (health.request_timeout)",
                    humantime::format_duration(limit)
                )
            }
            Err(e) => last = e.to_string(),
        }
        if Instant::now() + release.health.interval > deadline {
            return Err(StepFailure::DeployFailed(format!(
                "instance {}@{port} did not pass its health check (GET {url} expecting {}) within {}: {last}{}",
                release.version,
                release.health.expect_status,
                humantime::format_duration(release.health.timeout),
                log_tail(log)
            )));
        }
        tokio::time::sleep(release.health.interval).await;
    }
}

/// An answer that was not the expected status, as the instance gave it: `got 503: database
/// unreachable` (the body's first line, clipped, when it has one).
async fn answered(r: reqwest::Response) -> String {
    let status = r.status();
    let body = tokio::time::timeout(Duration::from_secs(1), r.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let line: String = body
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if line.is_empty() {
        format!("got {status}")
    } else {
        format!("got {status}: {}", line.trim())
    }
}

/// The last lines of an instance's log, for error messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(10)..];
    if tail.is_empty() {
        String::new()
    } else {
        format!("; last lines of {}:\n{}", log.display(), tail.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process holding `port` with the environment Cutover gives an instance of `version`.
    fn holder(port: u16, version: &str) -> std::process::Child {
        let script = format!(
            "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',{port}))\ns.listen()\nprint('ok',flush=True)\ntime.sleep(30)"
        );
        let mut child = Command::new("python3")
            .args(["-c", &script])
            .env("CUTOVER_SERVICE", "shop")
            .env("CUTOVER_VERSION", version)
            .env("PORT", port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).expect("read");
        assert_eq!(line.trim(), "ok");
        child
    }

    #[test]
    fn an_instance_left_without_a_pidfile_is_adopted_and_a_strangers_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let mut orphan = holder(port, "2.0.0");
        let p = paths(dir.path(), "2.0.0", port);
        std::fs::create_dir_all(p.pidfile.parent().expect("run dir")).expect("mkdir");
        assert!(port_in_use(port));
        assert_eq!(
            adopt_orphan(dir.path(), "shop", "1.0.0", port),
            None,
            "another version"
        );
        assert_eq!(
            adopt_orphan(dir.path(), "cart", "2.0.0", port),
            None,
            "another service"
        );
        let pid = adopt_orphan(dir.path(), "shop", "2.0.0", port);
        assert_eq!(pid, Some(orphan.id() as i32));
        assert_eq!(live_pid(&p.pidfile), pid, "its pidfile now says so");
        let _ = orphan.kill();
        let _ = orphan.wait();
    }
}
