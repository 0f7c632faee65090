//! Per-person API tokens, stored hashed:
//!
//! ```yaml
//! people:
//!   ana:
//!     groups: [release-managers]
//!     tokens:
//!       - sha256:3f1c…   # `cutover auth token` prints a token and this line
//! ```
//!
//! A person may hold several tokens (rotate by adding the new one, moving clients over, then
//! removing the old). The file is re-read when it changes, so rotation needs no restart; a
//! file that no longer parses is reported in the log and the last good one stays in use.
//! Tokens are random 256-bit values, so a plain SHA-256 is a sound way to store them (a slow
//! password hash protects guessable secrets; these are not guessable).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Caller;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    people: BTreeMap<String, Person>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Person {
    #[serde(default)]
    groups: Vec<String>,
    tokens: Vec<String>,
}

/// Hash → (person, groups).
type Index = Vec<([u8; 32], String, Vec<String>)>;

pub(super) struct TokenFile {
    path: PathBuf,
    loaded: Mutex<(Option<SystemTime>, Index)>,
}

/// `sha256:<hex>` of a token, as the tokens file stores it.
pub(crate) fn hash_line(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

fn read(path: &Path) -> Result<Index, String> {
    let file: File = super::read_yaml(path, "tokens file")?;
    let mut index = Index::new();
    for (person, p) in file.people {
        cutover_workflows::guard::check_principal(&person)
            .map_err(|e| format!("{}: people.{person}: {e}", path.display()))?;
        for (i, t) in p.tokens.iter().enumerate() {
            let digest: [u8; 32] = t
                .strip_prefix("sha256:")
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    format!(
                        "{}: people.{person}.tokens[{i}]: expected `sha256:` and 64 hex digits (from `cutover auth token`), not the token itself",
                        path.display()
                    )
                })?;
            index.push((digest, person.clone(), p.groups.clone()));
        }
    }
    Ok(index)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl TokenFile {
    pub(super) fn open(path: PathBuf) -> Result<Self, String> {
        let index = read(&path)?;
        Ok(Self {
            loaded: Mutex::new((modified(&path), index)),
            path,
        })
    }

    pub(super) fn identify(&self, token: &str) -> Result<Caller, String> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| "tokens unavailable".to_owned())?;
        let now = modified(&self.path);
        if now != loaded.0 {
            match read(&self.path) {
                Ok(index) => *loaded = (now, index),
                Err(e) => {
                    tracing::error!(error = %e, "the tokens file changed but cannot be used; keeping the previous one")
                }
            }
        }
        // Compare every entry in constant time, so timing says nothing about near misses.
        let mut found = None;
        for (h, person, groups) in &loaded.1 {
            if bool::from(h.ct_eq(&digest)) {
                found = Some((person.clone(), groups.clone()));
            }
        }
        let (person, groups) = found.ok_or("unknown or revoked API token")?;
        Ok(Caller {
            person,
            groups,
            method: "token",
        })
    }
}
