//! `notify:` — who is told what, where people already look.
//!
//! A plan, a drill plan or a trigger rule lists notifiers: a Slack-compatible incoming webhook,
//! or a generic JSON webhook signed like the generic trigger (HMAC-SHA256 over
//! `<timestamp>.<body>`). Each says which events it wants. Destinations are secret references
//! (an environment variable or a file on the worker): a webhook URL is a credential, so only
//! the reference enters the workflow's history.

use serde::{Deserialize, Serialize};

use super::types::SecretRef;

/// Most notifiers in one plan: each event is one activity per notifier.
pub const MAX_NOTIFIERS: usize = 8;

/// One destination and the events it wants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifier {
    /// Its name in `status` (name rules); defaults to the destination's kind.
    pub name: String,
    /// Where messages go.
    pub to: Destination,
    /// The events sent; empty means every event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<NotifyEvent>,
}

impl Notifier {
    /// Whether this notifier wants `event`.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.on.is_empty() || self.on.contains(&event)
    }
}

/// Where a notifier sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    /// A Slack (or Mattermost, or Rocket.Chat) incoming webhook: `{"text": …}`.
    Slack {
        /// The webhook URL.
        url: SecretRef,
    },
    /// Any HTTP endpoint: the event as JSON, signed with `secret`.
    Webhook {
        /// The URL.
        url: SecretRef,
        /// The HMAC-SHA256 key for `X-Cutover-Signature`.
        secret: SecretRef,
    },
}

impl Destination {
    /// `slack` or `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Slack { .. } => "slack",
            Destination::Webhook { .. } => "webhook",
        }
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A rollout or drill began.
    Started,
    /// A rollout waits for approval (the message carries the command that approves it).
    Approval,
    /// A rollout was paused, by a person or by `on_failure: pause`.
    Paused,
    /// A rollout failed (the message carries the reason).
    Failed,
    /// A rollout failed and what it did was undone.
    RolledBack,
    /// A rollout finished every step.
    Succeeded,
    /// A drill met its objectives.
    Passed,
    /// A drill ran but missed an objective, or failed.
    Missed,
}

impl NotifyEvent {
    /// Every event, in the order the docs list them.
    pub const ALL: [NotifyEvent; 8] = [
        NotifyEvent::Started,
        NotifyEvent::Approval,
        NotifyEvent::Paused,
        NotifyEvent::Failed,
        NotifyEvent::RolledBack,
        NotifyEvent::Succeeded,
        NotifyEvent::Passed,
        NotifyEvent::Missed,
    ];

    /// The YAML name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Started => "started",
            NotifyEvent::Approval => "approval",
            NotifyEvent::Paused => "paused",
            NotifyEvent::Failed => "failed",
            NotifyEvent::RolledBack => "rolled_back",
            NotifyEvent::Succeeded => "succeeded",
            NotifyEvent::Passed => "passed",
            NotifyEvent::Missed => "missed",
        }
    }

    /// The event named `text`.
    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }

    /// Whether the event ends the run: its message is the last, and the run waits (briefly)
    /// for it before closing.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            NotifyEvent::Failed
                | NotifyEvent::RolledBack
                | NotifyEvent::Succeeded
                | NotifyEvent::Passed
                | NotifyEvent::Missed
        )
    }
}

/// The events a rollout sends.
pub const ROLLOUT_EVENTS: &[NotifyEvent] = &[
    NotifyEvent::Started,
    NotifyEvent::Approval,
    NotifyEvent::Paused,
    NotifyEvent::Failed,
    NotifyEvent::RolledBack,
    NotifyEvent::Succeeded,
];

/// The events a drill sends.
pub const DRILL_EVENTS: &[NotifyEvent] = &[
    NotifyEvent::Started,
    NotifyEvent::Passed,
    NotifyEvent::Missed,
];
