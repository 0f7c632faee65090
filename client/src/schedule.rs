//! Drills and rollouts on a calendar: Temporal Schedules that start `DrillWorkflow`, or a
//! `QueueWorkflow` entry that starts the rollout (see [`create_rollout_schedule`]).
//!
//! A schedule's runs are ordinary drills with the IDs `drill/<service>/<environment>/<drill>-<time>`
//! (Temporal appends the scheduled time), so they are listed, reported and locked like a drill
//! started by hand. Overlap policy *skip*: a drill still running when the next one is due is
//! not joined by a second one. The catch-up window bounds how late a missed run (the server
//! was down) may still start: a weekly drill should not fire hours late in business time.

use std::time::Duration;

use cutover_workflows::drill::{DrillPlan, DrillWorkflow};
use cutover_workflows::plan::{Plan, Trigger, TriggerKind};
use cutover_workflows::queue::{OnBusy, QueueWorkflow, Queued, queue_id};
use serde_json::json;
use temporalio_client::{Client, NamespacedClient, tonic};
use temporalio_common::protos::temporal::api::common::v1::Memo;
use temporalio_common::protos::temporal::api::enums::v1::ScheduleOverlapPolicy;
use temporalio_common::protos::temporal::api::schedule::v1::{
    Schedule, ScheduleAction, SchedulePolicies, ScheduleSpec, ScheduleState, schedule_action,
};
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;
use temporalio_common::protos::temporal::api::workflowservice::v1::CreateScheduleRequest;

use crate::rollout::{json_input, json_payload, normal_queue, workflow_type};

/// Memo key: the cron expression as written.
pub const CRON_MEMO: &str = "cron";
/// Memo key: its time zone.
pub const TIMEZONE_MEMO: &str = "timezone";
/// Memo key: the drill's workflow ID (the prefix of its runs' IDs).
pub const DRILL_MEMO: &str = "drill";
/// Memo key: the rollout's workflow ID (`rollout/<service>/<environment>`).
pub const ROLLOUT_MEMO: &str = "rollout";

/// When and how a drill schedule runs.
#[derive(Clone, Debug)]
pub struct DrillSchedule {
    /// The schedule's ID.
    pub name: String,
    /// A cron expression as Temporal reads it (`M H DoM Mon DoW`, or `@every 168h`).
    pub cron: String,
    /// IANA time zone the cron expression is read in (`UTC` when empty).
    pub timezone: String,
    /// How late a missed run may still start.
    pub catchup_window: Duration,
    /// Created paused.
    pub paused: bool,
}

/// Why a schedule was not created.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// A schedule of that name exists.
    #[error("a schedule named `{0}` already exists: delete it first, or pick another name")]
    Exists(String),
    /// The server refused the specification (a bad cron expression or time zone).
    #[error("the server refused the schedule: {0}")]
    Invalid(String),
    /// Anything else the server said.
    #[error("creating the schedule failed: {0}")]
    Server(String),
}

/// Creates a Temporal Schedule that starts a drill of `plan` on `task_queue`.
///
/// The request is built here rather than with the SDK's `create_schedule`, whose options do
/// not take a catch-up window.
///
/// # Errors
///
/// [`ScheduleError::Exists`], [`ScheduleError::Invalid`] for a specification the server
/// refuses, [`ScheduleError::Server`] otherwise.
pub async fn create_drill_schedule(
    client: &Client,
    schedule: &DrillSchedule,
    plan: &DrillPlan,
    task_queue: &str,
) -> Result<(), ScheduleError> {
    let action = NewWorkflowExecutionInfo {
        workflow_id: plan.workflow_id(),
        workflow_type: Some(workflow_type(DrillWorkflow::name())),
        task_queue: Some(normal_queue(task_queue)),
        input: Some(json_input(&json!(plan))),
        ..Default::default()
    };
    let notes = format!(
        "cutover drill {} of {} in {}",
        plan.drill, plan.service, plan.environment
    );
    create(
        client,
        schedule,
        action,
        notes,
        (DRILL_MEMO, plan.workflow_id()),
    )
    .await
}

