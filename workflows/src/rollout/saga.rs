//! Undoing a rollout (a saga): what each completed step left behind is recorded as it
//! completes, and undone in reverse when a step fails for good or someone aborts.
//!
//! - a deploy: traffic back to the previous release and the new instances stopped (for a
//!   first deploy, its instances are stopped);
//! - a migrate: its migrations reverted to the version before it — unless a step marked
//!   `point_of_no_return` has completed since, or a migration is not reversible, in which case
//!   the database is left at the new version and the rollout says so and ends `failed`.
//!
//! Compensations are activities like any other: idempotent, retried by Temporal.

use std::time::Duration;

use temporalio_common::RetryPolicy as TemporalRetryPolicy;
use temporalio_sdk::{ActivityOptions, WorkflowContext};

use super::RolloutWorkflow;
use crate::contracts::{
    CommandInput, RetireInput, RollbackInput, RolloutActivities, StepOutput, StepRef,
    TargetActivities, UndoMigrationsInput,
};
use crate::plan::{RollbackSpec, StepAction};
use crate::status::{HostState, StepState};

/// One thing to undo.
#[derive(Clone, Debug)]
pub(super) enum Compensation {
    /// Traffic back to `previous` (or, with none, the deployed instances stopped).
    Deploy {
        index: usize,
        root: String,
        previous: Option<String>,
        /// On a fleet, the host it was deployed on (undone by that host's agent).
        host: Option<String>,
    },
    /// A step's own `undo:` command.
    Command {
        index: usize,
        undo: crate::plan::UndoSpec,
    },
    /// Migrations reverted to `to_version`.
    Migrate {
        index: usize,
        url: crate::plan::SecretRef,
        directory: String,
        to_version: i64,
        applied: Vec<i64>,
    },
}

/// Records what step `index` must undo, from its output.
pub(super) fn record(ctx: &WorkflowContext<RolloutWorkflow>, index: usize) {
    ctx.state_mut(|s| {
        let compensation = match (&s.plan.steps[index].action, &s.status.steps[index].output) {
            (StepAction::Migrate(spec), Some(StepOutput::Migrate(out)))
                if !out.applied.is_empty() =>
            {
                Some(Compensation::Migrate {
                    index,
                    url: spec.database_url.clone(),
                    directory: spec.directory.clone(),
                    to_version: out.previous_version,
                    applied: out.applied.iter().map(|m| m.version).collect(),
                })
            }
            _ => s.plan.steps[index]
                .undo
                .as_ref()
                .map(|undo| Compensation::Command {
                    index,
                    undo: (**undo).clone(),
                }),
        };
        if let Some(c) = compensation {
            s.compensations.push(c);
        }
        if s.plan.steps[index].point_of_no_return {
            s.point_of_no_return = Some(s.plan.steps[index].name.clone());
        }
    });
}

/// Remembers that step `index` started a new version (`prepare` succeeded), so that undoing
/// it — even if the step itself never completes — moves traffic back and stops it. A retried
/// deploy replaces its earlier record.
pub(super) fn remember_deploy(
    s: &mut RolloutWorkflow,
    index: usize,
    root: &str,
    previous: Option<String>,
    host: Option<&str>,
) {
    forget_host(s, index, host);
    s.compensations.push(Compensation::Deploy {
        index,
        root: root.to_owned(),
        previous,
        host: host.map(str::to_owned),
    });
}

