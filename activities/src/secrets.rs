//! Resolving secret references on the worker. Values never leave this process except into
//! the environment of the command that needs them.

use std::collections::BTreeMap;

use cutover_workflows::plan::SecretRef;
use secrecy::{ExposeSecret, SecretString};

use crate::error::StepFailure;

/// Largest secret file read.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Resolved secrets: variable name → value, each a [`SecretString`] (zeroed on drop, never
/// printed). `Debug` prints names only.
#[derive(Default)]
pub(crate) struct Secrets(BTreeMap<String, SecretString>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Secrets {
    /// Reads every reference. Fails on the first that cannot be read, naming the variable and
    /// the reference, never a value.
    pub(crate) fn resolve(refs: &BTreeMap<String, SecretRef>) -> Result<Self, StepFailure> {
        let mut out = BTreeMap::new();
        for (var, reference) in refs {
            out.insert(
                var.clone(),
                SecretString::from(resolve_one(var, reference)?),
            );
        }
        Ok(Self(out))
    }

    /// One secret, under a label (a variable or field name) used in messages.
    pub(crate) fn single(label: &str, reference: &SecretRef) -> Result<Self, StepFailure> {
        Ok(Self(BTreeMap::from([(
            label.to_owned(),
            SecretString::from(resolve_one(label, reference)?),
        )])))
    }

    /// Takes in the secrets of `other`.
    pub(crate) fn extend(&mut self, other: Secrets) {
        self.0.extend(other.0);
    }

    /// The value under `label`.
    pub(crate) fn get(&self, label: &str) -> Option<&str> {
        self.0.get(label).map(ExposeSecret::expose_secret)
    }

    /// Adds the password of a connection URL as a secret of its own, so it is redacted even
    /// where the whole URL is not repeated.
    pub(crate) fn with_url_password(mut self, label: &str) -> Self {
        let password = self
            .0
            .get(label)
            .map(ExposeSecret::expose_secret)
            .and_then(|url| url.split_once("://"))
            .and_then(|(_, rest)| rest.rsplit_once('@'))
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, password)| password.to_owned());
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            self.0
                .insert(format!("{label}#password"), SecretString::from(p));
        }
        self
    }

    /// (name, value) pairs for a child's environment: the one place values are exposed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.expose_secret()))
    }

    /// Replaces every secret value in `text` with `***`, so a command that echoes a secret
    /// does not leak it into logs or workflow history.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for value in self.0.values().map(ExposeSecret::expose_secret) {
            if value.len() >= 4 {
                out = out.replace(value, "***");
            }
        }
        out
    }
}

impl Secrets {
    /// `failure` with every secret value in the API's words replaced by `***`: a refusal
    /// of an object that carried a secret must not quote it into history.
    pub(crate) fn redact_failure(&self, failure: StepFailure) -> StepFailure {
        match failure {
            StepFailure::KubeRefused { action, message } => StepFailure::KubeRefused {
                action,
                message: self.redact(&message),
            },
            StepFailure::KubeUnavailable { action, message } => StepFailure::KubeUnavailable {
                action,
                message: self.redact(&message),
            },
            other => other,
        }
    }
}

fn resolve_one(var: &str, reference: &SecretRef) -> Result<String, StepFailure> {
    match reference {
        SecretRef::Env(name) => std::env::var(name).map_err(|_| StepFailure::SecretUnavailable {
            var: var.to_owned(),
            reason: format!("environment variable `{name}` is not set on the worker"),
        }),
        SecretRef::File(path) => read_file(var, path),
    }
}

fn read_file(var: &str, path: &str) -> Result<String, StepFailure> {
    let unavailable = |reason: String| StepFailure::SecretUnavailable {
        var: var.to_owned(),
        reason,
    };
    let meta =
        std::fs::metadata(path).map_err(|e| unavailable(format!("cannot read `{path}`: {e}")))?;
    if meta.len() > MAX_SECRET_BYTES {
        return Err(unavailable(format!(
            "`{path}` is {} bytes; secret files are limited to {MAX_SECRET_BYTES}",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| unavailable(format!("cannot read `{path}`: {e}")))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_env_names_the_variable_not_a_value() {
        let refs = BTreeMap::from([(
            "TOKEN".to_owned(),
            SecretRef::Env("CUTOVER_TEST_SURELY_UNSET".to_owned()),
        )]);
        let err = Secrets::resolve(&refs).expect_err("unset variable");
        assert_eq!(
            err.to_string(),
            "secret for `TOKEN` is unavailable: environment variable `CUTOVER_TEST_SURELY_UNSET` is not set on the worker"
        );
    }

    #[test]
    fn file_secrets_are_trimmed_and_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "hunter2-secret\n").expect("write");
        let refs = BTreeMap::from([(
            "PASSWORD".to_owned(),
            SecretRef::File(path.display().to_string()),
        )]);
        let secrets = Secrets::resolve(&refs).expect("resolves");
        assert_eq!(secrets.redact("pw=hunter2-secret!"), "pw=***!");
        assert_eq!(format!("{secrets:?}"), "[\"PASSWORD\"]");
    }

    #[test]
    fn an_api_refusal_quoting_a_secret_is_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("url");
        std::fs::write(&file, "postgres://app:s3cret-pw@db/app\n").expect("write");
        let secrets = Secrets::single("url", &SecretRef::File(file.display().to_string()))
            .expect("resolves")
            .with_url_password("url");
        let refused = StepFailure::KubeRefused {
            action: "apply Secret db".into(),
            message: "stringData.URL: Invalid value: \"postgres://app:s3cret-pw@db/app\"".into(),
        };
        let text = secrets.redact_failure(refused).to_string();
        assert!(!text.contains("s3cret-pw"), "{text}");
        assert!(text.contains("apply Secret db"), "{text}");
    }
}
