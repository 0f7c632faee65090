//! Running one step: attempts, backoff timers, and the step's entry in `status`.

use std::time::Duration;

use temporalio_common::RetryPolicy as TemporalRetryPolicy;
use temporalio_sdk::{ActivityCancellationType, ActivityOptions, TimerResult, WorkflowContext};

use super::analysis::{Analysed, analyse};
use super::failure::{AttemptFailure, classify};
use super::hold::{Held, hold};
use super::{RolloutWorkflow, now};
use crate::contracts::BakeOutput;
use crate::contracts::{
    BuildInput, CommandInput, MigrateInput, ProvisionInput, RollbackInput, RolloutActivities,
    StepOutput, StepRef, TargetActivities, VerifyInput,
};
use crate::plan::{Step, StepAction};
use crate::status::StepError;
use crate::status::StepState;
use temporalio_common::error::ActivityExecutionError;

/// The patch that made a deploy's rollback window a pausable, abortable hold.
pub(super) const WINDOW_HOLD_PATCH: &str = "rollback-window-hold-v1";

/// The patch that retries at once after a missed heartbeat when the backoff is no longer
/// than the heartbeat timeout already lost.
pub(super) const RETRY_AFTER_HEARTBEAT_PATCH: &str = "retry-after-missed-heartbeat-v1";

/// How a step ended.
pub(super) enum StepEnd {
    Succeeded,
    /// Failed for good; the text names the step, the attempts and the error.
    Failed(String),
    Cancelled,
    /// Someone aborted the rollout while this step waited (bake, canary hold, approval).
    Aborted,
}

/// The patch that added `${...}` resolution: rollouts started before it ran their strings as
/// written.
pub(super) const VARS_PATCH: &str = "plan-vars-v1";

/// Resolves the `${...}` in step `index` (its action and its undo) from the plan and earlier
/// steps' recorded outputs, and keeps the result in the plan, so retries, compensations and
/// replays all see the same strings. Nothing changes for steps without `${`.
fn resolve(ctx: &WorkflowContext<RolloutWorkflow>, index: usize) -> Result<(), String> {
    use crate::plan::vars::{Ref, interpolate_all, mentions, output_at};
    let (action, undo) = ctx.state(|s| {
        let step = &s.plan.steps[index];
        (
            serde_json::to_value(&step.action).unwrap_or_default(),
            serde_json::to_value(&step.undo).unwrap_or_default(),
        )
    });
    if !(mentions(&action) || mentions(&undo)) || !ctx.patched(VARS_PATCH) {
        return Ok(());
    }
    let resolved = ctx.state(|s| {
        let lookup = |r: &Ref| -> Result<String, String> {
            match r {
                Ref::Service => Ok(s.plan.service.clone()),
                Ref::Environment => Ok(s.plan.environment.clone()),
                Ref::Version => Ok(s.plan.version.clone()),
                Ref::Var(name) => s
                    .plan
                    .vars
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("no variable `{name}`")),
                Ref::Step { step, path } => {
                    let earlier = s.plan.steps[..index]
                        .iter()
                        .position(|p| &p.name == step)
                        .ok_or_else(|| format!("no earlier step `{step}`"))?;
                    let output = s.status.steps[earlier]
                        .output
                        .as_ref()
                        .and_then(|o| serde_json::to_value(o).ok());
                    output_at(step, output.as_ref(), path)
                }
            }
        };
        let (mut action, mut undo) = (action.clone(), undo.clone());
        interpolate_all(&mut action, &lookup)?;
        interpolate_all(&mut undo, &lookup)?;
        let action = serde_json::from_value(action).map_err(|e| e.to_string())?;
        let undo = serde_json::from_value(undo).map_err(|e| e.to_string())?;
        Ok::<_, String>((action, undo))
    })?;
    ctx.state_mut(|s| {
        let step = &mut s.plan.steps[index];
        step.action = resolved.0;
        step.undo = resolved.1;
    });
    Ok(())
}