/// Creates a Temporal Schedule that releases `plan` on `task_queue` at each time: each run
/// is a `QueueWorkflow` entry (`queue/<service>/<environment>-<time>`) that starts the
/// ordinary rollout `rollout/<service>/<environment>`, doing what `on_busy` says when one is
/// running (by default: not starting, and saying so).
///
/// # Errors
///
/// As [`create_drill_schedule`].
pub async fn create_rollout_schedule(
    client: &Client,
    schedule: &DrillSchedule,
    plan: &Plan,
    on_busy: OnBusy,
    task_queue: &str,
) -> Result<(), ScheduleError> {
    let mut plan = plan.clone();
    plan.trigger = Some(Trigger {
        kind: TriggerKind::Schedule,
        detail: Some(format!("schedule {}", schedule.name)),
        delivery: None,
        author: None,
    });
    let queued = Queued {
        plan: plan.clone(),
        on_busy,
        task_queue: task_queue.to_owned(),
        by: format!("schedule {}", schedule.name),
    };
    let action = NewWorkflowExecutionInfo {
        workflow_id: queue_id(&plan.service, &plan.environment),
        workflow_type: Some(workflow_type(QueueWorkflow::name())),
        task_queue: Some(normal_queue(task_queue)),
        input: Some(json_input(&json!(queued))),
        ..Default::default()
    };
    let notes = format!(
        "cutover rollout of {} {} to {} (on_busy: {})",
        plan.service,
        plan.version,
        plan.environment,
        on_busy.as_str()
    );
    create(
        client,
        schedule,
        action,
        notes,
        (ROLLOUT_MEMO, plan.workflow_id()),
    )
    .await
}

/// Creates a schedule whose action is `action`; `target` is the memo key and ID of what it
/// starts, for listings.
async fn create(
    client: &Client,
    schedule: &DrillSchedule,
    action: NewWorkflowExecutionInfo,
    notes: String,
    target: (&str, String),
) -> Result<(), ScheduleError> {
    let request = CreateScheduleRequest {
        namespace: client.namespace(),
        schedule_id: schedule.name.clone(),
        schedule: Some(Schedule {
            spec: Some(ScheduleSpec {
                cron_string: vec![schedule.cron.clone()],
                timezone_name: schedule.timezone.clone(),
                ..Default::default()
            }),
            action: Some(ScheduleAction {
                action: Some(schedule_action::Action::StartWorkflow(action)),
            }),
            policies: Some(SchedulePolicies {
                overlap_policy: ScheduleOverlapPolicy::Skip as i32,
                catchup_window: Some(
                    schedule
                        .catchup_window
                        .try_into()
                        .map_err(|e| ScheduleError::Invalid(format!("catch-up window: {e}")))?,
                ),
                pause_on_failure: false,
                ..Default::default()
            }),
            state: Some(ScheduleState {
                paused: schedule.paused,
                notes,
                ..Default::default()
            }),
        }),
        identity: client.identity(),
        request_id: uuid::Uuid::new_v4().to_string(),
        // The server keeps cron expressions only in a compiled form; the memo keeps the text.
        memo: Some(Memo {
            fields: [
                (CRON_MEMO, json!(schedule.cron)),
                (TIMEZONE_MEMO, json!(schedule.timezone)),
                (target.0, json!(target.1)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json_payload(&v)))
            .collect(),
        }),
        ..Default::default()
    };
    let mut service = client.connection().workflow_service();
    match service.create_schedule(tonic::Request::new(request)).await {
        Ok(_) => Ok(()),
        Err(status) if status.code() == tonic::Code::AlreadyExists => {
            Err(ScheduleError::Exists(schedule.name.clone()))
        }
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            Err(ScheduleError::Invalid(status.message().to_owned()))
        }
        Err(status) => Err(ScheduleError::Server(format!(
            "{:?}: {}",
            status.code(),
            status.message()
        ))),
    }
}
