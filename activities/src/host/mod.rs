//! The `host` driver: one machine, like a VM. Instances are processes on loopback ports,
//! traffic goes through the service's own nginx, the release layout lives under a root
//! directory. Every operation reads `deploy.json`, converges, and writes it back, so running
//! it twice does what running it once did.

mod instance;
mod layout;
mod nginx;
mod router;
mod state;
mod teardown;
mod withdraw;

pub use teardown::{Teardown, teardown};

use std::path::Path;
use std::time::Duration;

use cutover_workflows::contracts::{
    PrepareOutput, ProvisionOutput, RetireOutput, RollbackOutput, ShiftOutput, WithdrawOutput,
};
use cutover_workflows::plan::{DeploySpec, ProvisionSpec};
use tokio::time::Instant;
use tracing::info;

use crate::drivers::DeployDriver;
use crate::error::StepFailure;
use crate::secrets::Secrets;
use instance::{live_pid, paths, port_in_use};
use nginx::{Nginx, Server};
use state::{DeployState, Release, RollbackRecord, service_dir};

/// How long a stopped instance gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The host driver. Holds the HTTP client used for health checks.
pub(crate) struct HostDriver {
    http: reqwest::Client,
}

impl HostDriver {
    pub(crate) fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

impl DeployDriver for HostDriver {
    /// Release layout, env file, and (optionally) the database and its owner.
    async fn provision(
        &self,
        service: &str,
        version: &str,
        spec: &ProvisionSpec,
    ) -> Result<ProvisionOutput, StepFailure> {
        let dir = service_dir(&spec.root, service)?;
        let mut changes = layout::ensure(&dir, version, &spec.env_file)?;
        if let Some(db) = &spec.database {
            changes.extend(crate::postgres::provision::ensure(db).await?);
        }
        Ok(ProvisionOutput { changes })
    }

    /// Starts `version`'s instances on the free slot and waits until all are healthy. Traffic
    /// does not move. If they do not become healthy they are stopped again: the serving
    /// version is untouched.
    async fn prepare(
        &self,
        service: &str,
        version: &str,
        spec: &DeploySpec,
    ) -> Result<PrepareOutput, StepFailure> {
        let dir = service_dir(&spec.root, service)?;
        let _guard = state::lock(&dir).await?;
        self.prepare_in(&dir, service, version, spec).await
    }

    /// Sends `weight` percent of traffic to the prepared `version` (the rest to the serving
    /// one). At 100 the prepared version becomes current and the old one previous.
    async fn shift(
        &self,
        service: &str,
        root: &str,
        version: &str,
        weight: u8,
    ) -> Result<ShiftOutput, StepFailure> {
        let dir = service_dir(root, service)?;
        let _guard = state::lock(&dir).await?;
        self.shift_in(&dir, service, version, weight).await
    }
    /// Stops every instance of the service that is not of version `keep`.
    async fn retire(
        &self,
        service: &str,
        root: &str,
        keep: &str,
    ) -> Result<RetireOutput, StepFailure> {
        let dir = service_dir(root, service)?;
        let _guard = state::lock(&dir).await?;
        let mut stopped = Vec::new();
        for (version, port, pidfile) in pidfiles(&dir) {
            if version != keep {
                instance::stop(&pidfile, STOP_GRACE).await;
                stopped.push(format!("{version}@{port}"));
            }
        }
        info!(service, keep, ?stopped, "retired");
        Ok(RetireOutput { stopped })
    }

    /// Replaces the serving instances one at a time: start a new one, wait until healthy,
    /// move its share of traffic, stop an old one. If any of it fails, the service is put
    /// back as it was (new instances stopped, old ones restarted and checked, upstream on
    /// exactly the old set) before the failure is reported, with what serves now.
    async fn rolling(
        &self,
        service: &str,
        version: &str,
        spec: &DeploySpec,
    ) -> Result<PrepareOutput, StepFailure> {
        let dir = service_dir(&spec.root, service)?;
        let _guard = state::lock(&dir).await?;
        let st = DeployState::load(&dir)?;
        let Some(current) = st.current.clone().filter(|c| c.version != version) else {
            // Nothing to replace (first deploy, or already done): start and switch.
            let out = self.prepare_in(&dir, service, version, spec).await?;
            self.shift_in(&dir, service, version, 100).await?;
            return Ok(out);
        };
        let n = spec.instances as u16;
        let slot = if current.ports.first() == Some(&spec.base_port) {
            1
        } else {
            0
        };
        let ports: Vec<u16> = (0..n).map(|i| spec.base_port + slot * n + i).collect();
        let mut st = st;
        let candidate = Release {
            version: version.to_owned(),
            ports: ports.clone(),
            start: spec.start.clone(),
            health: spec.health.clone(),
        };
        // A candidate left by an earlier attempt with another start command or health
        // check (the plan was fixed) must not be reused because its pidfile is live.
        if let Some(old) = st.candidate.take() {
            self.stop_release(&dir, &old).await;
        }
        st.candidate = Some(candidate.clone());
        st.save(&dir)?;
        let replaced = self
            .replace_one_by_one(&dir, service, &st, &current, &candidate)
            .await;
        if let Err(failure) = replaced {
            let restored = self.restore(&dir, service, &mut st).await;
            return Err(withdraw::undone(service, failure, restored));
        }
        st.previous = Some(current);
        st.current = Some(candidate);
        st.candidate = None;
        layout::point_current(&dir, version)?;
        st.save(&dir)?;
        Ok(PrepareOutput {
            version: version.to_owned(),
            ports,
            previous: st.previous.map(|p| p.version),
            already_current: false,
        })
    }

