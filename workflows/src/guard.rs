//! Who may act on a rollout, and how the workflow knows who is acting.
//!
//! A plan that names `approvers:` on an approval step, `controls:`, or `separation: author`
//! is *guarded*: every human action on it (approve, refuse, promote, pause, resume, abort,
//! retry) must carry an [`Assertion`] — a statement of who is acting, signed by `cutover serve`
//! after it verified the person's API token or OIDC token. The workflow checks the signature
//! against the public keys in the worker's configuration ([`set_verifying_keys`]); that is pure
//! computation, so it replays the same way. Anyone who can reach the Temporal namespace can
//! send an update, but nobody without the receiver's private key can make one that a guarded
//! rollout accepts.
//!
//! Plans without those keys keep the old behaviour: the name the caller gives is recorded as
//! claimed, not verified.

use std::collections::BTreeSet;
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::plan::{Plan, Separation, StepAction};

/// How far an assertion's time may be from the workflow's clock. It is made by the receiver
/// just before it sends the update; anything older is a replayed capture.
pub const MAX_SKEW_SECS: i64 = 300;

/// A human action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Count toward the waiting approval step.
    Approve,
    /// Say no at the waiting approval step: the rollout fails and rolls back.
    Refuse,
    /// End the running bake or canary hold now.
    Promote,
    /// Stop before the next step.
    Pause,
    /// Carry on after a pause.
    Resume,
    /// Stop and roll back.
    Abort,
    /// Re-run the failed step held by `on_failure: pause`.
    Retry,
}

impl Action {
    /// Every action, for messages and parsing.
    pub const ALL: [Action; 7] = [
        Action::Approve,
        Action::Refuse,
        Action::Promote,
        Action::Pause,
        Action::Resume,
        Action::Abort,
        Action::Retry,
    ];

    /// Its name in URLs, the audit trail and status.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Refuse => "refuse",
            Action::Promote => "promote",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Abort => "abort",
            Action::Retry => "retry",
        }
    }

    /// The action named `text`.
    pub fn parse(text: &str) -> Option<Action> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// What the receiver vouches for: this person, in these groups, takes this action on this
/// rollout's step, now. `nonce` makes each assertion single-use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The action.
    pub action: Action,
    /// The rollout's workflow ID.
    pub workflow_id: String,
    /// The step acted on, when the action concerns one (approve, refuse, promote, retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The verified person.
    pub person: String,
    /// Their groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// How the receiver verified them: `token` or `oidc`.
    pub method: String,
    /// When, in Unix seconds.
    pub issued_at: i64,
    /// Random, single-use.
    pub nonce: String,
}

/// Signed [`Claims`]: `payload` is the claims' JSON in base64, `signature` the Ed25519
/// signature of those bytes in base64. Signing the bytes (not a re-serialisation) means the
/// workflow checks exactly what the receiver signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assertion {
    /// Base64 of the claims' JSON.
    pub payload: String,
    /// Base64 Ed25519 signature of the payload's bytes.
    pub signature: String,
}

impl Assertion {
    /// Signs `claims` with the receiver's key.
    pub fn sign(key: &SigningKey, claims: &Claims) -> Assertion {
        let bytes = serde_json::to_vec(claims).unwrap_or_default();
        let signature = key.sign(&bytes);
        Assertion {
            payload: B64.encode(&bytes),
            signature: B64.encode(signature.to_bytes()),
        }
    }

    /// The claims, if one of `keys` signed them.
    ///
    /// # Errors
    /// Garbled, or signed by no key in `keys`.
    pub fn verify(&self, keys: &[VerifyingKey]) -> Result<Claims, String> {
        let bytes = B64
            .decode(&self.payload)
            .map_err(|_| "the identity assertion is garbled".to_owned())?;
        let signature = B64
            .decode(&self.signature)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or_else(|| "the identity assertion's signature is garbled".to_owned())?;
        if keys.is_empty() {
            return Err("this worker has no assertion key configured (`assertion_public_keys` in the worker's configuration), so it cannot verify who is acting".to_owned());
        }
        if !keys.iter().any(|k| k.verify(&bytes, &signature).is_ok()) {
            return Err(
                "the identity assertion's signature does not verify with the worker's assertion keys (forged, or signed by another receiver)".to_owned(),
            );
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("the identity assertion is garbled: {e}"))
    }
}

