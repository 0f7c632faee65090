//! `DrillWorkflow`: a DR drill as a durable workflow. Each phase is an activity with its own
//! timeout and retries, and is timestamped in the status:
//!
//! `preflight` (nothing is touched if it fails) → `mark` (marker transactions on the primary,
//! concurrently with) → `fault` (failover: the primary stopped at once; switchover: stopped
//! after the standby caught up) → `promote` → `switch` (the app pointed at the new primary) →
//! `verify` (the app's checks through the normal path) → `measure` (RTO, RPO) → `failback`
//! (the old primary rebuilt as a standby of the new one) → `switch_back` (optional: a
//! switchover back to the original roles) → the evidence in the ledger.
//!
//! If a phase after the fault fails, compensation restores service — one writable primary,
//! the app pointed at it, its checks passing — and the drill ends `failed` naming the phase,
//! the reason and what it restored.
//!
//! Failback, fencing and the checks after a restoration came with the patch
//! `drill-failback-v1`; drills started before it replay without them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use temporalio_common::RetryPolicy as TemporalRetryPolicy;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowContextView, WorkflowResult};

use super::DrillMode;
use super::DrillPlan;
use crate::input::Input;
use crate::plan::notify::NotifyEvent;
use failback::Roles;

use super::contracts::{
    AppVerifyInput, DrillActivities, MarkInput, MarkOutput, NodeInput, PreflightInput, RecordInput,
    SurveyInput, SurveyOutput,
};
use temporalio_common::error::ActivityExecutionError;

mod failback;
mod region;
mod state;

pub use state::{DrillState, DrillStatus, Phase, PhaseState};

/// The patch that added failback, fencing and checks after a restoration.
const FAILBACK_PATCH: &str = "drill-failback-v1";

/// The patch that gave compensation and the evidence record their own cancellation token, so
/// a cancelled drill still restores service and records what happened.
const CANCEL_SAFE_PATCH: &str = "drill-cancel-safe-v1";

/// The patch that restores service when `verify` fails (before it, such a drill ended with
/// the app on the promoted standby and the old primary down).
const VERIFY_RESTORE_PATCH: &str = "drill-verify-restore-v1";

/// The failure type name of a drill that failed.
pub const DRILL_FAILED: &str = "DrillFailed";

/// Runs one drill plan. Its ID is `drill/<service>/<environment>/<drill>`.
#[workflow]
pub struct DrillWorkflow {
    /// `None` when the input was not a drill plan (see `invalid`).
    plan: Option<DrillPlan>,
    /// Set when the input was not a valid drill plan: why. The drill fails at once with it.
    invalid: Option<String>,
    status: DrillStatus,
    /// This run has the `drill-failback-v1` patch.
    failback: bool,
    /// Messages for the drill plan's notifiers.
    notices: crate::notify::Outbox,
}

#[workflow_methods]
impl DrillWorkflow {
    #[init]
    fn new(ctx: &WorkflowContextView, input: Input<DrillPlan>) -> Self {
        let (plan, invalid) = match input.into_result() {
            Ok(plan) => {
                let problems: Vec<String> = [
                    ("drill", &plan.drill),
                    ("service", &plan.service),
                    ("environment", &plan.environment),
                ]
                .into_iter()
                .filter_map(|(field, value)| {
                    crate::name::Name::parse(value)
                        .err()
                        .map(|e| format!("{field}: {e}"))
                })
                .collect();
                let invalid = (!problems.is_empty()).then(|| problems.join("; "));
                (Some(plan), invalid)
            }
            Err(why) => (None, Some(why)),
        };
        let status = DrillStatus {
            workflow_id: ctx.workflow_id().to_owned(),
            state: DrillState::Running,
            mode: plan.as_ref().map(|p| p.mode),
            ..DrillStatus::default()
        };
        Self {
            plan,
            invalid,
            status,
            failback: false,
            notices: crate::notify::Outbox::default(),
        }
    }