    /// Traffic back to the previous release (restarted if it was stopped), then the current
    /// one stopped; every upstream member is checked before it reports success. `request`
    /// identifies the asking workflow run and step: a retry of the same request does not
    /// roll back a second time.
    async fn rollback(
        &self,
        request: &str,
        service: &str,
        root: &str,
    ) -> Result<RollbackOutput, StepFailure> {
        let dir = service_dir(root, service)?;
        let _guard = state::lock(&dir).await?;
        let mut st = DeployState::load(&dir)?;
        if let (Some(done), Some(cur)) = (&st.last_rollback, &st.current)
            && done.request == request
            && cur.version == done.to
        {
            return Ok(RollbackOutput {
                from: done.from.clone(),
                to: done.to.clone(),
            });
        }
        // A version started but not yet serving all traffic (a canary, or a switch that did not
        // happen): undoing it means the candidate stopped and the serving version whole again.
        if let (Some(candidate), Some(current)) = (st.candidate.clone(), st.current.clone()) {
            self.restore(&dir, service, &mut st).await?;
            st.last_rollback = Some(RollbackRecord {
                request: request.to_owned(),
                from: candidate.version.clone(),
                to: current.version.clone(),
            });
            st.save(&dir)?;
            info!(service, from = %candidate.version, to = %current.version, "candidate withdrawn");
            return Ok(RollbackOutput {
                from: candidate.version,
                to: current.version,
            });
        }
        let (Some(current), Some(previous)) = (st.current.clone(), st.previous.clone()) else {
            return Err(StepFailure::InvalidInput(format!(
                "{service} has no previous release on this host to roll back to"
            )));
        };
        if let Some(candidate) = st.candidate.take() {
            self.stop_release(&dir, &candidate).await;
        }
        self.ensure_running(&dir, service, &previous).await?;
        Nginx::new(&dir, listen(&st, service)?)
            .apply(&all(&previous.ports))
            .await?;
        self.check_members(&dir, &previous).await?;
        self.stop_release(&dir, &current).await;
        layout::point_current(&dir, &previous.version)?;
        st.last_rollback = Some(RollbackRecord {
            request: request.to_owned(),
            from: current.version.clone(),
            to: previous.version.clone(),
        });
        st.current = Some(previous.clone());
        st.previous = Some(current.clone());
        st.save(&dir)?;
        info!(service, from = %current.version, to = %previous.version, "rolled back");
        Ok(RollbackOutput {
            from: current.version,
            to: previous.version,
        })
    }

    async fn withdraw(
        &self,
        service: &str,
        root: &str,
        version: &str,
    ) -> Result<WithdrawOutput, StepFailure> {
        let dir = service_dir(root, service)?;
        let _guard = state::lock(&dir).await?;
        self.withdraw_in(&dir, service, version).await
    }
}

impl HostDriver {
    /// Binds `<root>/<service>` to `environment` on first use and refuses any other
    /// environment afterwards, so staging and production of one service can never take over
    /// each other's instances, upstream and state by sharing a release root.
    async fn bind_environment(
        &self,
        root: &str,
        service: &str,
        environment: &str,
    ) -> Result<(), StepFailure> {
        if environment.is_empty() {
            return Ok(());
        }
        let dir = service_dir(root, service)?;
        let _guard = state::lock(&dir).await?;
        let mut st = DeployState::load(&dir)?;
        match st.environment.as_deref() {
            Some(bound) if bound == environment => Ok(()),
            Some(bound) => Err(StepFailure::InvalidInput(format!(
                "{} holds {service} for environment `{bound}`, not `{environment}`; give each environment its own `root`",
                dir.display()
            ))),
            None => {
                st.environment = Some(environment.to_owned());
                st.save(&dir)
            }
        }
    }