/// Runs step `index` until it succeeds, fails for good, or the rollout is cancelled.
pub(super) async fn run(ctx: &WorkflowContext<RolloutWorkflow>, index: usize) -> StepEnd {
    if let Err(why) = resolve(ctx, index) {
        let started = now(ctx);
        let reason = ctx.state_mut(|s| {
            let name = s.plan.steps[index].name.clone();
            let st = &mut s.status.steps[index];
            st.state = StepState::Failed;
            st.started_at = started;
            st.finished_at = started;
            st.last_error = Some(StepError {
                kind: crate::contracts::error_kind::ErrorKind::InvalidInput,
                message: why.clone(),
                retryable: false,
            });
            format!("step `{name}` failed: InvalidInput: {why}")
        });
        report(ctx, index, StepState::Failed, true);
        return StepEnd::Failed(reason);
    }
    let (step, rollout, release) = ctx.state(|s| {
        (
            s.plan.steps[index].clone(),
            s.status.workflow_id.clone(),
            Release {
                service: s.plan.service.clone(),
                version: s.plan.version.clone(),
                target: s.plan.target.clone(),
            },
        )
    });
    // Attempts keep counting across a `retry` after `on_failure: pause`; the retry policy's
    // budget starts afresh for each run of the step.
    let before = ctx.state(|s| s.status.steps[index].attempts);
    let mut tries = 0;
    loop {
        tries += 1;
        let attempt = before + tries;
        let started = now(ctx);
        ctx.state_mut(|s| {
            s.status.current_step = Some(step.name.clone());
            let st = &mut s.status.steps[index];
            st.state = StepState::Running;
            st.attempts = attempt;
            st.next_attempt_at = None;
            if st.started_at.is_none() {
                st.started_at = started;
            }
        });
        running(ctx, &step);
        let step_ref = StepRef {
            rollout: rollout.clone(),
            step: step.name.clone(),
            attempt,
        };
        let result = execute(ctx, index, &step, &release, step_ref).await;
        // Whatever ended the attempt, nothing of this step is holding any more: `promote`
        // must be refused from here on (an analysis that failed or was aborted mid-hold
        // used to leave the flag set, and a promote was accepted during the rollback).
        ctx.state_mut(|s| s.holding = None);
        let ended = now(ctx);
        let lost_heartbeat = matches!(&result, Err(Interrupted::Activity(e) | Interrupted::Host { error: e, .. }) if super::failure::missed_heartbeat(e));
        let error = match result {
            Ok(output) => {
                ctx.state_mut(|s| {
                    let st = &mut s.status.steps[index];
                    st.state = StepState::Succeeded;
                    st.finished_at = ended;
                    st.output = Some(output);
                });
                report(ctx, index, StepState::Succeeded, true);
                return StepEnd::Succeeded;
            }
            Err(Interrupted::TimerCancelled) => return cancelled(ctx, index),
            Err(Interrupted::Aborted) => {
                cancelled(ctx, index);
                return StepEnd::Aborted;
            }
            Err(Interrupted::Failed(error)) => error,
            Err(Interrupted::Activity(e)) => match classify(&e, &step.retry, || {
                super::route::nobody_took_it(step.host(&release.target).unwrap_or_default(), &step)
            }) {
                AttemptFailure::Cancelled => return cancelled(ctx, index),
                AttemptFailure::Error(error) => error,
            },
            Err(Interrupted::Host { host, error }) => match classify(&error, &step.retry, || {
                super::route::nobody_took_it(&host, &step)
            }) {
                AttemptFailure::Cancelled => return cancelled(ctx, index),
                AttemptFailure::Error(mut error) => {
                    if !error.message.contains(&host) {
                        error.message = format!("on host {host}: {}", error.message);
                    }
                    error
                }
            },
        };
        ctx.state_mut(|s| s.status.steps[index].record_error(attempt, ended, &error));
        let again = error.retryable && step.retry.allows_attempt_after(tries);
        if !again {
            let tried = if step.action.kind().is_wait() {
                String::new()
            } else {
                format!(
                    " after {attempt} attempt{}",
                    if attempt == 1 { "" } else { "s" }
                )
            };
            let mut reason = format!(
                "step `{}` failed{tried}: {}: {}",
                step.name, error.kind, error.message
            );
            // A deploy that fails for good is withdrawn before anything else happens, whatever
            // `on_failure` says: the rollout then reports what serves, checked.
            if let StepAction::Deploy(spec) = &step.action
                && ctx.patched(super::deploy::WITHDRAW_PATCH)
            {
                let step_ref = StepRef {
                    rollout: rollout.clone(),
                    step: format!("withdraw {}", step.name),
                    attempt,
                };
                let said = if step.fleet(&release.target).is_empty() {
                    super::deploy::withdraw(ctx, index, &step, spec, &release, step_ref, &reason)
                        .await
                } else {
                    super::fleet::withdraw(ctx, index, &step, spec, &release, step_ref).await
                };
                if let Some(said) = said {
                    reason = format!("{reason}; {said}");
                }
            }
            ctx.state_mut(|s| {
                let st = &mut s.status.steps[index];
                st.state = StepState::Failed;
                st.finished_at = ended;
                st.last_error = Some(error);
            });
            report(ctx, index, StepState::Failed, true);
            return StepEnd::Failed(reason);
        }
        let mut delay = step.retry.delay_after(tries);
        // The backoff counts from the attempt's last sign of life. After a missed heartbeat that
        // was at least `heartbeat_timeout` ago, so a backoff no longer than that is over: the
        // next attempt starts at once instead of after one more timer (which the server fires
        // late, to the second). This is most of what a worker crash costs beyond the heartbeat
        // timeout (BENCHMARKS.md, "Recovery after a worker crash").
        if lost_heartbeat
            && delay <= step.heartbeat_timeout
            && ctx.patched(RETRY_AFTER_HEARTBEAT_PATCH)
        {
            delay = Duration::ZERO;
        }
        ctx.state_mut(|s| {
            let st = &mut s.status.steps[index];
            st.state = StepState::Retrying;
            st.next_attempt_at =
                ended.and_then(|t| chrono::Duration::from_std(delay).ok().map(|d| t + d));
            st.last_error = Some(error);
        });
        report(ctx, index, StepState::Failed, false);
        if !delay.is_zero() && ctx.timer(delay).await == TimerResult::Cancelled {
            return cancelled(ctx, index);
        }
    }
}

