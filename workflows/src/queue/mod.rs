//! What a start does while a rollout of the same service and environment runs (`on_busy`).
//!
//! - `reject` (the default): the start is refused, naming the running rollout.
//! - `queue_latest`: the release waits in `QueueWorkflow` (ID `queue/<service>/<environment>`)
//!   until the running rollout ends, then starts. A newer release queued meanwhile *replaces*
//!   the waiting one (it is started with Temporal's terminate-existing conflict policy: the
//!   waiting run, which has changed nothing, ends `terminated`), so only the newest waits.
//! - `supersede`: as `queue_latest`, and first the running rollout is aborted — it stops at its
//!   next checkpoint and rolls back — so the new release starts once that rollback is done.
//!
//! A `cutover rollout schedule` starts its rollouts through a queue entry too (ID
//! `queue/<service>/<environment>-<time>`), with the schedule's `on_busy`; with `reject`, the
//! entry starts the rollout at once or ends failed, naming the one running.
//!
//! The queue is a workflow, not a table, for the same reason as everything else here: a
//! receiver or worker that dies while a release waits loses nothing, and `temporal workflow
//! list` shows what waits.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy as TemporalRetryPolicy;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowContextView, WorkflowResult};

pub mod contracts;

use crate::plan::Plan;
use contracts::{AbortInput, AwaitInput, QueueActivities, StartInput, StartOutcome};

/// What a start does while a rollout of the same service and environment runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBusy {
    /// Refuse the start.
    #[default]
    Reject,
    /// Wait for the running rollout to end; a newer waiting release replaces this one.
    QueueLatest,
    /// Abort the running rollout (it rolls back), then start.
    Supersede,
}

impl OnBusy {
    /// The name in plans, rules, flags and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            OnBusy::Reject => "reject",
            OnBusy::QueueLatest => "queue_latest",
            OnBusy::Supersede => "supersede",
        }
    }

    /// From its name.
    ///
    /// # Errors
    /// The name is not one of the three, with what to write instead.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "reject" => Ok(OnBusy::Reject),
            "queue_latest" => Ok(OnBusy::QueueLatest),
            "supersede" => Ok(OnBusy::Supersede),
            other => Err(format!(
                "unknown on_busy `{}`; use `reject`, `queue_latest` or `supersede`",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// The queue's workflow ID for a service in an environment.
pub fn queue_id(service: &str, environment: &str) -> String {
    format!("queue/{service}/{environment}")
}

/// The input of `QueueWorkflow`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    /// The release waiting.
    pub plan: Plan,
    /// `queue_latest` or `supersede`.
    pub on_busy: OnBusy,
    /// Where its rollout runs.
    pub task_queue: String,
    /// Who queued it.
    pub by: String,
}

/// Where a queued release is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStatus {
    /// The release's version.
    pub version: String,
    /// `waiting` (for the rollout it queued behind), `aborting` (supersede), `started`.
    pub state: String,
    /// The rollout's run waited for, or the one started.
    pub run_id: Option<String>,
}

/// One release waiting for its service and environment to be free.
#[workflow]
pub struct QueueWorkflow {
    queued: Queued,
    status: QueueStatus,
}

#[workflow_methods]
impl QueueWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, queued: Queued) -> Self {
        let status = QueueStatus {
            version: queued.plan.version.clone(),
            state: "waiting".to_owned(),
            run_id: None,
        };
        Self { queued, status }
    }

    /// Aborts the running rollout if told to supersede it, waits for it to end, and starts the
    /// release; ends with the started rollout's run ID.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        let queued = ctx.state(|s| s.queued.clone());
        let rollout = queued.plan.workflow_id();
        let request_id = format!("queue-{}", ctx.run_id());
        if queued.on_busy == OnBusy::Supersede {
            ctx.state_mut(|s| s.status.state = "aborting".to_owned());
            let abort = AbortInput {
                workflow_id: rollout.clone(),
                by: queued.by.clone(),
                reason: format!("superseded by {}", queued.plan.version),
            };
            ctx.execute_activity(QueueActivities::abort_running, abort, short("abort"))
                .await?;
        }
        loop {
            // `reject` (a schedule's default) starts at once or not at all.
            if queued.on_busy != OnBusy::Reject {
                ctx.state_mut(|s| s.status.state = "waiting".to_owned());
                let wait = AwaitInput {
                    workflow_id: rollout.clone(),
                };
                ctx.execute_activity(QueueActivities::await_end, wait, waiting())
                    .await?;
            }
            let start = StartInput {
                plan: queued.plan.clone(),
                task_queue: queued.task_queue.clone(),
                request_id: request_id.clone(),
            };
            match ctx
                .execute_activity(QueueActivities::start, start, short("start"))
                .await?
            {
                StartOutcome::Started { run_id } => {
                    ctx.state_mut(|s| {
                        s.status.state = "started".to_owned();
                        s.status.run_id = Some(run_id.clone());
                    });
                    return Ok(run_id);
                }
                StartOutcome::Busy { run_id } if queued.on_busy == OnBusy::Reject => {
                    ctx.state_mut(|s| s.status.state = "refused".to_owned());
                    return Err(ApplicationFailure::builder(format!(
                        "not started: {rollout} (run {run_id}) is running, and on_busy is reject"
                    ))
                    .type_name("ServiceBusy".to_owned())
                    .non_retryable(true)
                    .build()
                    .into());
                }
                // Someone started another rollout first: queue behind it too.
                StartOutcome::Busy { run_id } => {
                    ctx.state_mut(|s| s.status.run_id = Some(run_id));
                }
            }
        }
    }

    /// Where the queued release is.
    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> QueueStatus {
        self.status.clone()
    }
}

/// 30 s per attempt, retried for a while: Temporal being briefly unreachable is not a reason
/// to drop a queued release.
fn short(what: &str) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            TemporalRetryPolicy::builder()
                .maximum_attempts(20)
                .initial_interval(Duration::from_secs(1))
                .maximum_interval(Duration::from_secs(30))
                .build(),
        )
        .summary(what.to_owned())
        .build()
}

/// Waiting can take as long as a rollout (approvals wait for days): heartbeats tell a lost
/// worker within 30 s, and each attempt may wait a week.
fn waiting() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(7 * 24 * 3600))
        .heartbeat_timeout(Duration::from_secs(30))
        .retry_policy(
            TemporalRetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .maximum_interval(Duration::from_secs(30))
                .build(),
        )
        .summary("wait for the running rollout".to_owned())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_busy_names_round_trip_and_bad_ones_say_what_to_write() {
        for o in [OnBusy::Reject, OnBusy::QueueLatest, OnBusy::Supersede] {
            assert_eq!(OnBusy::parse(o.as_str()), Ok(o));
            assert_eq!(
                serde_json::to_value(o).expect("serializes"),
                serde_json::json!(o.as_str())
            );
        }
        let err = OnBusy::parse("queue").expect_err("unknown");
        assert!(err.contains("queue_latest"), "{err}");
    }
}