    /// Runs the phases; ends with the status, or fails `DrillFailed` naming the phase. Either
    /// way the evidence is written to the ledger at the end.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<DrillStatus> {
        // An input that is not a valid drill plan ends the drill before anything is touched
        // (no command is issued, so valid drills' histories are unchanged).
        let plan = match ctx.state(|s| (s.plan.clone(), s.invalid.clone())) {
            (Some(plan), None) => plan,
            (_, why) => {
                let why = why.unwrap_or_default();
                let reason = format!("invalid input, nothing was touched: {why}");
                ctx.state_mut(|s| {
                    s.status.state = DrillState::Failed;
                    s.status.reason = Some(reason.clone());
                });
                return Err(ApplicationFailure::builder(reason)
                    .type_name(crate::contracts::error_kind::INVALID_INPUT.to_owned())
                    .non_retryable(true)
                    .build()
                    .into());
            }
        };
        // Messages for people go out beside the phases, never in their way.
        let notifications = crate::notify::pump(ctx.clone());
        let work = async {
            let started = now(ctx);
            ctx.state_mut(|s| {
                s.status.started_at = started;
                s.notice(NotifyEvent::Started, None, started);
            });
            // A drill and a rollout of the same service never run at once (drills started before
            // the lock existed replay without it).
            let result = if ctx.patched(crate::lock::PATCH) {
                let (service, environment) = (plan.service.clone(), plan.environment.clone());
                match crate::lock::holding(ctx, "drill", &service, &environment, phases).await {
                    Ok(result) => result,
                    Err(crate::lock::NotTaken::Cancelled) => fail(
                        ctx,
                        "cancelled before it started; nothing was touched".to_owned(),
                        None,
                    ),
                    Err(crate::lock::NotTaken::Refused(why)) => {
                        let p = phase(ctx, "lock");
                        failed(ctx, p, &why);
                        fail(ctx, format!("lock: {why}; nothing was touched"), None)
                    }
                }
            } else {
                phases(ctx).await
            };
            let finished = now(ctx);
            ctx.state_mut(|s| s.status.finished_at = finished);
            ctx.state(|s| {
                crate::observe::emit(
                    ctx.is_replaying(),
                    crate::observe::Event::DrillFinished {
                        service: &plan.service,
                        environment: &plan.environment,
                        drill: &plan.drill,
                        outcome: s.status.state.as_str(),
                        rto: s
                            .status
                            .rto_ms
                            .and_then(|ms| u64::try_from(ms).ok())
                            .map(Duration::from_millis),
                        rpo_markers: s.status.rpo_markers,
                        rto_objective: plan.objectives.rto,
                        rpo_objective_markers: plan.objectives.rpo_markers,
                    },
                )
            });
            let input = ctx.state(|s| RecordInput {
                plan,
                status: s.status.clone(),
            });
            // Evidence is bookkeeping: a ledger that is down does not change the drill's outcome;
            // the failed write stays in the history.
            let mut opts = options(Duration::from_secs(30), 5);
            if ctx.patched(CANCEL_SAFE_PATCH) {
                opts = detach(opts);
            }
            let _ = ctx
                .execute_activity(DrillActivities::record, input, opts)
                .await;
            ctx.state_mut(|s| {
                let event = if s.status.state == DrillState::Passed {
                    NotifyEvent::Passed
                } else {
                    NotifyEvent::Missed
                };
                let reason = s.status.reason.clone();
                s.notice(event, reason, finished);
                s.notices.close();
            });
            result.map(|()| ctx.state(|s| s.status.clone()))
        };
        futures::future::join(work, notifications).await.0
    }

    /// The drill's phases, timings and results so far.
    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> DrillStatus {
        self.status.clone()
    }
}

