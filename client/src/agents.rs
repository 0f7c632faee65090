//! Host agents as Temporal sees them: who polls which host's queue, and whether a rollout's
//! step sits waiting for an agent that is not there.
//!
//! Temporal knows pollers per task queue but has no call that lists queues, so every agent
//! also polls [`hosts::AGENTS_QUEUE`] with an identity that names its host
//! (`cutover-agent/<host>/<pid>@<machine>`): describing that one queue finds every host, and
//! describing each host's queue says whether its agent is really polling there.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cutover_workflows::hosts;
use cutover_workflows::status::{RolloutStatus, StepState};
use serde::Serialize;
use temporalio_client::{Client, NamespacedClient, tonic};
use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_common::protos::temporal::api::enums::v1::{
    PendingActivityState, TaskQueueKind, TaskQueueType,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::{PollerInfo, TaskQueue};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeTaskQueueRequest, DescribeWorkflowExecutionRequest,
};

/// A step's activity scheduled on a host's queue for this long without being taken is
/// reported as waiting for that host. Shorter than any agent needs to take a task it can take.
pub const WAITING_AFTER: Duration = Duration::from_secs(5);

/// A live agent re-polls at least every minute (Temporal's long poll ends after 60 s); one
/// not seen for longer than this has stopped (Temporal forgets it after about 5 minutes).
pub const POLLING_WITHIN: Duration = Duration::from_secs(70);

/// One agent polling, as Temporal reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agent {
    /// The host it serves.
    pub host: String,
    /// Its host's task queue.
    pub task_queue: String,
    /// Its poller identity (`cutover-agent/<host>/<pid>@<machine>`).
    pub identity: String,
    /// When it last polled its host's queue; `None` if Temporal has seen it only on the agents'
    /// queue (it is starting, or something else is wrong).
    pub last_poll: Option<DateTime<Utc>>,
    /// Whether it still polls: its last poll is less than [`POLLING_WITHIN`] old.
    pub polling: bool,
}

/// Whether an agent whose last poll was at `last_poll` still polls at `now`.
fn still_polling(last_poll: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_poll
        .and_then(|at| (now - at).to_std().ok().or(Some(Duration::ZERO)))
        .is_some_and(|age| age <= POLLING_WITHIN)
}

/// Temporal could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("asking Temporal about agents failed: {0}")]
pub struct AgentsError(String);

/// Every agent that has polled recently (Temporal keeps pollers for a few minutes), by host.
///
/// # Errors
/// [`AgentsError`] when Temporal cannot be asked.
pub async fn list(client: &Client) -> Result<Vec<Agent>, AgentsError> {
    let listed = pollers(client, hosts::AGENTS_QUEUE).await?;
    let names: BTreeSet<&str> = listed
        .iter()
        .filter_map(|p| hosts::host_of_identity(&p.identity))
        .collect();
    let mut agents = Vec::new();
    for host in names {
        let queue = hosts::task_queue(host);
        let polling = pollers(client, &queue).await?;
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for p in &polling {
            seen.insert(p.identity.clone());
            let last_poll = p
                .last_access_time
                .as_ref()
                .and_then(|t| to_utc(t.seconds, t.nanos));
            agents.push(Agent {
                host: host.to_owned(),
                task_queue: queue.clone(),
                identity: p.identity.clone(),
                last_poll,
                polling: still_polling(last_poll, Utc::now()),
            });
        }
        for p in listed.iter().filter(|p| {
            hosts::host_of_identity(&p.identity) == Some(host) && !seen.contains(&p.identity)
        }) {
            agents.push(Agent {
                host: host.to_owned(),
                task_queue: queue.clone(),
                identity: p.identity.clone(),
                last_poll: None,
                polling: false,
            });
        }
    }
    Ok(agents)
}

/// The pollers Temporal has seen on `queue` (activity tasks) in the last few minutes.
///
/// # Errors
/// [`AgentsError`] when Temporal cannot be asked.
pub async fn pollers(client: &Client, queue: &str) -> Result<Vec<PollerInfo>, AgentsError> {
    let request = DescribeTaskQueueRequest {
        namespace: client.namespace(),
        task_queue: Some(TaskQueue {
            name: queue.to_owned(),
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        }),
        task_queue_type: TaskQueueType::Activity as i32,
        ..Default::default()
    };
    client
        .connection()
        .workflow_service()
        .describe_task_queue(tonic::Request::new(request))
        .await
        .map(|r| r.into_inner().pollers)
        .map_err(|s| AgentsError(format!("describing task queue {queue}: {}", s.message())))
}