    /// Runs `op` once `<root>/<service>` is known to belong to `step`'s environment (bound
    /// on first use; another environment is refused before `op` touches anything).
    pub(crate) async fn bound<T>(
        &self,
        root: &str,
        service: &str,
        step: &cutover_workflows::contracts::StepRef,
        op: impl std::future::Future<Output = Result<T, StepFailure>>,
    ) -> Result<T, StepFailure> {
        self.bind_environment(root, service, step.environment())
            .await?;
        op.await
    }

    /// `prepare` with the service's lock held.
    async fn prepare_in(
        &self,
        dir: &Path,
        service: &str,
        version: &str,
        spec: &DeploySpec,
    ) -> Result<PrepareOutput, StepFailure> {
        let mut st = DeployState::load(dir)?;
        if st.listen.is_some_and(|l| l != spec.listen) && st.current.is_some() {
            return Err(StepFailure::InvalidInput(format!(
                "{service} is served on port {} but the plan says listen: {}; change one of them",
                st.listen.unwrap_or_default(),
                spec.listen
            )));
        }
        st.listen = Some(spec.listen);
        st.listen_address = spec.listen_address;
        let n = spec.instances as u16;
        let release = |ports: Vec<u16>| Release {
            version: version.to_owned(),
            ports,
            start: spec.start.clone(),
            health: spec.health.clone(),
        };
        if let Some(current) = st.current.clone()
            && current.version == version
        {
            // Already deployed: make sure it still runs, and say so.
            self.ensure_running(dir, service, &current).await?;
            st.save(dir)?;
            return Ok(PrepareOutput {
                version: version.to_owned(),
                ports: current.ports,
                previous: st.previous.map(|p| p.version),
                already_current: true,
            });
        }
        let slot = match &st.current {
            Some(c) if c.ports.first() == Some(&spec.base_port) => 1,
            _ => 0,
        };
        let ports: Vec<u16> = (0..n).map(|i| spec.base_port + slot * n + i).collect();
        if let Some(c) = &st.current
            && c.ports.iter().any(|p| ports.contains(p))
        {
            return Err(StepFailure::InvalidInput(format!(
                "the ports {ports:?} for {version} overlap those of the serving {} ({:?}); keep base_port and instances as they were, or pick a base_port away from both",
                c.version, c.ports
            )));
        }
        let candidate = release(ports.clone());
        // An earlier candidate is reused only if it is this very release: another version,
        // or this version with another start command or health check (the plan was fixed
        // after a failure), is stopped rather than found alive and trusted.
        if let Some(old) = st.candidate.take()
            && old != candidate
        {
            self.stop_release(dir, &old).await;
        }
        st.candidate = Some(candidate.clone());
        st.save(dir)?;
        if let Err(failure) = self.ensure_running(dir, service, &candidate).await {
            let restored = self.restore(dir, service, &mut st).await;
            return Err(withdraw::undone(service, failure, restored));
        }
        info!(service, version, ?ports, "instances healthy");
        Ok(PrepareOutput {
            version: version.to_owned(),
            ports,
            previous: st.current.map(|c| c.version),
            already_current: false,
        })
    }

    /// Sends `weight` percent of traffic to the prepared `version` (the rest to the serving
    /// one). At 100 the prepared version becomes current and the old one previous.
    async fn shift_in(
        &self,
        dir: &Path,
        service: &str,
        version: &str,
        weight: u8,
    ) -> Result<ShiftOutput, StepFailure> {
        let mut st = DeployState::load(dir)?;
        let nginx = Nginx::new(dir, listen(&st, service)?);
        let started = Instant::now();
        let candidate = match &st.candidate {
            Some(c) if c.version == version => c.clone(),
            _ => match &st.current {
                // A retry after the switch to 100 completed: converge and report.
                Some(c) if c.version == version => {
                    nginx.apply(&all(&c.ports)).await?;
                    return Ok(ShiftOutput {
                        weight: 100,
                        applied_ms: started.elapsed().as_secs_f64() * 1000.0,
                        by: None,
                    });
                }
                _ => {
                    return Err(StepFailure::DeployFailed(format!(
                        "{service} {version} was not prepared on this host; run its deploy step again"
                    )));
                }
            },
        };
        let servers: Vec<Server> = match (&st.current, weight) {
            (Some(cur), w) if w < 100 => {
                let (nc, no) = (candidate.ports.len() as u32, cur.ports.len() as u32);
                let mut s: Vec<Server> = candidate
                    .ports
                    .iter()
                    .map(|p| (*p, u32::from(w) * no))
                    .collect();
                s.extend(cur.ports.iter().map(|p| (*p, u32::from(100 - w) * nc)));
                s
            }
            _ => all(&candidate.ports),
        };
        nginx.apply(&servers).await?;
        if weight == 100 || st.current.is_none() {
            st.previous = st.current.take();
            st.current = Some(candidate);
            st.candidate = None;
            layout::point_current(dir, version)?;
            st.save(dir)?;
        }
        let applied_ms = started.elapsed().as_secs_f64() * 1000.0;
        info!(service, version, weight, applied_ms, "traffic shifted");
        Ok(ShiftOutput {
            weight,
            applied_ms,
            by: None,
        })
    }

