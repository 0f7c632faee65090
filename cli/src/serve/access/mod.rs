//! Who is calling a control endpoint, and the key that vouches for them to the workflow.
//!
//! `cutover serve --access FILE` reads:
//!
//! ```yaml
//! signing_key: { file: /etc/cutover/assertion.key }  # or { env: CUTOVER_ASSERTION_KEY }
//! tokens: tokens.yaml          # per-person API tokens, stored hashed (relative to this file)
//! oidc:                        # and/or OIDC ID/access tokens
//!   issuer: https://login.example.com
//!   audience: cutover
//!   jwks: https://login.example.com/.well-known/jwks.json   # a URL or a file
//!   person_claim: email        # default `sub`
//!   groups_claim: groups       # default `groups`
//! ```
//!
//! A caller sends `Authorization: Bearer <token>`: a JWT (three dot-separated parts) is
//! checked against the OIDC issuer; anything else is looked up, by its SHA-256, in the tokens
//! file. The receiver then signs an assertion (see `cutover_workflows::guard`) that the
//! workflow verifies with the matching public key.

mod oidc;
mod tokens;

pub(crate) use tokens::hash_line;

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use cutover_workflows::guard::parse_signing_key;
use ed25519_dalek::SigningKey;
use serde::Deserialize;

use crate::exit::Failure;

/// A verified caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Caller {
    pub(crate) person: String,
    pub(crate) groups: Vec<String>,
    /// `token` or `oidc`.
    pub(crate) method: &'static str,
}

/// The receiver's identity configuration.
pub(crate) struct Access {
    pub(crate) signing_key: SigningKey,
    tokens: Option<tokens::TokenFile>,
    oidc: Option<oidc::Oidc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessFile {
    signing_key: KeySource,
    #[serde(default)]
    tokens: Option<PathBuf>,
    #[serde(default)]
    oidc: Option<oidc::OidcConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum KeySource {
    File(PathBuf),
    Env(String),
}

/// Largest access or tokens file read.
const MAX_FILE: usize = 1024 * 1024;

/// Reads a YAML file as JSON, with positions in its syntax errors.
pub(crate) fn read_yaml<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, String> {
    use cutover_workflows::plan::syntax::{Document, parse_document, to_json};
    let text =
        std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    if text.len() > MAX_FILE {
        return Err(format!(
            "{what} {} is over {MAX_FILE} bytes",
            path.display()
        ));
    }
    let text =
        String::from_utf8(text).map_err(|_| format!("{what} {} is not UTF-8", path.display()))?;
    let value = parse_document(
        &text,
        Document {
            what,
            max_bytes: MAX_FILE,
            hint: "split it",
        },
        |_, root| Some(to_json(root)),
    )
    .map_err(|d| d.render(&path.display().to_string()))?;
    serde_path_to_error::deserialize(value)
        .map_err(|e| format!("{}: at `{}`: {}", path.display(), e.path(), e.inner()))
}

impl Access {
    /// Reads `--access FILE` and what it names.
    pub(crate) async fn load(path: &Path) -> Result<Access, Failure> {
        let file: AccessFile =
            read_yaml(path, "access file").map_err(|e| Failure::Input(anyhow!(e)))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let key_text = match &file.signing_key {
            KeySource::File(p) => std::fs::read_to_string(base.join(p)).map_err(|e| {
                Failure::Input(anyhow!(
                    "cannot read the signing key {}: {e}",
                    base.join(p).display()
                ))
            })?,
            KeySource::Env(var) => std::env::var(var).map_err(|_| {
                Failure::Input(anyhow!("the signing key's variable {var} is not set"))
            })?,
        };
        let signing_key = parse_signing_key(&key_text)
            .map_err(|e| Failure::Input(anyhow!("{}: signing_key: {e}", path.display())))?;
        let tokens = match file.tokens {
            Some(p) => Some(
                tokens::TokenFile::open(base.join(p)).map_err(|e| Failure::Input(anyhow!(e)))?,
            ),
            None => None,
        };
        let oidc = match file.oidc {
            Some(c) => Some(
                oidc::Oidc::new(c, &base)
                    .await
                    .map_err(|e| Failure::Input(anyhow!(e)))?,
            ),
            None => None,
        };
        if tokens.is_none() && oidc.is_none() {
            return Err(Failure::Input(anyhow!(
                "{}: name `tokens:`, `oidc:` or both, or nobody can use the control endpoints",
                path.display()
            )));
        }
        Ok(Access {
            signing_key,
            tokens,
            oidc,
        })
    }

    /// The caller named by an `Authorization` header.
    ///
    /// # Errors
    /// Why they are not accepted; never quotes the credential.
    pub(crate) async fn identify(&self, authorization: Option<&str>) -> Result<Caller, String> {
        let header =
            authorization.ok_or("no Authorization header: send `Authorization: Bearer <token>`")?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 16 * 1024)
            .ok_or("the Authorization header is not `Bearer <token>`")?;
        if token.split('.').count() == 3 {
            return match &self.oidc {
                Some(oidc) => oidc.verify(token).await,
                None => Err(
                    "OIDC tokens are not accepted by this receiver (no `oidc:` in its access file)"
                        .to_owned(),
                ),
            };
        }
        match &self.tokens {
            Some(t) => t.identify(token),
            None => Err(
                "API tokens are not accepted by this receiver (no `tokens:` in its access file)"
                    .to_owned(),
            ),
        }
    }
}
