//! Sending a step's activities to its host's agent.
//!
//! Routing changes only the task queue and adds a schedule-to-start timeout, and only when
//! the plan names a host: plans without `target.host` produce exactly the commands they
//! always did, so their histories replay unchanged.

use temporalio_sdk::ActivityOptions;

use crate::hosts;
use crate::plan::{Step, Target};

/// `opts`, sent to the agent of the host `step` acts on, if any.
pub(super) fn on_host(opts: ActivityOptions, step: &Step, target: &Target) -> ActivityOptions {
    hosts::route(opts, step.host(target), step.schedule_to_start_timeout)
}

/// Why an activity sent to `host` was never taken, for the step's error.
pub(super) fn nobody_took_it(host: &str, step: &Step) -> String {
    format!(
        "no agent for host `{host}` took the step within {} (nothing polled task queue `{}`); nothing ran anywhere else. Start `cutover-worker --host {host}` on that machine and run the rollout again",
        humantime::format_duration(step.schedule_to_start_timeout),
        hosts::task_queue(host)
    )
}

/// `opts` for one host of a fleet: its agent's queue, and an activity ID of its own (a wave's
/// hosts run at once, and Temporal wants pending activities' IDs unique). `what` tells the
/// activities of one step apart: `deploy`, `verify`, `retire`, `undo`.
pub(super) fn on_fleet_host(
    mut opts: ActivityOptions,
    step: &Step,
    host: &str,
    what: &str,
) -> ActivityOptions {
    opts.activity_id = Some(match opts.activity_id.take() {
        Some(id) => format!("{id}@{host}/{what}"),
        None => format!("{}@{host}/{what}", step.name),
    });
    hosts::route(opts, Some(host), step.schedule_to_start_timeout)
}
