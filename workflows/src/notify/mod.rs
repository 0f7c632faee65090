//! Notifications, sent beside the work and never in its way.
//!
//! Workflow code (and signal handlers) only *queue* a [`Message`] in the run's [`Outbox`]; a
//! pump running beside the steps sends each, in order, to every notifier that wants it, one
//! `notify.send` activity per attempt, with the workflow's own backoff so that every attempt
//! and its outcome is in `status` (`notifications`). A notifier that is down delays only the
//! messages after it, never a step; the run waits for its final message only for the short
//! budget of [`FINAL_ATTEMPTS`], and a notifier that is still failing then is recorded as
//! failed. Nothing here is cancelled with the run: a cancelled rollout still says so.
//!
//! A plan without `notify:` queues nothing and issues no command.

pub mod contracts;

use std::time::Duration;

use futures::FutureExt;
use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy as TemporalRetryPolicy;
use temporalio_sdk::{
    ActivityOptions, TimerOptions, WaitConditionOptions, WorkflowCancellationToken, WorkflowContext,
};

pub use contracts::{Message, NotifyActivities, NotifyInput, NotifyOutput};

use crate::plan::notify::{Notifier, NotifyEvent};

/// Attempts per notifier for a message sent while the run goes on.
pub const ATTEMPTS: u32 = 5;
/// Attempts per notifier for the run's last message, which the run waits for.
pub const FINAL_ATTEMPTS: u32 = 3;
/// Each attempt's limit: one HTTP request.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The wait before the second attempt; it doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Where one notifier's delivery of one message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeState {
    /// An attempt is under way.
    Sending,
    /// The destination accepted it.
    Sent,
    /// An attempt failed; another follows.
    Retrying,
    /// Every attempt failed, or the destination refused it for good.
    Failed,
}

/// One notifier's delivery of one message, as `status` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoticeStatus {
    /// The notifier's name.
    pub notifier: String,
    /// The event.
    pub event: NotifyEvent,
    /// Where it is.
    pub state: NoticeState,
    /// Attempts so far.
    pub attempts: u32,
    /// The last attempt's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Messages queued by the run, and how far each notifier's lane got.
#[derive(Debug, Default)]
pub struct Outbox {
    queued: Vec<Message>,
    /// Per notifier (by position in the plan): messages `0..cursor` are dealt with.
    cursors: Vec<usize>,
    closing: bool,
}

impl Outbox {
    /// Queues `message` when any of `notifiers` wants its event; numbers it.
    pub fn queue(&mut self, notifiers: &[Notifier], mut message: Message) {
        if !notifiers.iter().any(|n| n.wants(message.event)) {
            return;
        }
        message.seq = u32::try_from(self.queued.len()).unwrap_or(u32::MAX);
        self.queued.push(message);
    }

    /// The run is ending: send what is queued, then stop.
    pub fn close(&mut self) {
        self.closing = true;
    }

    fn cursor(&self, lane: usize) -> usize {
        self.cursors.get(lane).copied().unwrap_or(0)
    }
}

/// A workflow that notifies: its notifiers, its outbox, and the list `status` shows.
pub trait Notifying: 'static {
    /// The plan's notifiers.
    fn notifiers(&self) -> &[Notifier];
    /// The outbox.
    fn outbox(&self) -> &Outbox;
    /// The outbox, to change.
    fn outbox_mut(&mut self) -> &mut Outbox;
    /// Deliveries as `status` shows them.
    fn notices_mut(&mut self) -> &mut Vec<NoticeStatus>;
}

/// Sends queued messages until the run closes the outbox, then what is left: one lane per
/// notifier, so a notifier that is down delays only its own messages.
pub async fn pump<W: Notifying>(ctx: WorkflowContext<W>) {
    let lanes = ctx.state(|s| s.notifiers().len());
    if lanes == 0 {
        return;
    }
    ctx.state_mut(|s| s.outbox_mut().cursors = vec![0; lanes]);
    futures::future::join_all((0..lanes).map(|lane| run_lane(&ctx, lane))).await;
}

