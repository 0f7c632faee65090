//! The filesystem half of `provision`: `<root>/<service>/{releases/<version>,shared,current}`
//! and the env file.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cutover_workflows::plan::SecretRef;

use super::state::write_atomic;
use crate::error::StepFailure;
use crate::secrets::Secrets;

/// Creates what is missing; returns what it changed.
pub(crate) fn ensure(
    service_dir: &Path,
    version: &str,
    env_file: &BTreeMap<String, SecretRef>,
) -> Result<Vec<String>, StepFailure> {
    let mut changes = Vec::new();
    let release = service_dir.join("releases").join(version);
    for dir in [release.as_path(), &service_dir.join("shared")] {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StepFailure::io(format!("creating {}", dir.display()), e))?;
            changes.push(format!("created {}", dir.display()));
        }
    }
    let current = service_dir.join("current");
    if std::fs::symlink_metadata(&current).is_err() {
        std::os::unix::fs::symlink(Path::new("releases").join(version), &current)
            .map_err(|e| StepFailure::io(format!("linking {}", current.display()), e))?;
        changes.push(format!("linked {} → releases/{version}", current.display()));
    }
    if !env_file.is_empty() {
        let secrets = Secrets::resolve(env_file)?;
        let body: String = secrets.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let path = service_dir.join("shared").join("env");
        let same_content = std::fs::read(&path).is_ok_and(|b| b == body.as_bytes());
        let same_mode =
            std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o777 == 0o600);
        if !(same_content && same_mode) {
            write_atomic(&path, body.as_bytes(), Some(0o600))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StepFailure::io(format!("restricting {}", path.display()), e))?;
            changes.push(format!(
                "wrote {} ({} variables, mode 0600)",
                path.display(),
                env_file.len()
            ));
        }
    }
    Ok(changes)
}

/// Points `current` at `releases/<version>`, atomically (a new link renamed over the old).
pub(crate) fn point_current(service_dir: &Path, version: &str) -> Result<(), StepFailure> {
    let release = service_dir.join("releases").join(version);
    std::fs::create_dir_all(&release)
        .map_err(|e| StepFailure::io(format!("creating {}", release.display()), e))?;
    let tmp = service_dir.join(format!(".current.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new("releases").join(version), &tmp)
        .and_then(|()| std::fs::rename(&tmp, service_dir.join("current")))
        .map_err(|e| StepFailure::io("updating the `current` link", e))
}