/// What the rollout waits for, when its running step's activity has sat on its host's queue
/// for [`WAITING_AFTER`] or more without an agent taking it: "waiting for host web-2 (no agent
/// polling cutover-host-web-2 for 31s)". `None` when nothing waits for a host, or Temporal
/// cannot be asked (this is a hint on top of the status, never a reason to fail).
pub async fn waiting_for_host(
    client: &Client,
    workflow_id: &str,
    status: &RolloutStatus,
) -> Option<String> {
    let running = status
        .steps
        .iter()
        .find(|s| matches!(s.state, StepState::Running | StepState::Retrying))?;
    // One host for the step, or (on a fleet) whichever host's queue holds the oldest task.
    let single = running.host.clone();
    if single.is_none() && running.fleet.is_none() {
        return None;
    }
    let request = DescribeWorkflowExecutionRequest {
        namespace: client.namespace(),
        execution: Some(WorkflowExecution {
            workflow_id: workflow_id.to_owned(),
            run_id: String::new(),
        }),
    };
    let described = client
        .connection()
        .workflow_service()
        .describe_workflow_execution(tonic::Request::new(request))
        .await
        .ok()?
        .into_inner();
    let (scheduled, host) = described
        .pending_activities
        .iter()
        .filter(|a| a.state == PendingActivityState::Scheduled as i32)
        .filter_map(|a| {
            let queue = a
                .activity_options
                .as_ref()
                .and_then(|o| o.task_queue.as_ref())
                .map(|q| q.name.as_str());
            let host = match (
                queue.and_then(|q| q.strip_prefix(hosts::HOST_QUEUE_PREFIX)),
                &single,
            ) {
                (Some(h), Some(s)) if h != s => return None,
                (Some(h), _) => h.to_owned(),
                (None, Some(s)) if queue.is_none() => s.clone(),
                _ => return None,
            };
            let at = a
                .scheduled_time
                .as_ref()
                .and_then(|t| to_utc(t.seconds, t.nanos))?;
            Some((at, host))
        })
        .min()?;
    let queue = hosts::task_queue(&host);
    let last_poll = pollers(client, &queue)
        .await
        .ok()?
        .iter()
        .filter_map(|p| {
            p.last_access_time
                .as_ref()
                .and_then(|t| to_utc(t.seconds, t.nanos))
        })
        .max();
    describe_wait(&host, scheduled, last_poll, Utc::now())
}

/// The words for a wait that began at `scheduled`, given the host queue's latest poll.
fn describe_wait(
    host: &str,
    scheduled: DateTime<Utc>,
    last_poll: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<String> {
    let waited = (now - scheduled).to_std().ok()?;
    if waited < WAITING_AFTER {
        return None;
    }
    let queue = hosts::task_queue(host);
    Some(match last_poll {
        // An agent polled after the task was queued and still did not take it: it is full.
        Some(at) if at > scheduled => format!(
            "waiting for host {host} (its agent polls {queue} but has had no free slot for {})",
            whole_seconds(waited)
        ),
        Some(at) => format!(
            "waiting for host {host} (no agent polling {queue} for {})",
            whole_seconds((now - at).to_std().unwrap_or(waited))
        ),
        None => format!(
            "waiting for host {host} (no agent has polled {queue}; start `cutover-worker --host {host}` there)"
        ),
    })
}

fn whole_seconds(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// A protobuf timestamp's fields as a time (the SDK's `Timestamp` type is not re-exported).
fn to_utc(seconds: i64, nanos: i32) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, u32::try_from(nanos).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("valid time")
    }

    #[test]
    fn an_agent_not_seen_for_over_a_long_poll_has_stopped() {
        assert!(still_polling(Some(at(0)), at(60)));
        assert!(still_polling(Some(at(5)), at(0)), "a clock slightly behind");
        assert!(!still_polling(Some(at(0)), at(71)));
        assert!(!still_polling(None, at(0)));
    }

    #[test]
    fn a_short_wait_is_not_news() {
        assert_eq!(describe_wait("web-2", at(0), None, at(4)), None);
    }

    #[test]
    fn a_wait_says_how_long_nobody_polled() {
        assert_eq!(
            describe_wait("web-2", at(10), Some(at(0)), at(30)).as_deref(),
            Some("waiting for host web-2 (no agent polling cutover-host-web-2 for 30s)")
        );
        assert_eq!(
            describe_wait("web-2", at(0), None, at(6)).as_deref(),
            Some(
                "waiting for host web-2 (no agent has polled cutover-host-web-2; start `cutover-worker --host web-2` there)"
            )
        );
    }

    #[test]
    fn an_agent_that_polls_but_does_not_take_the_task_is_full() {
        assert_eq!(
            describe_wait("web-2", at(0), Some(at(5)), at(8)).as_deref(),
            Some(
                "waiting for host web-2 (its agent polls cutover-host-web-2 but has had no free slot for 8s)"
            )
        );
    }
}
