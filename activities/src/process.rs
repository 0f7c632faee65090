//! Running a command the way a runbook step needs: in its own process group, output streamed
//! line by line into the worker log, heartbeats while it runs, and the whole group killed on
//! cancellation.

use cutover_client::poll;
use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cutover_workflows::contracts::StepRef;
use cutover_workflows::plan::CommandSpec;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use temporalio_sdk::activities::ActivityContext;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tracing::{info, warn};

use crate::error::StepFailure;
use crate::secrets::Secrets;

/// Lines of stderr kept for the failure message.
const STDERR_TAIL: usize = 20;
/// Longest line kept in the tail; longer ones are cut.
const MAX_LINE: usize = 1000;
/// How long a cancelled process group gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// What a finished command left behind.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Lines written to stdout and stderr.
    pub(crate) lines: u64,
    /// The directory it ran in, for resolving relative artifact paths.
    pub(crate) workdir: PathBuf,
}

/// Runs `spec` to completion, heartbeating every `beat`.
///
/// # Errors
///
/// `CommandFailed` with the exit status and the last 20 lines of stderr; `CommandNotFound`,
/// `WorkdirMissing`, `SecretUnavailable` when it cannot start; `Cancelled` once the process
/// group is gone after a cancellation.
#[tracing::instrument(
    name = "command",
    skip_all,
    fields(command = %spec.command, step = %step.step, attempt = step.attempt, rollout = %step.rollout)
)]
pub(crate) async fn run(
    ctx: &ActivityContext,
    step: &StepRef,
    spec: &CommandSpec,
) -> Result<Finished, StepFailure> {
    let secrets = Secrets::resolve(&spec.secret_env)?;
    let workdir = resolve_workdir(spec.workdir.as_deref())?;
    let mut command = Command::new(&spec.command);
    command
        .args(&spec.args)
        .current_dir(&workdir)
        .envs(&spec.env)
        .envs(secrets.iter())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so cancellation can kill everything it started.
        .process_group(0)
        .kill_on_drop(true);
    die_with_worker(&mut command);
    let mut child = command.spawn().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            StepFailure::CommandNotFound {
                command: spec.command.clone(),
                source,
            }
        }
        _ => StepFailure::io(format!("starting `{}`", spec.command), source),
    })?;
    let pid = child.id().map(|p| Pid::from_raw(p as i32));
    info!(rollout = %step.rollout, step = %step.step, attempt = step.attempt, pid = ?pid, command = %spec.command, "started");

    let outcome = supervise(ctx, step, &mut child, &secrets).await;
    match outcome {
        Supervised::Exited {
            status,
            lines,
            tail,
        } => {
            if status.success() {
                info!(rollout = %step.rollout, step = %step.step, lines, "finished");
                return Ok(Finished { lines, workdir });
            }
            let status = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exited with code {code}"),
                (None, Some(sig)) => format!(
                    "was killed by signal {}",
                    Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.to_string())
                ),
                _ => "ended abnormally".to_owned(),
            };
            let tail = if tail.is_empty() {
                String::new()
            } else {
                format!(
                    "; last {} line(s) of stderr:\n{}",
                    tail.len(),
                    Vec::from(tail).join("\n")
                )
            };
            Err(StepFailure::CommandFailed {
                command: spec.command.clone(),
                status,
                tail,
            })
        }
        Supervised::Cancelled => {
            if let Some(pid) = pid {
                kill_group(pid, &mut child).await;
            }
            warn!(rollout = %step.rollout, step = %step.step, "cancelled; process group killed");
            Err(StepFailure::Cancelled)
        }
        Supervised::Failed(e) => {
            if let Some(pid) = pid {
                kill_group(pid, &mut child).await;
            }
            Err(e)
        }
    }
}

enum Supervised {
    Exited {
        status: std::process::ExitStatus,
        lines: u64,
        tail: VecDeque<String>,
    },
    Cancelled,
    Failed(StepFailure),
}