/// The phases in order; the outcome is in the status.
async fn phases(ctx: &mut WorkflowContext<DrillWorkflow>) -> WorkflowResult<()> {
    let Some(plan) = ctx.state(|s| s.plan.clone()) else {
        return fail(ctx, "no drill plan".to_owned(), None);
    };
    let run = format!(
        "{}@{}",
        plan.drill,
        now(ctx).map(|t| t.timestamp_millis()).unwrap_or_default()
    );
    let db = plan.database.clone();
    let patched = ctx.patched(FAILBACK_PATCH);
    ctx.state_mut(|s| s.failback = patched);

    // The drill owns the router in front of the regions: it starts from `from` (a no-op
    // when the router already serves it), so that preflight checks the app through it.
    if let Some(region) = &plan.region
        && let Err(why) = region::move_to(ctx, &plan, region, &region.from, "route").await
    {
        return fail(
            ctx,
            format!("route: {why}; the database was not touched"),
            None,
        );
    }
    let pre = phase(ctx, "preflight");
    let checked = ctx
        .execute_activity(
            DrillActivities::preflight,
            PreflightInput { plan: plan.clone() },
            options(Duration::from_secs(60), 3),
        )
        .await;
    match checked {
        Ok(p) => done(
            ctx,
            pre,
            format!("standby {} with {} bytes of lag", p.sync_state, p.lag_bytes),
        ),
        Err(e) => {
            let why = cause(&e);
            failed(ctx, pre, &why);
            return fail(ctx, format!("preflight: {why}; nothing was touched"), None);
        }
    }
    if let Some(region) = &plan.region
        && let Err(why) = region::check_secondary(ctx, region, &run).await
    {
        return fail(ctx, format!("secondary: {why}; nothing was touched"), None);
    }

    // Markers are written while the fault happens; a switchover stops them first.
    let mark_for = match plan.mode {
        DrillMode::Failover => Duration::from_secs(120),
        DrillMode::Switchover => Duration::from_millis(1500),
    };
    let mark_phase = phase(ctx, "mark");
    let mark = ctx.execute_activity(
        DrillActivities::mark,
        MarkInput {
            primary: db.primary.url.clone(),
            run: run.clone(),
            for_ms: mark_for.as_millis() as u64,
        },
        options(mark_for + Duration::from_secs(60), 1),
    );
    let fault_input = NodeInput {
        database: db.clone(),
        node: db.primary.clone(),
        graceful: plan.mode == DrillMode::Switchover,
        within_ms: 0,
    };
    let (marks, fault_at) = match plan.mode {
        DrillMode::Failover => {
            let fault = async {
                // Let markers flow before the fault.
                let _ = ctx.timer(Duration::from_secs(1)).await;
                let p = phase(ctx, "fault");
                let r = ctx
                    .execute_activity(
                        DrillActivities::fault,
                        fault_input.clone(),
                        on_node(options(Duration::from_secs(60), 3), &db.primary),
                    )
                    .await;
                (p, r)
            };
            let (marks, (p, fault)) = futures::join!(mark, fault);
            (marks, (p, fault))
        }
        DrillMode::Switchover => {
            let marks = mark.await;
            let p = phase(ctx, "fault");
            let r = ctx
                .execute_activity(
                    DrillActivities::fault,
                    fault_input.clone(),
                    on_node(options(Duration::from_secs(120), 3), &db.primary),
                )
                .await;
            (marks, (p, r))
        }
    };
    let marks = marks.unwrap_or_else(|e| MarkOutput {
        markers: Vec::new(),
        ended_by: format!("marking failed: {}", cause(&e)),
    });
    ctx.state_mut(|s| s.status.markers = marks.markers.len() as u64);
    done(
        ctx,
        mark_phase,
        format!(
            "{} markers acknowledged; stopped by {}",
            marks.markers.len(),
            marks.ended_by
        ),
    );
    let (fault_phase, fault) = fault_at;
    let fault = match fault {
        Ok(at) => {
            done(ctx, fault_phase, at.note.clone());
            at
        }
        Err(e) => {
            let why = cause(&e);
            failed(ctx, fault_phase, &why);
            let restored = failback::restore(ctx, &plan, Roles::original(&plan), false).await;
            return fail(ctx, format!("fault: {why}"), Some(restored));
        }
    };

    let p = phase(ctx, "promote");
    let promoted_at = match ctx
        .execute_activity(
            DrillActivities::promote,
            NodeInput {
                database: db.clone(),
                node: db.standby.clone(),
                graceful: false,
                within_ms: plan.promote_within.as_millis() as u64,
            },
            on_node(
                options(plan.promote_within + Duration::from_secs(60), 3),
                &db.standby,
            ),
        )
        .await
    {
        Ok(at) => {
            done(ctx, p, at.note);
            at.at_ms
        }
        Err(e) => {
            let why = cause(&e);
            failed(ctx, p, &why);
            let restored = failback::restore(ctx, &plan, Roles::original(&plan), false).await;
            return fail(ctx, format!("promote: {why}"), Some(restored));
        }
    };

    let p = phase(ctx, "switch");
    match ctx
        .execute_activity(
            DrillActivities::switch,
            plan.traffic.switch_to(&db.standby.url),
            on_traffic(switch_options(&plan, 3), &plan),
        )
        .await
    {
        Ok(at) => done(ctx, p, at.note),
        Err(e) => {
            let why = cause(&e);
            failed(ctx, p, &why);
            let restored = failback::restore(ctx, &plan, Roles::original(&plan), true).await;
            return fail(ctx, format!("switch: {why}"), Some(restored));
        }
    }
    // The application's traffic follows its database to the secondary region.
    if let Some(region) = &plan.region
        && let Err(why) = region::move_to(ctx, &plan, region, &region.to, "move").await
    {
        let restored = failback::restore(ctx, &plan, Roles::original(&plan), true).await;
        return fail(ctx, format!("move: {why}"), Some(restored));
    }

    let p = phase(ctx, "verify");
    let verified = match ctx
        .execute_activity(
            DrillActivities::verify,
            AppVerifyInput {
                checks: plan.checks.clone(),
                write_check: plan.write_check.clone(),
                run: run.clone(),
                within_ms: 60_000,
            },
            options(Duration::from_secs(90), 1),
        )
        .await
    {
        Ok(at) => {
            done(ctx, p, at.note.clone());
            at
        }
        Err(e) => {
            let why = cause(&e);
            failed(ctx, p, &why);
            // The app is on the promoted standby and does not pass its checks: put the
            // original pair back like any other failure after the fault.
            let restored = if ctx.patched(VERIFY_RESTORE_PATCH) {
                Some(failback::restore(ctx, &plan, Roles::original(&plan), true).await)
            } else {
                None
            };
            return fail(ctx, format!("verify: {why}"), restored);
        }
    };

    let p = phase(ctx, "measure");
    let survey = ctx
        .execute_activity(
            DrillActivities::survey,
            SurveyInput {
                primary: db.standby.url.clone(),
                run,
                acknowledged: marks.markers.clone(),
            },
            options(Duration::from_secs(60), 3),
        )
        .await;
    let survey = match survey {
        Ok(s) => s,
        Err(e) => {
            let why = cause(&e);
            failed(ctx, p, &why);
            return fail(ctx, format!("measure: {why}"), None);
        }
    };
    let rto_ms = verified.at_ms - fault.at_ms;
    let SurveyOutput {
        lost,
        lost_bytes,
        lost_markers,
    } = survey;
    let rto_ok = rto_ms <= plan.objectives.rto.as_millis() as i64;
    let rpo_ok = lost <= plan.objectives.rpo_markers;
    // With a region move, the RTO is the application's (back, through the router, in the
    // other region); the database's alone is reported beside it.
    let database_rto_ms = plan.region.as_ref().map(|_| promoted_at - fault.at_ms);
    done(
        ctx,
        p,
        format!(
            "RTO {rto_ms} ms (objective {} ms){}, RPO {lost} markers / {lost_bytes} bytes (objective {})",
            plan.objectives.rto.as_millis(),
            database_rto_ms
                .map(|d| format!(", database alone {d} ms"))
                .unwrap_or_default(),
            plan.objectives.rpo_markers
        ),
    );
    let reason = match (rto_ok, rpo_ok) {
        (true, true) => None,
        (false, _) => Some(format!(
            "RTO {rto_ms} ms missed the objective of {} ms",
            plan.objectives.rto.as_millis()
        )),
        (true, false) => Some(format!(
            "RPO {lost} markers missed the objective of {}",
            plan.objectives.rpo_markers
        )),
    };
    ctx.state_mut(|s| {
        s.status.lost_markers = lost_markers;
        s.status.rto_ms = Some(rto_ms);
        s.status.database_rto_ms = database_rto_ms;
        s.status.rpo_markers = Some(lost);
        s.status.rpo_bytes = Some(lost_bytes);
        s.status.state = if reason.is_none() {
            DrillState::Passed
        } else {
            DrillState::Missed
        };
        s.status.reason = reason;
    });
    if ctx.state(|s| s.failback) && plan.failback.rebuild {
        failback::failback(ctx, &plan).await?;
    }
    Ok(())
}

