//! OIDC tokens: a JWT signed by the issuer's key (from its JWKS), for this audience, not
//! expired. The JWKS comes from a file or a URL; fetched keys are cached for ten minutes and
//! fetched again at most every 30 s when a token names a key the cache does not have (the
//! issuer rotated).

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::Caller;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OidcConfig {
    issuer: String,
    audience: String,
    /// `https://…` or a file path (relative to the access file).
    jwks: String,
    #[serde(default = "default_person")]
    person_claim: String,
    #[serde(default = "default_groups")]
    groups_claim: String,
}

fn default_person() -> String {
    "sub".to_owned()
}
fn default_groups() -> String {
    "groups".to_owned()
}

const FRESH: Duration = Duration::from_secs(600);
const REFETCH_EVERY: Duration = Duration::from_secs(30);

pub(super) struct Oidc {
    config: OidcConfig,
    source: Source,
    http: reqwest::Client,
    cache: Mutex<Option<(Instant, JwkSet)>>,
}

enum Source {
    Url(String),
    File(std::path::PathBuf),
}

impl Oidc {
    pub(super) async fn new(config: OidcConfig, base: &Path) -> Result<Self, String> {
        let source = if config.jwks.starts_with("https://") || config.jwks.starts_with("http://") {
            Source::Url(config.jwks.clone())
        } else {
            Source::File(base.join(&config.jwks))
        };
        let oidc = Self {
            config,
            source,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| e.to_string())?,
            cache: Mutex::new(None),
        };
        // A file must be readable now; a URL may be down at start and is fetched on demand.
        if let Source::File(_) = oidc.source {
            oidc.fetch().await?;
        }
        Ok(oidc)
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let text = match &self.source {
            Source::File(p) => std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read the JWKS {}: {e}", p.display()))?,
            Source::Url(u) => {
                let r = self
                    .http
                    .get(u)
                    .send()
                    .await
                    .map_err(|e| format!("fetching the JWKS failed: {e}"))?;
                if !r.status().is_success() {
                    return Err(format!("fetching the JWKS answered {}", r.status()));
                }
                r.text()
                    .await
                    .map_err(|e| format!("reading the JWKS failed: {e}"))?
            }
        };
        let set: JwkSet =
            serde_json::from_str(&text).map_err(|e| format!("the JWKS is not valid: {e}"))?;
        if let Ok(mut c) = self.cache.lock() {
            *c = Some((Instant::now(), set.clone()));
        }
        Ok(set)
    }

    async fn keys(&self, kid: Option<&str>) -> Result<JwkSet, String> {
        let cached = self.cache.lock().ok().and_then(|c| c.clone());
        match cached {
            Some((at, set))
                if at.elapsed() < FRESH
                    && (kid.is_none_or(|k| set.find(k).is_some())
                        || at.elapsed() < REFETCH_EVERY) =>
            {
                Ok(set)
            }
            Some((at, set)) if at.elapsed() < REFETCH_EVERY => Ok(set),
            stale => match self.fetch().await {
                Ok(set) => Ok(set),
                // The issuer is down: keys we have stay usable.
                Err(e) => stale.map(|(_, s)| s).ok_or(e),
            },
        }
    }

    pub(super) async fn verify(&self, token: &str) -> Result<Caller, String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| "the token is not a readable JWT".to_owned())?;
        // Only asymmetric algorithms: a JWKS holds public keys, and HS256 "signed" with a
        // public key is the classic forgery.
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        ) {
            return Err(format!(
                "the token's algorithm {:?} is not accepted",
                header.alg
            ));
        }
        let set = self.keys(header.kid.as_deref()).await?;
        let jwk = match header.kid.as_deref() {
            Some(kid) => set.find(kid),
            None => set.keys.first(),
        }
        .ok_or("the token was signed by a key the issuer does not publish")?;
        let key =
            DecodingKey::from_jwk(jwk).map_err(|_| "the issuer's key cannot be used".to_owned())?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 30;
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::ExpiredSignature => "the token has expired".to_owned(),
                    K::InvalidAudience => {
                        format!("the token is not for audience `{}`", self.config.audience)
                    }
                    K::InvalidIssuer => {
                        format!("the token was not issued by `{}`", self.config.issuer)
                    }
                    K::InvalidSignature => "the token's signature does not verify".to_owned(),
                    K::ImmatureSignature => "the token is not valid yet".to_owned(),
                    K::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
                    _ => "the token is not valid".to_owned(),
                }
            })?;
        let claims = data.claims;
        let person = claims
            .get(&self.config.person_claim)
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                format!(
                    "the token has no `{}` claim naming the person",
                    self.config.person_claim
                )
            })?
            .to_owned();
        cutover_workflows::guard::check_principal(&person).map_err(|_| {
            format!(
                "the token's `{}` claim is not a usable name",
                self.config.person_claim
            )
        })?;
        let groups = claims
            .get(&self.config.groups_claim)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_str().map(str::to_owned))
                    .take(100)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Caller {
            person,
            groups,
            method: "oidc",
        })
    }
}