/// Streams output, heartbeats, and watches for cancellation until the child exits.
async fn supervise(
    ctx: &ActivityContext,
    step: &StepRef,
    child: &mut Child,
    secrets: &Secrets,
) -> Supervised {
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Supervised::Failed(StepFailure::io(
            "capturing output",
            std::io::Error::other("no pipes"),
        ));
    };
    let mut stdout = BufReader::new(stdout).lines();
    let mut stderr = BufReader::new(stderr).lines();
    let (mut out_open, mut err_open) = (true, true);
    let mut tail = VecDeque::with_capacity(STDERR_TAIL);
    let mut lines = 0u64;
    let mut beat = tokio::time::interval(crate::heartbeat::interval(ctx));
    let mut exit = None;
    loop {
        if exit.is_some() && !out_open && !err_open {
            break;
        }
        tokio::select! {
            line = stdout.next_line(), if out_open => match line {
                Ok(Some(line)) => {
                    lines += 1;
                    info!(rollout = %step.rollout, step = %step.step, stream = "stdout", "{}", secrets.redact(&line));
                }
                _ => out_open = false,
            },
            line = stderr.next_line(), if err_open => match line {
                Ok(Some(line)) => {
                    lines += 1;
                    let line = secrets.redact(&line);
                    info!(rollout = %step.rollout, step = %step.step, stream = "stderr", "{line}");
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line.chars().take(MAX_LINE).collect());
                }
                _ => err_open = false,
            },
            status = child.wait(), if exit.is_none() => match status {
                Ok(status) => exit = Some(status),
                Err(e) => return Supervised::Failed(StepFailure::io("waiting for the command", e)),
            },
            _ = beat.tick() => {
                // Heartbeats tell Temporal this worker is alive, and carry cancellation back.
                let _ = ctx.record_heartbeat(lines).await;
            }
            () = ctx.cancelled() => return Supervised::Cancelled,
        }
    }
    match exit {
        Some(status) => Supervised::Exited {
            status,
            lines,
            tail,
        },
        None => Supervised::Failed(StepFailure::io(
            "waiting for the command",
            std::io::Error::other("no exit status"),
        )),
    }
}

/// SIGTERM to the whole group, then SIGKILL after a grace period.
async fn kill_group(pid: Pid, child: &mut Child) {
    let _ = killpg(pid, Signal::SIGTERM);
    if tokio::time::timeout(KILL_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    // Children of the command that outlived it are in the group too. Signals are delivered
    // asynchronously: wait until no live member is left, so "cancelled" means gone.
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = poll::until(KILL_GRACE, Duration::from_millis(10), || async {
        (!group_has_live_members(pid.as_raw())).then_some(())
    })
    .await;
}

/// Whether any process of process group `pgid` is alive (zombies excluded: they are dead and
/// only wait to be reaped).
fn group_has_live_members(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // After the command name: state, ppid, pgrp, ...
                let mut fields = stat
                    .rsplit(')')
                    .next()
                    .unwrap_or_default()
                    .split_whitespace();
                let state = fields.next().unwrap_or("Z");
                let pgrp = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
                state != "Z" && state != "X" && pgrp == Some(pgid)
            })
        })
}

fn resolve_workdir(workdir: Option<&str>) -> Result<PathBuf, StepFailure> {
    let cwd = std::env::current_dir()
        .map_err(|e| StepFailure::io("reading the worker's directory", e))?;
    let dir = match workdir {
        Some(w) => cwd.join(w),
        None => cwd,
    };
    if !Path::new(&dir).is_dir() {
        return Err(StepFailure::WorkdirMissing {
            path: dir.display().to_string(),
        });
    }
    Ok(dir)
}

/// Ask Linux to SIGKILL the command if the worker dies, so a worker killed with SIGKILL does
/// not leave a build running that its replacement would then race with.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_worker(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
    // is async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_worker(_command: &mut Command) {}
