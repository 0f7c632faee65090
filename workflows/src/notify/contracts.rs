//! What the notification activity takes and returns.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

use crate::plan::notify::{Notifier, NotifyEvent};

/// One message: what happened to which run. Carries no secret (the notifier's destination is
/// a reference the worker resolves).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Its place among the run's messages (0-based): with the run ID, the delivery ID.
    pub seq: u32,
    /// What happened.
    pub event: NotifyEvent,
    /// The service.
    pub service: String,
    /// The environment.
    pub environment: String,
    /// The version released (rollouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The drill's name (drills).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    /// The workflow ID.
    pub workflow_id: String,
    /// The step it concerns (an approval, a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Why: a failure's reason, who paused and why, a drill's figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What a person runs next, e.g. the exact `cutover rollout approve …` command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// When it happened (the workflow's clock).
    pub at: Option<DateTime<Utc>>,
}

impl Message {
    /// One line for people (Slack's `text`, the webhook's `text`).
    pub fn text(&self) -> String {
        let what = match &self.drill {
            Some(drill) => format!(
                "DR drill `{drill}` of {}/{}",
                self.service, self.environment
            ),
            None => format!(
                "{} {} to {}",
                self.service,
                self.version.as_deref().unwrap_or("?"),
                self.environment
            ),
        };
        let step = self
            .step
            .as_deref()
            .map(|s| format!(" at step `{s}`"))
            .unwrap_or_default();
        let mut text = match self.event {
            NotifyEvent::Started => format!("{what}: started"),
            NotifyEvent::Approval => format!("{what}: waiting for approval{step}"),
            NotifyEvent::Paused => format!("{what}: paused{step}"),
            NotifyEvent::Failed => format!("{what}: failed{step}"),
            NotifyEvent::RolledBack => format!("{what}: failed{step} and was rolled back"),
            NotifyEvent::Succeeded => format!("{what}: succeeded"),
            NotifyEvent::Passed => format!("{what}: passed"),
            NotifyEvent::Missed => format!("{what}: missed its objectives"),
        };
        if let Some(reason) = &self.reason {
            text.push_str(&format!(" — {reason}"));
        }
        if let Some(command) = &self.command {
            text.push_str(&format!("\n`{command}`"));
        }
        text
    }
}

/// Input of `notify.send`: one message to one notifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotifyInput {
    /// Where to.
    pub notifier: Notifier,
    /// What.
    pub message: Message,
}

/// What the destination answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotifyOutput {
    /// The HTTP status.
    pub status: u16,
}

/// The notification activities.
pub struct NotifyActivities;

#[activity_definitions]
impl NotifyActivities {
    /// Sends one message to one notifier: one HTTP request (a 2xx is success; a 4xx other
    /// than 408/429 is not retried; anything else is). The webhook's delivery ID is the run's
    /// and the message's, so a receiver can drop repeats.
    #[activity(name = "notify.send")]
    pub fn send(input: NotifyInput) -> Result<NotifyOutput, ActivityError> {
        unimplemented!()
    }
}

pub use notify_activities::Send;