fn options(timeout: Duration, attempts: u32) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(timeout)
        .heartbeat_timeout(Duration::from_secs(10))
        .retry_policy(
            TemporalRetryPolicy::builder()
                .maximum_attempts(attempts)
                .initial_interval(Duration::from_secs(1))
                .build(),
        )
        .build()
}

/// `opts` sent to the agent of `node`'s host, when the plan names one: stopping, promoting,
/// fencing and rebuilding act on its data directory, so they must run on its machine.
fn on_node(opts: ActivityOptions, node: &super::DatabaseNode) -> ActivityOptions {
    crate::hosts::route(opts, node.host.as_deref(), crate::plan::DEFAULT_HOST_WAIT)
}

/// `opts` sent to the agent of the host whose endpoint file the app reads, when named.
fn on_traffic(opts: ActivityOptions, plan: &DrillPlan) -> ActivityOptions {
    crate::hosts::route(opts, plan.traffic.host(), crate::plan::DEFAULT_HOST_WAIT)
}

/// The options of `drill.switch` with `attempts`: 30 s to write a file, or on Kubernetes
/// also the time the Deployment's restart may take to roll out (the activity heartbeats).
pub(super) fn switch_options(plan: &DrillPlan, attempts: u32) -> ActivityOptions {
    let within = match &plan.traffic {
        super::Traffic::Kubernetes(k) => k.rollout_within,
        super::Traffic::EndpointFile { .. } => Duration::ZERO,
    };
    options(Duration::from_secs(30) + within, attempts)
}