/// A cancellation token nothing cancels: notifications outlive a cancelled run.
fn never() -> WaitConditionOptions {
    WaitConditionOptions::builder()
        .cancellation_token(WorkflowCancellationToken::new())
        .build()
}

async fn run_lane<W: Notifying>(ctx: &WorkflowContext<W>, lane: usize) {
    let notifier = ctx.state(|s| s.notifiers()[lane].clone());
    loop {
        let _ = ctx
            .wait_condition_with_options(
                |s| s.outbox().cursor(lane) < s.outbox().queued.len() || s.outbox().closing,
                never(),
            )
            .await;
        while let Some(message) =
            ctx.state(|s| s.outbox().queued.get(s.outbox().cursor(lane)).cloned())
        {
            ctx.state_mut(|s| s.outbox_mut().cursors[lane] += 1);
            if notifier.wants(message.event) {
                deliver(ctx, &notifier, message).await;
            }
        }
        if ctx.state(|s| s.outbox().closing) {
            return;
        }
    }
}

/// Delivers `message` to `notifier`, attempt by attempt, keeping its entry in `status`. A
/// message sent while the run goes on stops retrying when the run ends (its last message
/// matters more); the last message gets [`FINAL_ATTEMPTS`].
async fn deliver<W: Notifying>(ctx: &WorkflowContext<W>, notifier: &Notifier, message: Message) {
    let last = message.event.is_final();
    let budget = if last { FINAL_ATTEMPTS } else { ATTEMPTS };
    let index = ctx.state_mut(|s| {
        let notices = s.notices_mut();
        notices.push(NoticeStatus {
            notifier: notifier.name.clone(),
            event: message.event,
            state: NoticeState::Sending,
            attempts: 0,
            last_error: None,
        });
        notices.len() - 1
    });
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=budget {
        ctx.state_mut(|s| {
            let n = &mut s.notices_mut()[index];
            n.state = NoticeState::Sending;
            n.attempts = attempt;
        });
        let mut opts = ActivityOptions::with_start_to_close_timeout(ATTEMPT_TIMEOUT)
            .retry_policy(TemporalRetryPolicy::builder().maximum_attempts(1).build())
            .summary(format!(
                "notify {}: {}",
                notifier.name,
                message.event.as_str()
            ))
            .build();
        opts.cancellation_token = Some(WorkflowCancellationToken::new());
        let input = NotifyInput {
            notifier: notifier.clone(),
            message: message.clone(),
        };
        let (error, retryable) = match ctx
            .execute_activity(NotifyActivities::send, input, opts)
            .await
        {
            Ok(_) => {
                ctx.state_mut(|s| {
                    let n = &mut s.notices_mut()[index];
                    n.state = NoticeState::Sent;
                    n.last_error = None;
                });
                return;
            }
            Err(e) => (
                crate::activity_error::message(&e),
                crate::activity_error::retryable(&e),
            ),
        };
        let again = attempt < budget && retryable;
        let fail = |ctx: &WorkflowContext<W>, why: String| {
            ctx.state_mut(|s| {
                let n = &mut s.notices_mut()[index];
                n.state = NoticeState::Failed;
                n.last_error = Some(why);
            })
        };
        if !again {
            fail(ctx, error);
            return;
        }
        ctx.state_mut(|s| {
            let n = &mut s.notices_mut()[index];
            n.state = NoticeState::Retrying;
            n.last_error = Some(error.clone());
        });
        // Wait out the backoff, unless the run ends first and this is not its last message.
        let mut timer = ctx.timer(
            TimerOptions::builder(backoff)
                .cancellation_token(WorkflowCancellationToken::new())
                .build(),
        );
        let mut ended = std::pin::pin!(
            async {
                if last {
                    futures::future::pending::<()>().await;
                }
                let _ = ctx
                    .wait_condition_with_options(|s| s.outbox().closing, never())
                    .await;
            }
            .fuse()
        );
        let cut_short = temporalio_sdk::workflows::select! {
            _ = timer => false,
            _ = ended => true,
        };
        if cut_short {
            fail(ctx, format!("{error} (not retried: the run ended)"));
            return;
        }
        backoff *= 2;
    }
}
