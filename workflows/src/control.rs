//! Messages people send to a running rollout. Signals where fire-and-forget fits (`pause`,
//! `resume`); updates where the caller needs a validated answer (`approve`, `promote`).
//!
//! With the standard CLI: `temporal workflow signal -w rollout/<svc>/<env> --name pause
//! --input '{"by":"ana","reason":"investigating"}'`.

use serde::{Deserialize, Serialize};

pub use crate::guard::{Action, Assertion};

/// `pause` signal: stop before the next step, and stop the clock of a running bake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PauseRequest {
    /// Who.
    pub by: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// Who is acting, signed by `cutover serve` (required by plans that say who may act).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<Assertion>,
}

/// `resume` signal: carry on from where the pause stopped it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeRequest {
    /// Who.
    pub by: String,
    /// Who is acting, signed by `cutover serve` (required by plans that say who may act).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<Assertion>,
}

/// `approve` update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApproveRequest {
    /// Who approves; the same person approving twice counts once.
    pub approver: String,
    /// What they say.
    #[serde(default)]
    pub comment: Option<String>,
    /// Who is acting, signed by `cutover serve` (required by plans that say who may act).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<Assertion>,
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
    /// A canary skips to its end (past pauses and analyses; approvals still wait) rather
    /// than to its next gate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
    /// Who is acting, signed by `cutover serve` (required by plans that say who may act).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<Assertion>,
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
    /// Who is acting, signed by `cutover serve` (required by plans that say who may act).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<Assertion>,
}

/// `control` update: any human action, in one shape. `cutover serve` sends this, with an
/// assertion, for actions people take through it; the answer says whether the workflow
/// accepted the action, and why not (a refusal by the plan's rules is an answer, not an
/// error, so the receiver can tell it from "nothing to act on").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// What.
    pub action: Action,
    /// Who, as the caller says (replaced by the assertion's person when there is one).
    pub by: String,
    /// Why, or a comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `promote`: to the canary's end rather than its next gate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
    /// Who is acting, signed by `cutover serve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<Assertion>,
}

/// The answer to `control`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlResult {
    /// Whether the action was accepted.
    pub accepted: bool,
    /// The action.
    pub action: Action,
    /// Who, as the workflow knows them.
    pub by: String,
    /// The step it concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What happened, or why it was refused.
    pub message: String,
}