fn cancelled(ctx: &WorkflowContext<RolloutWorkflow>, index: usize) -> StepEnd {
    let at = now(ctx);
    ctx.state_mut(|s| {
        let st = &mut s.status.steps[index];
        st.state = StepState::Cancelled;
        st.finished_at = at;
    });
    report(ctx, index, StepState::Cancelled, true);
    StepEnd::Cancelled
}

/// Tells the worker's metrics that an attempt of `step` began and should end within its
/// timeout (steps that hold for canaries, analyses or people are left out).
fn running(ctx: &WorkflowContext<RolloutWorkflow>, step: &Step) {
    use crate::plan::StepKind;
    let bounded = !matches!(
        step.action.kind(),
        StepKind::Deploy | StepKind::Approval | StepKind::Bake | StepKind::Analysis
    );
    let Some(started) = ctx
        .workflow_time()
        .map(chrono::DateTime::<chrono::Utc>::from)
    else {
        return;
    };
    if bounded {
        ctx.state(|s| {
            crate::observe::emit(
                ctx.is_replaying(),
                crate::observe::Event::StepRunning {
                    workflow_id: &s.status.workflow_id,
                    service: &s.plan.service,
                    environment: &s.plan.environment,
                    deadline: started
                        + chrono::Duration::from_std(step.timeout).unwrap_or_default(),
                },
            )
        });
    }
}