static KEYS: RwLock<Vec<VerifyingKey>> = RwLock::new(Vec::new());

/// Sets the public keys assertions are verified with (the worker does this at start, from its
/// configuration). Several keys allow rotating the receiver's key: add the new one, switch the
/// receiver, remove the old one once no running rollout needs to replay with it.
pub fn set_verifying_keys(keys: Vec<VerifyingKey>) {
    if let Ok(mut slot) = KEYS.write() {
        *slot = keys;
    }
}

fn verifying_keys() -> Vec<VerifyingKey> {
    KEYS.read().map(|k| k.clone()).unwrap_or_default()
}

/// Reads a public key: 64 hex digits, or a PEM `PUBLIC KEY` (SPKI).
///
/// # Errors
/// Neither.
pub fn parse_verifying_key(text: &str) -> Result<VerifyingKey, String> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(text)
            .map_err(|e| format!("not an Ed25519 public key in PEM: {e}"));
    }
    let bytes: [u8; 32] = hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("expected 64 hex digits or a PEM `PUBLIC KEY`")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// Reads a private key: 64 hex digits (the seed), or a PEM `PRIVATE KEY` (PKCS#8).
///
/// # Errors
/// Neither.
pub fn parse_signing_key(text: &str) -> Result<SigningKey, String> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return SigningKey::from_pkcs8_pem(text)
            .map_err(|_| "not an Ed25519 private key in PEM (PKCS#8)".to_owned());
    }
    let bytes: [u8; 32] = hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("expected 64 hex digits or a PEM `PRIVATE KEY`")?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// Checks a plan entry naming who may act: `NAME` or `group:NAME`.
///
/// # Errors
/// What is wrong with it.
pub fn check_principal(entry: &str) -> Result<(), String> {
    let name = entry.strip_prefix("group:").unwrap_or(entry);
    if name.is_empty() || name.len() > 100 {
        return Err(format!(
            "`{entry}` must name a person or group in 1 to 100 characters"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c))
    {
        return Err(format!(
            "`{entry}` may hold letters, digits and `._@+-` only"
        ));
    }
    Ok(())
}

/// The person acting, as the workflow came to know them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Who.
    pub person: String,
    /// Their groups (verified identities only).
    pub groups: Vec<String>,
    /// `token`, `oidc`, or `claimed` (a name the caller gave, unchecked).
    pub method: String,
    /// The assertion's nonce, spent once the action is accepted.
    pub nonce: Option<String>,
}

impl Identity {
    fn is(&self, entry: &str) -> bool {
        match entry.strip_prefix("group:") {
            Some(group) => self.groups.iter().any(|g| g == group),
            None => self.person == entry,
        }
    }
}

/// Whether the plan says who may act.
pub fn guarded(plan: &Plan) -> bool {
    plan.controls.is_some()
        || plan.separation.is_some()
        || plan.steps.iter().any(|s| match &s.action {
            StepAction::Approval(a) => !a.approvers.is_empty(),
            _ => false,
        })
}

/// What the workflow knows when an action arrives.
pub struct Request<'a> {
    /// The rollout's plan.
    pub plan: &'a Plan,
    /// Its workflow ID.
    pub workflow_id: &'a str,
    /// The action.
    pub action: Action,
    /// The step the action concerns, if any.
    pub step: Option<&'a str>,
    /// The name the caller gave.
    pub by: &'a str,
    /// The assertion, if one came.
    pub assertion: Option<&'a Assertion>,
    /// The workflow's clock.
    pub now: Option<DateTime<Utc>>,
    /// Nonces already spent on this rollout.
    pub spent: &'a BTreeSet<String>,
}

