//! What the host driver knows about a service between activities: which release serves,
//! which one it replaced, which one is being rolled out. Kept in `<root>/<service>/deploy.json`
//! and written atomically, so a worker killed mid-write leaves the old state, never half.

use std::path::{Path, PathBuf};

use cutover_workflows::plan::{CommandSpec, HealthCheck};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::StepFailure;

/// A version running (or able to run) on a set of ports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Release {
    pub(crate) version: String,
    pub(crate) ports: Vec<u16>,
    pub(crate) start: CommandSpec,
    pub(crate) health: HealthCheck,
}

/// The service's deploy state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct DeployState {
    /// The environment this service directory belongs to (one per release root and service:
    /// two environments sharing one would share nginx, ports and the `current` link).
    pub(crate) environment: Option<String>,
    /// The port nginx listens on.
    pub(crate) listen: Option<u16>,
    /// The address it listens on; `None`: 127.0.0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) listen_address: Option<std::net::IpAddr>,
    /// Serving all traffic (or most of it during a canary).
    pub(crate) current: Option<Release>,
    /// Replaced by `current`; kept so rollback can return to it.
    pub(crate) previous: Option<Release>,
    /// Started by `prepare`, not yet serving all traffic.
    pub(crate) candidate: Option<Release>,
    /// The last rollback done, so a retried rollback does not flip back.
    pub(crate) last_rollback: Option<RollbackRecord>,
}

/// A rollback already performed, keyed by the workflow run and step that asked for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RollbackRecord {
    pub(crate) request: String,
    pub(crate) from: String,
    pub(crate) to: String,
}

/// The service's directory under the release root.
pub(crate) fn service_dir(root: &str, service: &str) -> Result<PathBuf, StepFailure> {
    let cwd = std::env::current_dir()
        .map_err(|e| StepFailure::io("reading the worker's directory", e))?;
    Ok(cwd.join(root).join(service))
}

impl DeployState {
    fn path(dir: &Path) -> PathBuf {
        dir.join("deploy.json")
    }

    pub(crate) fn load(dir: &Path) -> Result<Self, StepFailure> {
        match std::fs::read(Self::path(dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                StepFailure::InvalidInput(format!(
                    "{} is corrupt ({e}); inspect it, or remove it to start from scratch",
                    Self::path(dir).display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(StepFailure::io(
                format!("reading {}", Self::path(dir).display()),
                e,
            )),
        }
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<(), StepFailure> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| StepFailure::io("encoding deploy state", std::io::Error::other(e)))?;
        write_atomic(&Self::path(dir), &bytes, None)
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
pub(crate) fn write_atomic(
    path: &Path,
    bytes: &[u8],
    mode: Option<u32>,
) -> Result<(), StepFailure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| StepFailure::io(format!("creating {}", dir.display()), e))?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if let Some(m) = mode {
        options.mode(m);
    }
    let write = || -> std::io::Result<()> {
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| StepFailure::io(format!("writing {}", path.display()), e))
}

/// Holds `<dir>/deploy.lock` exclusively until dropped. Every host-driver operation on a
/// service takes it first, so two workers (or two environments sharing a release root)
/// never read-modify-write `deploy.json` or touch its instances at the same time. The lock
/// is an `flock`: the kernel releases it when the holder dies, even by SIGKILL.
pub(crate) async fn lock(dir: &Path) -> Result<Flock<std::fs::File>, StepFailure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StepFailure::io(format!("creating {}", dir.display()), e))?;
    let path = dir.join("deploy.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StepFailure::io(format!("opening {}", path.display()), e))?;
    // Waiting for an flock blocks the thread: wait on a blocking thread, not the runtime's.
    tokio::task::spawn_blocking(move || Flock::lock(file, FlockArg::LockExclusive))
        .await
        .map_err(|e| StepFailure::io("waiting for the deploy lock", std::io::Error::other(e)))?
        .map_err(|(_, errno)| {
            StepFailure::io(
                format!("locking {}", path.display()),
                std::io::Error::from(errno),
            )
        })
}