/// Tells the worker's metrics how an attempt of step `index` ended (`outcome`), and with
/// `last` that the step is over.
fn report(ctx: &WorkflowContext<RolloutWorkflow>, index: usize, outcome: StepState, last: bool) {
    use crate::observe::{Event, between, emit};
    let replaying = ctx.is_replaying();
    ctx.state(|s| {
        emit(
            replaying,
            Event::StepIdle {
                workflow_id: &s.status.workflow_id,
            },
        )
    });
    if replaying {
        return;
    }
    ctx.state(|s| {
        let st = &s.status.steps[index];
        let kind = st.kind.as_str();
        emit(
            replaying,
            Event::StepAttempt {
                service: &s.plan.service,
                kind,
                outcome: outcome.as_str(),
                retry: st.attempts > 1,
            },
        );
        if last {
            emit(
                replaying,
                Event::StepFinished {
                    service: &s.plan.service,
                    environment: &s.plan.environment,
                    kind,
                    outcome: outcome.as_str(),
                    duration: between(st.started_at, st.finished_at),
                    attempts: st.attempts,
                },
            );
        }
    });
}

/// What the plan says about the release, needed by target activities.
pub(super) struct Release {
    pub(super) service: String,
    pub(super) version: String,
    /// Where it lives: host activities go to `target.host`'s agent, when it names one.
    pub(super) target: crate::plan::Target,
}

impl Release {
    /// The input of `deploy.prepare` and `deploy.rolling` for `spec`.
    pub(super) fn deploy_input(
        &self,
        step: &StepRef,
        spec: &crate::plan::DeploySpec,
    ) -> crate::contracts::DeployInput {
        crate::contracts::DeployInput {
            step: step.clone(),
            driver: self.target.driver,
            service: self.service.clone(),
            version: self.version.clone(),
            spec: spec.clone(),
        }
    }

    /// The input of `traffic.shift`: `weight` percent to this version under `root`.
    pub(super) fn shift_input(
        &self,
        step: &StepRef,
        root: &str,
        weight: u8,
    ) -> crate::contracts::ShiftInput {
        crate::contracts::ShiftInput {
            step: step.clone(),
            driver: self.target.driver,
            service: self.service.clone(),
            root: root.to_owned(),
            version: self.version.clone(),
            weight,
        }
    }
}

/// Why an attempt stopped short of a result.
pub(super) enum Interrupted {
    /// An activity failed or was cancelled.
    Activity(Box<ActivityExecutionError>),
    /// An activity on one host of a fleet failed or was cancelled.
    Host {
        host: String,
        error: Box<ActivityExecutionError>,
    },
    /// A bake or rollback-window timer was cancelled with the workflow.
    TimerCancelled,
    /// The step decided it failed (e.g. an approval that timed out), without an activity.
    Failed(StepError),
    /// Someone aborted the rollout while the step waited.
    Aborted,
}

impl From<ActivityExecutionError> for Interrupted {
    fn from(e: ActivityExecutionError) -> Self {
        Interrupted::Activity(Box::new(e))
    }
}

/// One attempt. Most kinds are one activity execution (with a single server-side attempt);
/// a deploy is a short sequence of activities and durable timers.
async fn execute(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    step: &Step,
    release: &Release,
    step_ref: StepRef,
) -> Result<StepOutput, Interrupted> {
    let opts = super::route::on_host(options(step, &step_ref), step, &release.target);
    let fleet = step.fleet(&release.target);
    let output = match &step.action {
        // On a fleet, provision and rollback run on every host at once, each by its agent.
        StepAction::Provision(_) | StepAction::Rollback(_) if !fleet.is_empty() => {
            let each = super::fleet::each_host(step, fleet, &opts, |host_opts| {
                one(ctx, index, step, release, step_ref.clone(), host_opts)
            });
            StepOutput::OnHosts { hosts: each.await? }
        }
        _ => one(ctx, index, step, release, step_ref, opts).await?,
    };
    Ok(output)
}

