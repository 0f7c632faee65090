//! `cutover host stop`: a service's instances and its nginx stopped on this machine, under the
//! deploy lock, and its deploy state told that nothing serves — so the next deploy starts from
//! scratch instead of shifting traffic away from processes that are gone.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::instance::{live_pid, stop};
use super::state::{DeployState, lock};
use crate::error::StepFailure;

/// What a teardown stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Teardown {
    /// Instances stopped, as `version@port`.
    pub instances: Vec<String>,
    /// Whether a running nginx of the service was stopped.
    pub nginx: bool,
    /// The environment the service directory belongs to, as its deploy state says.
    pub environment: Option<String>,
}

/// Stops every instance of `service` under `root` (SIGTERM to its process group, SIGKILL
/// after `grace`) and the service's nginx, then records that nothing serves. With
/// `environment`, refuses a service directory that belongs to another one. Nothing running is
/// not an error: the result says what was stopped.
///
/// # Errors
/// The service directory is not there, belongs to another environment, or cannot be read.
pub async fn teardown(
    root: &Path,
    service: &str,
    environment: Option<&str>,
    grace: Duration,
) -> Result<Teardown, StepFailure> {
    let dir = root.join(service);
    if !dir.join("deploy.json").exists() {
        return Err(StepFailure::InvalidInput(format!(
            "{} has no deploy state: no release of {service} was deployed under {}",
            dir.display(),
            root.display()
        )));
    }
    let _guard = lock(&dir).await?;
    let mut state = DeployState::load(&dir)?;
    if let (Some(want), Some(have)) = (environment, state.environment.as_deref())
        && want != have
    {
        return Err(StepFailure::InvalidInput(format!(
            "{} belongs to environment {have}, not {want}; nothing was stopped",
            dir.display()
        )));
    }
    let mut out = Teardown {
        environment: state.environment.clone(),
        ..Teardown::default()
    };
    let run = dir.join("run");
    let mut pidfiles: Vec<_> = std::fs::read_dir(&run)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pid"))
                .collect()
        })
        .unwrap_or_default();
    pidfiles.sort();
    for pidfile in pidfiles {
        if live_pid(&pidfile).is_some() {
            let name = pidfile
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.instances.push(name);
        }
        stop(&pidfile, grace).await;
    }
    out.nginx = stop_nginx(&dir.join("nginx"), grace).await;
    // Nothing serves: what served becomes `previous` (a rollback can start it again).
    if let Some(current) = state.current.take() {
        state.previous = Some(current);
    }
    state.candidate = None;
    state.save(&dir)?;
    Ok(out)
}

/// Stops the nginx whose prefix is `prefix` (its master named in `nginx.pid`, checked to be
/// ours by its command line): SIGQUIT (finish requests, then exit), SIGKILL after `grace`.
async fn stop_nginx(prefix: &Path, grace: Duration) -> bool {
    let pidfile = prefix.join("nginx.pid");
    let Some(pid) = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return false;
    };
    let conf = prefix.join("nginx.conf").display().to_string();
    let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&conf));
    if !ours {
        let _ = std::fs::remove_file(&pidfile);
        return false;
    }
    let pid = Pid::from_raw(pid);
    let _ = kill(pid, Signal::SIGQUIT);
    let gone = cutover_client::poll::until(grace, Duration::from_millis(50), || async {
        kill(pid, None).is_err().then_some(())
    })
    .await;
    if gone.is_err() {
        let _ = kill(pid, Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(&pidfile);
    true
}