/// Who is acting: from the assertion when there is one (and it must then be valid), else the
/// claimed name — which a guarded plan refuses.
///
/// # Errors
/// Why the action is refused.
pub fn identify(r: &Request<'_>) -> Result<Identity, String> {
    let Some(assertion) = r.assertion else {
        if guarded(r.plan) {
            return Err(format!(
                "this rollout's plan says who may act, so `{action}` needs a verified identity: send it through `cutover serve` (`cutover rollout {action} --via URL` with your token)",
                action = r.action.as_str()
            ));
        }
        return Ok(Identity {
            person: r.by.to_owned(),
            groups: Vec::new(),
            method: "claimed".to_owned(),
            nonce: None,
        });
    };
    let claims = assertion.verify(&verifying_keys())?;
    if claims.action != r.action {
        return Err(format!(
            "the identity assertion is for `{}`, not `{}`",
            claims.action.as_str(),
            r.action.as_str()
        ));
    }
    if claims.workflow_id != r.workflow_id {
        return Err("the identity assertion is for another rollout".to_owned());
    }
    if let (Some(want), Some(got)) = (r.step, claims.step.as_deref())
        && want != got
    {
        return Err(format!(
            "the identity assertion is for step `{got}`, but the rollout is at `{want}`"
        ));
    }
    let now = r.now.map_or(0, |t| t.timestamp());
    if (now - claims.issued_at).abs() > MAX_SKEW_SECS {
        return Err(format!(
            "the identity assertion was made {}s from now (more than {MAX_SKEW_SECS}s): ask again",
            now - claims.issued_at
        ));
    }
    if r.spent.contains(&claims.nonce) {
        return Err("the identity assertion was already used (a replayed request)".to_owned());
    }
    if check_principal(&claims.person).is_err() {
        return Err("the identity assertion names no valid person".to_owned());
    }
    Ok(Identity {
        person: claims.person,
        groups: claims.groups,
        method: claims.method,
        nonce: Some(claims.nonce),
    })
}

/// Whether `who` may take the action, by the plan. `approvers` are the waiting approval
/// step's, for approve and refuse.
///
/// # Errors
/// Why not.
pub fn authorize(r: &Request<'_>, who: &Identity, approvers: &[String]) -> Result<(), String> {
    let list: Option<&[String]> = match r.action {
        Action::Approve | Action::Refuse => (!approvers.is_empty()).then_some(approvers),
        Action::Promote => controls(r.plan, |c| c.promote.as_deref()),
        Action::Pause => controls(r.plan, |c| c.pause.as_deref()),
        Action::Resume => controls(r.plan, |c| c.resume.as_deref()),
        Action::Abort => controls(r.plan, |c| c.abort.as_deref()),
        Action::Retry => controls(r.plan, |c| c.retry.as_deref()),
    };
    if let Some(list) = list
        && !list.iter().any(|e| who.is(e))
    {
        return Err(format!(
            "{} may not {} this rollout: the plan allows {}",
            who.person,
            r.action.as_str(),
            list.join(", ")
        ));
    }
    if r.action == Action::Approve
        && r.plan.separation == Some(Separation::Author)
        && r.plan
            .trigger
            .as_ref()
            .and_then(|t| t.author.as_deref())
            .is_some_and(|a| a == who.person)
    {
        return Err(format!(
            "{} created this release and may not approve it (`separation: author`)",
            who.person
        ));
    }
    Ok(())
}

fn controls<'a>(
    plan: &'a Plan,
    pick: impl Fn(&'a crate::plan::Controls) -> Option<&'a [String]>,
) -> Option<&'a [String]> {
    plan.controls.as_ref().and_then(pick)
}

#[cfg(test)]
mod tests;
