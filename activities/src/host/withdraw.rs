//! Getting a service back to a stated, verified state after a deploy that did not finish:
//! the candidate's instances stopped, every instance of the serving release running (the
//! ones a rolling deploy had stopped are started again), the upstream pointing at exactly
//! those, and each of them answering its health check *directly* — nginx's
//! `proxy_next_upstream` would hide a dead member from a check through the front door.

use std::path::Path;

use cutover_workflows::contracts::WithdrawOutput;
use tracing::{info, warn};

use super::instance::{self, paths};
use super::nginx::Nginx;
use super::state::{DeployState, Release};
use super::{HostDriver, STOP_GRACE, all, listen};
use crate::error::StepFailure;

impl HostDriver {
    /// Converges `st` on "the serving release, all of it, and nothing else": stops the
    /// candidate (if any), restarts missing instances of `current`, points the upstream at
    /// them, checks each one, and saves the state. Returns what it undid and what serves.
    pub(super) async fn restore(
        &self,
        dir: &Path,
        service: &str,
        st: &mut DeployState,
    ) -> Result<WithdrawOutput, StepFailure> {
        let mut undone = Vec::new();
        if let Some(candidate) = st.candidate.take() {
            let stopped = self.stop_live(dir, &candidate).await;
            if !stopped.is_empty() {
                undone.push(format!(
                    "stopped {} {} on ports {stopped:?}",
                    candidate.version,
                    instances(stopped.len())
                ));
            }
            st.save(dir)?;
        }
        let Some(current) = st.current.clone() else {
            return Ok(WithdrawOutput {
                undone,
                serving: None,
                ports: Vec::new(),
                still_serving: false,
            });
        };
        let missing: Vec<u16> = current
            .ports
            .iter()
            .copied()
            .filter(|p| instance::live_pid(&paths(dir, &current.version, *p).pidfile).is_none())
            .collect();
        self.ensure_running(dir, service, &current).await?;
        if !missing.is_empty() {
            undone.push(format!(
                "restarted {} {} on ports {missing:?}",
                current.version,
                instances(missing.len())
            ));
        }
        Nginx::new(dir, listen(st, service)?)
            .apply(&all(&current.ports))
            .await?;
        self.check_members(dir, &current).await?;
        Ok(WithdrawOutput {
            undone,
            serving: Some(current.version.clone()),
            ports: current.ports.clone(),
            still_serving: false,
        })
    }

    /// `deploy.withdraw` with the service's lock held: undoes the unfinished deploy of
    /// `version`. If `version` already serves all traffic there is nothing to withdraw (the
    /// saga's rollback handles that); its instances are still checked, so the rollout can say
    /// what serves.
    pub(super) async fn withdraw_in(
        &self,
        dir: &Path,
        service: &str,
        version: &str,
    ) -> Result<WithdrawOutput, StepFailure> {
        let mut st = DeployState::load(dir)?;
        if st.listen.is_none() && st.candidate.is_none() && st.current.is_none() {
            return Ok(WithdrawOutput {
                undone: Vec::new(),
                serving: None,
                ports: Vec::new(),
                still_serving: false,
            });
        }
        let mut out = self.restore(dir, service, &mut st).await?;
        out.still_serving = out.serving.as_deref() == Some(version);
        info!(service, version, undone = ?out.undone, serving = ?out.serving, "withdrawn");
        Ok(out)
    }

    /// Each instance of `release` answers its health check on its own port.
    pub(super) async fn check_members(
        &self,
        dir: &Path,
        release: &Release,
    ) -> Result<(), StepFailure> {
        for port in &release.ports {
            let p = paths(dir, &release.version, *port);
            instance::wait_healthy(&self.http, release, *port, &p.pidfile, &p.log)
                .await
                .map_err(|e| {
                    StepFailure::DeployFailed(format!(
                        "{} is in the upstream but does not answer: {e}",
                        release.version
                    ))
                })?;
        }
        Ok(())
    }

    /// Stops the instances of `release` that are alive; returns their ports.
    async fn stop_live(&self, dir: &Path, release: &Release) -> Vec<u16> {
        let mut stopped = Vec::new();
        for port in &release.ports {
            let pidfile = paths(dir, &release.version, *port).pidfile;
            if instance::live_pid(&pidfile).is_some() {
                stopped.push(*port);
            }
            instance::stop(&pidfile, STOP_GRACE).await;
        }
        stopped
    }
}

/// The error a deploy operation reports after undoing itself: the original failure, then
/// what was undone and what serves now (or why the undo failed too).
pub(super) fn undone(
    service: &str,
    failure: StepFailure,
    restored: Result<WithdrawOutput, StepFailure>,
) -> StepFailure {
    let tail = match restored {
        Ok(out) => out.describe(service),
        Err(e) => {
            warn!(service, error = %e, "undoing a failed deploy failed");
            format!("undoing it failed too ({e}); the state of {service} is not verified")
        }
    };
    StepFailure::Undone {
        failure: Box::new(failure),
        after: tail,
    }
}

fn instances(n: usize) -> &'static str {
    if n == 1 { "instance" } else { "instances" }
}