/// `opts` with a cancellation token of their own: the activity runs even while (or after)
/// the drill is cancelled.
fn detach(mut opts: ActivityOptions) -> ActivityOptions {
    opts.cancellation_token = Some(temporalio_workflow::WorkflowCancellationToken::new());
    opts
}

fn now(ctx: &WorkflowContext<DrillWorkflow>) -> Option<DateTime<Utc>> {
    ctx.workflow_time().map(DateTime::<Utc>::from)
}

/// Starts a phase; returns its index.
fn phase(ctx: &WorkflowContext<DrillWorkflow>, name: &str) -> usize {
    let at = now(ctx);
    ctx.state_mut(|s| {
        s.status.phases.push(Phase {
            name: name.to_owned(),
            state: PhaseState::Running,
            started_at: at,
            finished_at: None,
            note: None,
        });
        s.status.phases.len() - 1
    })
}

fn done(ctx: &WorkflowContext<DrillWorkflow>, index: usize, note: String) {
    end(ctx, index, PhaseState::Succeeded, note);
}

fn failed(ctx: &WorkflowContext<DrillWorkflow>, index: usize, why: &str) {
    end(ctx, index, PhaseState::Failed, why.to_owned());
}

fn end(ctx: &WorkflowContext<DrillWorkflow>, index: usize, state: PhaseState, note: String) {
    let at = now(ctx);
    ctx.state_mut(|s| {
        let p = &mut s.status.phases[index];
        p.state = state;
        p.finished_at = at;
        p.note = Some(note);
    });
}

fn fail<T>(
    ctx: &WorkflowContext<DrillWorkflow>,
    reason: String,
    restoration: Option<String>,
) -> WorkflowResult<T> {
    ctx.state_mut(|s| {
        s.status.state = DrillState::Failed;
        s.status.reason = Some(reason.clone());
        s.status.restoration = restoration.clone();
    });
    let text = match restoration {
        Some(r) => format!("{reason}; restored: {r}"),
        None => reason,
    };
    Err(ApplicationFailure::builder(text)
        .type_name(DRILL_FAILED.to_owned())
        .non_retryable(true)
        .build()
        .into())
}

/// The activity's own message (not the wrapping "Activity task failed").
fn cause(err: &ActivityExecutionError) -> String {
    crate::activity_error::message(err)
}

impl DrillWorkflow {
    /// Queues a message about `event` for the drill plan's notifiers.
    fn notice(&mut self, event: NotifyEvent, reason: Option<String>, at: Option<DateTime<Utc>>) {
        let Some(plan) = &self.plan else {
            return;
        };
        let message = crate::notify::Message {
            seq: 0,
            event,
            service: plan.service.clone(),
            environment: plan.environment.clone(),
            version: None,
            drill: Some(plan.drill.clone()),
            workflow_id: self.status.workflow_id.clone(),
            step: None,
            reason,
            command: None,
            at,
        };
        self.notices.queue(&plan.notify, message);
    }
}

impl crate::notify::Notifying for DrillWorkflow {
    fn notifiers(&self) -> &[crate::plan::notify::Notifier] {
        self.plan.as_ref().map_or(&[], |p| p.notify.as_slice())
    }
    fn outbox(&self) -> &crate::notify::Outbox {
        &self.notices
    }
    fn outbox_mut(&mut self) -> &mut crate::notify::Outbox {
        &mut self.notices
    }
    fn notices_mut(&mut self) -> &mut Vec<crate::notify::NoticeStatus> {
        &mut self.status.notifications
    }
}
