//! Fingerprinting what a build produced.

use std::io::Read;
use std::path::Path;

use cutover_workflows::contracts::Artifact;
use sha2::{Digest, Sha256};

use crate::error::StepFailure;

/// Size and SHA-256 of the file at `path`, read in a blocking thread.
pub(crate) async fn fingerprint(path: &Path) -> Result<Artifact, StepFailure> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || hash_file(&path))
        .await
        .map_err(|e| StepFailure::io("hashing the artifact", std::io::Error::other(e)))?
}

fn hash_file(path: &Path) -> Result<Artifact, StepFailure> {
    let missing = || StepFailure::ArtifactMissing {
        path: path.display().to_string(),
    };
    let meta = std::fs::metadata(path).map_err(|_| missing())?;
    if !meta.is_file() {
        return Err(missing());
    }
    let mut file = std::fs::File::open(path)
        .map_err(|e| StepFailure::io(format!("opening `{}`", path.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| StepFailure::io(format!("reading `{}`", path.display()), e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok(Artifact {
        path: path.display().to_string(),
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn known_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a");
        std::fs::write(&path, "abc").expect("write");
        let art = fingerprint(&path).await.expect("hashes");
        assert_eq!(art.size, 3);
        assert_eq!(
            art.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn missing_file_is_not_retryable() {
        let err = fingerprint(Path::new("/nonexistent/cutover-artifact"))
            .await
            .expect_err("missing");
        assert!(!err.retryable());
        assert_eq!(err.kind(), "ArtifactMissing");
    }
}
