//! Messages people send to a running rollout. Signals where fire-and-forget fits (`pause`,
//! `resume`); updates where the caller needs a validated answer (`approve`, `promote`).
//!
//! With the standard CLI: `temporal workflow signal -w rollout/<svc>/<env> --name pause
//! --input '{"by":"ana","reason":"investigating"}'`.

use serde::{Deserialize, Serialize};

/// `pause` signal: stop before the next step, and stop the clock of a running bake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PauseRequest {
    /// Who.
    pub by: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// `resume` signal: carry on from where the pause stopped it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeRequest {
    /// Who.
    pub by: String,
}

/// `approve` update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApproveRequest {
    /// Who approves; the same person approving twice counts once.
    pub approver: String,
    /// What they say.
    #[serde(default)]
    pub comment: Option<String>,
}

/// The answer to `approve`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApproveResult {
    /// The step waiting for approval.
    pub step: String,
    /// False when this approver had already approved.
    pub counted: bool,
    /// Distinct approvals so far.
    pub approvals: u32,
    /// Approvals needed.
    pub required: u32,
}

/// `promote` update: end the running bake (or canary hold) now and go on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromoteRequest {
    /// Who.
    pub by: String,
}

/// The answer to `promote`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromoteResult {
    /// The step whose wait was cut short.
    pub step: String,
}

/// Longest name or reason accepted in a message.
pub(crate) const MAX_TEXT: usize = 200;

/// Checks a person's name: present, short, printable.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("{what} is empty; say who you are"));
    }
    if name.chars().count() > MAX_TEXT || name.chars().any(char::is_control) {
        return Err(format!(
            "{what} must be at most {MAX_TEXT} printable characters"
        ));
    }
    Ok(())
}

/// Signal `abort`: stop the rollout and undo what it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AbortRequest {
    /// Who.
    pub by: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}