    /// The rolling loop: for each new instance, start it, wait until healthy, give it its
    /// share of the upstream, stop the old instance it replaces.
    async fn replace_one_by_one(
        &self,
        dir: &Path,
        service: &str,
        st: &DeployState,
        current: &Release,
        candidate: &Release,
    ) -> Result<(), StepFailure> {
        let nginx = Nginx::new(dir, listen(st, service)?);
        let ports = &candidate.ports;
        for (i, port) in ports.iter().enumerate() {
            let one = Release {
                ports: vec![*port],
                ..candidate.clone()
            };
            self.ensure_running(dir, service, &one).await?;
            let mut servers: Vec<Server> = all(&ports[..=i]);
            servers.extend(all(current.ports.get(i + 1..).unwrap_or_default()));
            nginx.apply(&servers).await?;
            if let Some(old) = current.ports.get(i) {
                instance::stop(&paths(dir, &current.version, *old).pidfile, STOP_GRACE).await;
            }
        }
        for old in current.ports.iter().skip(ports.len()) {
            instance::stop(&paths(dir, &current.version, *old).pidfile, STOP_GRACE).await;
        }
        nginx.apply(&all(ports)).await
    }

    /// Every instance of `release` running and healthy: live ones kept, missing ones started
    /// (after stopping any of our other instances on their ports).
    async fn ensure_running(
        &self,
        dir: &Path,
        service: &str,
        release: &Release,
    ) -> Result<(), StepFailure> {
        let secrets = Secrets::resolve(&release.start.secret_env)?;
        for port in &release.ports {
            let p = paths(dir, &release.version, *port);
            if live_pid(&p.pidfile).is_some() {
                continue;
            }
            for (version, other_port, pidfile) in pidfiles(dir) {
                if other_port == *port && version != release.version {
                    instance::stop(&pidfile, STOP_GRACE).await;
                }
            }
            if port_in_use(*port) {
                if let Some(pid) = instance::adopt_orphan(dir, service, &release.version, *port) {
                    info!(service, version = %release.version, port, pid, "adopted an instance started by a lost attempt");
                    continue;
                }
                return Err(StepFailure::PortTaken { port: *port });
            }
            instance::spawn(dir, service, release, *port, &secrets)?;
        }
        for port in &release.ports {
            let p = paths(dir, &release.version, *port);
            instance::wait_healthy(&self.http, release, *port, &p.pidfile, &p.log).await?;
        }
        Ok(())
    }

    async fn stop_release(&self, dir: &Path, release: &Release) {
        for port in &release.ports {
            instance::stop(&paths(dir, &release.version, *port).pidfile, STOP_GRACE).await;
        }
    }
}

/// Where the service's nginx listens: the plan's `listen_address` (loopback by default, so a
/// single machine exposes nothing) and `listen` port.
fn listen(st: &DeployState, service: &str) -> Result<std::net::SocketAddr, StepFailure> {
    let port = st.listen.ok_or_else(|| {
        StepFailure::InvalidInput(format!("{service} has never been deployed on this host"))
    })?;
    let address = st
        .listen_address
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    Ok(std::net::SocketAddr::new(address, port))
}

fn all(ports: &[u16]) -> Vec<Server> {
    ports.iter().map(|p| (*p, 1)).collect()
}

/// `(version, port, path)` of every pidfile under `<dir>/run`.
fn pidfiles(dir: &Path) -> Vec<(String, u16, std::path::PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir.join("run")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".pid")?;
            let (version, port) = stem.rsplit_once('@')?;
            Some((version.to_owned(), port.parse().ok()?, e.path()))
        })
        .collect()
}
