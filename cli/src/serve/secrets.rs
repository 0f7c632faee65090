//! Where each provider's secrets come from: an environment variable and/or a file, one secret
//! per line (several lines = several secrets active at once, for rotation).

use crate::serve::rules::Provider;
use anyhow::anyhow;

use super::auth::Secrets;
use crate::cli::ServeArgs;
use crate::exit::Failure;

/// Largest secrets file read.
const MAX_FILE: u64 = 64 * 1024;

/// The secrets of every provider.
#[derive(Debug, Default)]
pub(crate) struct ProviderSecrets {
    github: Secrets,
    gitlab: Secrets,
    generic: Secrets,
}

impl ProviderSecrets {
    pub(crate) fn load(args: &ServeArgs) -> Result<Self, Failure> {
        Ok(Self {
            github: one("CUTOVER_GITHUB_SECRET", args.github_secret_file.as_deref())?,
            gitlab: one("CUTOVER_GITLAB_TOKEN", args.gitlab_token_file.as_deref())?,
            generic: one(
                "CUTOVER_GENERIC_SECRET",
                args.generic_secret_file.as_deref(),
            )?,
        })
    }

    pub(crate) fn get(&self, provider: Provider) -> &Secrets {
        match provider {
            Provider::Github => &self.github,
            Provider::Gitlab => &self.gitlab,
            Provider::Generic => &self.generic,
        }
    }
}

/// How to give a provider its secret, for error messages.
pub(crate) fn how_to_configure(provider: Provider) -> &'static str {
    match provider {
        Provider::Github => "set CUTOVER_GITHUB_SECRET or --github-secret-file",
        Provider::Gitlab => "set CUTOVER_GITLAB_TOKEN or --gitlab-token-file",
        Provider::Generic => "set CUTOVER_GENERIC_SECRET or --generic-secret-file",
    }
}

fn one(var: &str, file: Option<&std::path::Path>) -> Result<Secrets, Failure> {
    let mut secrets = Secrets::from_lines(&std::env::var(var).unwrap_or_default());
    if let Some(path) = file {
        let meta = std::fs::metadata(path).map_err(|e| {
            Failure::Input(anyhow!("cannot read secrets file {}: {e}", path.display()))
        })?;
        if meta.len() > MAX_FILE {
            return Err(Failure::Input(anyhow!(
                "secrets file {} is {} bytes; expected a few lines",
                path.display(),
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Input(anyhow!("cannot read secrets file {}: {e}", path.display()))
        })?;
        secrets.extend(Secrets::from_lines(&text));
    }
    Ok(secrets)
}