/// Undoes every recorded compensation, newest first. Returns what was undone and what could
/// not be (each in words); the rollout is `rolled_back` only when the second list is empty.
pub(super) async fn compensate(
    ctx: &WorkflowContext<RolloutWorkflow>,
) -> (Vec<String>, Vec<String>) {
    let (compensations, service, driver, rollout, point, target) = ctx.state(|s| {
        (
            s.compensations.clone(),
            s.plan.service.clone(),
            s.plan.target.driver,
            s.status.workflow_id.clone(),
            s.point_of_no_return.clone(),
            s.plan.target.clone(),
        )
    });
    let mut done = Vec::new();
    let mut problems = Vec::new();
    // Fleet deploys undone, by step: the hosts whose undo failed (kept out of the router).
    let mut fleets: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for c in compensations.iter().rev() {
        let index = match c {
            Compensation::Deploy { index, .. }
            | Compensation::Migrate { index, .. }
            | Compensation::Command { index, .. } => *index,
        };
        let fleet_host = match c {
            Compensation::Deploy { host, .. } => host.clone(),
            Compensation::Migrate { .. } | Compensation::Command { .. } => None,
        };
        let (name, options) = ctx.state(|s| {
            let step = &s.plan.steps[index];
            // An undo runs where the step ran: on the host's agent for a deploy (on a fleet,
            // the agent of the host it deployed), and for a migration that said `on: host`.
            let options = match &fleet_host {
                Some(host) => super::route::on_fleet_host(options(), step, host, "undo"),
                None => super::route::on_host(options(), step, &target),
            };
            (s.status.steps[index].name.clone(), options)
        });
        let step = StepRef {
            rollout: rollout.clone(),
            step: format!("undo {name}"),
            attempt: 1,
        };
        let result = match c {
            Compensation::Deploy {
                root,
                previous: Some(_),
                ..
            } => ctx
                .execute_activity(
                    TargetActivities::rollback,
                    RollbackInput {
                        step,
                        driver,
                        service: service.clone(),
                        spec: RollbackSpec { root: root.clone() },
                    },
                    options.clone(),
                )
                .await
                .map(|out| format!("traffic back to {} ({} stopped)", out.to, out.from))
                .map_err(|e| format!("could not roll back `{name}`: {e}")),
            Compensation::Deploy {
                root,
                previous: None,
                ..
            } => ctx
                .execute_activity(
                    TargetActivities::retire,
                    RetireInput {
                        step,
                        driver,
                        service: service.clone(),
                        root: root.clone(),
                        keep: String::new(),
                    },
                    options.clone(),
                )
                .await
                .map(|out| {
                    format!(
                        "first deploy undone ({} instances stopped)",
                        out.stopped.len()
                    )
                })
                .map_err(|e| format!("could not stop the instances of `{name}`: {e}")),
            Compensation::Command { .. } if point.is_some() => Err(format!(
                "`{name}` was not undone: step `{}` is a point of no return and had completed",
                point.clone().unwrap_or_default(),
            )),
            Compensation::Command { undo, .. } => {
                let mut options = options.clone();
                options.close_timeouts =
                    temporalio_sdk::ActivityCloseTimeouts::StartToClose(undo.timeout);
                options.retry_policy = Some(
                    TemporalRetryPolicy::builder()
                        .maximum_attempts(undo.attempts)
                        .initial_interval(Duration::from_secs(1))
                        .build(),
                );
                options.summary = Some(format!("undo {name}"));
                ctx.execute_activity(
                    RolloutActivities::run_command,
                    CommandInput {
                        step,
                        spec: undo.command.clone(),
                    },
                    options,
                )
                .await
                .map(|_| format!("`{name}` undone (`{}`)", undo.command.command))
                .map_err(|e| format!("undoing `{name}` failed: {e}"))
            }
            Compensation::Migrate {
                applied,
                to_version,
                ..
            } if point.is_some() => Err(format!(
                "the database was left at migration {} (not reverted to {to_version}): step `{}` is a point of no return and had completed",
                applied.iter().max().copied().unwrap_or_default(),
                point.clone().unwrap_or_default(),
            )),
            Compensation::Migrate {
                url,
                directory,
                to_version,
                applied,
                ..
            } => ctx
                .execute_activity(
                    RolloutActivities::undo_migrations,
                    UndoMigrationsInput {
                        step,
                        database_url: url.clone(),
                        directory: directory.clone(),
                        target_version: *to_version,
                    },
                    options.clone(),
                )
                .await
                .map(|out| {
                    format!(
                        "migrations {:?} reverted (database at version {to_version})",
                        out.reverted
                    )
                })
                .map_err(|e| {
                    format!(
                        "the database was left at migration {}: reverting `{name}` failed ({e})",
                        applied.iter().max().copied().unwrap_or_default()
                    )
                }),
        };
        if let Some(host) = &fleet_host {
            let out = fleets.entry(index).or_default();
            if result.is_err() {
                out.push(host.clone());
            }
        }
        match result {
            Ok(text) => {
                ctx.state_mut(|s| {
                    let st = &mut s.status.steps[index];
                    st.state = StepState::RolledBack;
                    if let (Some(host), Some(fleet)) = (&fleet_host, st.fleet.as_mut()) {
                        fleet.hosts.insert(host.clone(), HostState::RolledBack);
                    }
                });
                done.push(match &fleet_host {
                    Some(host) => format!("{host}: {text}"),
                    None => text,
                });
            }
            Err(text) => problems.push(text),
        }
    }
    // Hosts rolled back serve their old version: back into their fleet's router.
    if !target.routers().is_empty() {
        for (index, out) in fleets {
            let (step, release, step_ref) = ctx.state(|s| {
                (
                    s.plan.steps[index].clone(),
                    super::step::Release {
                        service: s.plan.service.clone(),
                        version: s.plan.version.clone(),
                        target: s.plan.target.clone(),
                    },
                    StepRef {
                        rollout: rollout.clone(),
                        step: format!("undo {}", s.plan.steps[index].name),
                        attempt: 1,
                    },
                )
            });
            done.push(super::fleet::reroute(ctx, &step, &release, &step_ref, out).await);
        }
    }
    (done, problems)
}

/// Forgets what deploy step `index` left to undo: it was withdrawn already.
pub(super) fn forget_deploy(s: &mut RolloutWorkflow, index: usize) {
    s.compensations
        .retain(|c| !matches!(c, Compensation::Deploy { index: i, .. } if *i == index));
}

/// Whether deploy step `index` has something to undo on fleet host `host`.
pub(super) fn touched(s: &RolloutWorkflow, index: usize, host: &str) -> bool {
    s.compensations.iter().any(|c| {
        matches!(c, Compensation::Deploy { index: i, host: Some(h), .. } if *i == index && h == host)
    })
}

/// Forgets what deploy step `index` left to undo on `host` (`None`: the single target).
pub(super) fn forget_host(s: &mut RolloutWorkflow, index: usize, host: Option<&str>) {
    s.compensations.retain(|c| {
        !matches!(c, Compensation::Deploy { index: i, host: h, .. } if *i == index && h.as_deref() == host)
    });
}

/// Compensations are retried by Temporal: they must happen.
pub(super) fn options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(600))
        .heartbeat_timeout(Duration::from_secs(60))
        .retry_policy(
            TemporalRetryPolicy::builder()
                .maximum_attempts(5)
                .initial_interval(Duration::from_secs(1))
                .build(),
        )
        .build()
}