/// One attempt on one machine (the target's host, or for provision and rollback one host
/// of a fleet), or on an orchestrating worker.
async fn one(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    step: &Step,
    release: &Release,
    step_ref: StepRef,
    opts: ActivityOptions,
) -> Result<StepOutput, Interrupted> {
    let output = match &step.action {
        StepAction::Command(spec) => StepOutput::Command(
            ctx.execute_activity(
                RolloutActivities::run_command,
                CommandInput {
                    step: step_ref,
                    spec: spec.clone(),
                },
                opts,
            )
            .await?,
        ),
        StepAction::Build(spec) => StepOutput::Build(
            ctx.execute_activity(
                RolloutActivities::build,
                BuildInput {
                    step: step_ref,
                    spec: spec.clone(),
                },
                opts,
            )
            .await?,
        ),
        StepAction::Verify(spec) => StepOutput::Verify(
            ctx.execute_activity(
                RolloutActivities::verify,
                VerifyInput {
                    step: step_ref,
                    spec: spec.clone(),
                },
                opts,
            )
            .await?,
        ),
        StepAction::Migrate(spec) => StepOutput::Migrate(
            ctx.execute_activity(
                RolloutActivities::migrate,
                MigrateInput {
                    step: step_ref,
                    spec: spec.clone(),
                },
                opts,
            )
            .await?,
        ),
        StepAction::MigrateJob(spec) => StepOutput::Job(
            ctx.execute_activity(
                TargetActivities::job,
                crate::contracts::JobInput {
                    step: step_ref,
                    service: release.service.clone(),
                    version: release.version.clone(),
                    spec: spec.clone(),
                },
                opts,
            )
            .await?,
        ),
        StepAction::Provision(spec) => StepOutput::Provision(
            ctx.execute_activity(
                RolloutActivities::provision,
                ProvisionInput {
                    step: step_ref,
                    driver: release.target.driver,
                    service: release.service.clone(),
                    version: release.version.clone(),
                    spec: spec.clone(),
                },
                opts,
            )
            .await?,
        ),
        StepAction::Rollback(spec) => StepOutput::Rollback(
            ctx.execute_activity(
                TargetActivities::rollback,
                RollbackInput {
                    step: step_ref,
                    driver: release.target.driver,
                    service: release.service.clone(),
                    spec: spec.clone(),
                },
                opts,
            )
            .await?,
        ),
        StepAction::Deploy(spec) if !step.fleet(&release.target).is_empty() => {
            StepOutput::FleetDeploy(
                super::fleet::deploy(ctx, index, step, spec, release, step_ref, opts).await?,
            )
        }
        StepAction::Deploy(spec) => StepOutput::Deploy(
            super::deploy::deploy(ctx, index, spec, release, step_ref, opts).await?,
        ),
        StepAction::Bake(spec) => match hold(ctx, index, spec.duration).await {
            Held::Elapsed => StepOutput::Bake(BakeOutput { promoted: false }),
            Held::Promoted => StepOutput::Bake(BakeOutput { promoted: true }),
            Held::Cancelled => return Err(Interrupted::TimerCancelled),
            Held::Aborted => return Err(Interrupted::Aborted),
        },
        StepAction::Approval(spec) => {
            StepOutput::Approval(super::approval::approval(ctx, index, spec, false).await?)
        }
        StepAction::Analysis(spec) => {
            match analyse(ctx, index, spec, &step_ref, &opts, None).await {
                Analysed::Passed(out) => StepOutput::Analysis(out),
                Analysed::Failed(e) => return Err(Interrupted::Failed(e)),
                Analysed::Cancelled => return Err(Interrupted::TimerCancelled),
                Analysed::Aborted => return Err(Interrupted::Aborted),
            }
        }
    };
    Ok(output)
}

fn options(step: &Step, step_ref: &StepRef) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(step.timeout)
        .heartbeat_timeout(step.heartbeat_timeout)
        // One server-side attempt: the workflow owns retries (see the module docs).
        .retry_policy(
            TemporalRetryPolicy::builder()
                .maximum_attempts(1)
                .initial_interval(Duration::from_secs(1))
                .build(),
        )
        // Wait for the activity to confirm cancellation, so a cancelled build's process group
        // is gone before the rollout reports `cancelled`.
        .cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
        .activity_id(format!("{}#{}", step_ref.step, step_ref.attempt))
        .summary(format!(
            "{} ({}), attempt {}",
            step.name,
            step.action.kind(),
            step_ref.attempt
        ))
        .build()
}
