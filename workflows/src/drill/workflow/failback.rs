//! After the measurement, and when a phase fails: putting the pair back together.
//!
//! - `failback`: the old primary rebuilt as a standby of the new one; then, if the plan asks,
//!   `switch_back`, a switchover to the original roles (the new primary stopped once the old
//!   one has replayed everything, the old one promoted, the app pointed back, the other server
//!   rebuilt as its standby, the app's checks run).
//! - `restore` (compensation): one server kept as the primary — the other fenced if it was
//!   promoted, the kept one restarted, the app pointed at it, the other rebuilt as its standby
//!   and the app's checks run. Without the failback patch it does what it did before: restart
//!   the old primary and point the app back.

use std::time::Duration;

use temporalio_sdk::{WorkflowContext, WorkflowResult};

use super::{
    DrillWorkflow, cause, done, fail, failed, on_node, on_traffic, options, phase, switch_options,
};
use crate::drill::contracts::{AppVerifyInput, DrillActivities, NodeInput, RebuildInput};
use crate::drill::{DatabaseNode, DrillPlan};

/// Which server is to be the primary, and which one its standby.
#[derive(Clone)]
pub(super) struct Roles {
    keep: DatabaseNode,
    other: DatabaseNode,
}

impl Roles {
    /// The plan's primary stays (or becomes again) the primary.
    pub(super) fn original(plan: &DrillPlan) -> Self {
        Self {
            keep: plan.database.primary.clone(),
            other: plan.database.standby.clone(),
        }
    }

    /// The plan's standby stays the primary (after a failover, during a switch back).
    fn reversed(plan: &DrillPlan) -> Self {
        Self {
            keep: plan.database.standby.clone(),
            other: plan.database.primary.clone(),
        }
    }
}

fn node(plan: &DrillPlan, node: &DatabaseNode, within_ms: u64) -> NodeInput {
    NodeInput {
        database: plan.database.clone(),
        node: node.clone(),
        graceful: false,
        within_ms,
    }
}

fn verify_input(plan: &DrillPlan, run: &str) -> AppVerifyInput {
    AppVerifyInput {
        checks: plan.checks.clone(),
        write_check: plan.write_check.clone(),
        run: run.to_owned(),
        within_ms: 60_000,
    }
}

/// Rebuilds the old primary as a standby of the new one, then switches back if asked.
pub(super) async fn failback(
    ctx: &mut WorkflowContext<DrillWorkflow>,
    plan: &DrillPlan,
) -> WorkflowResult<()> {
    let p = phase(ctx, "failback");
    let rebuilt = ctx
        .execute_activity(
            DrillActivities::rebuild,
            RebuildInput {
                database: plan.database.clone(),
                node: plan.database.primary.clone(),
                source: plan.database.standby.clone(),
            },
            on_node(options(Duration::from_secs(600), 3), &plan.database.primary),
        )
        .await;
    match rebuilt {
        Ok(at) => done(ctx, p, at.note),
        Err(e) => {
            let why = cause(&e);
            failed(ctx, p, &why);
            return fail(
                ctx,
                format!("failback: {why}"),
                Some("none needed: the app stays on the new primary".to_owned()),
            );
        }
    }
    if plan.failback.switch_back {
        switch_back(ctx, plan).await?;
        // Back to the original roles: the application's traffic goes home too.
        if let Some(region) = &plan.region
            && let Err(why) =
                super::region::move_to(ctx, plan, region, &region.from, "move_back").await
        {
            return fail(ctx, format!("move_back: {why}"), None);
        }
    }
    Ok(())
}

/// A switchover back to the original roles.
async fn switch_back(
    ctx: &mut WorkflowContext<DrillWorkflow>,
    plan: &DrillPlan,
) -> WorkflowResult<()> {
    let p = phase(ctx, "switch_back");
    let db = plan.database.clone();
    let within = plan.promote_within.as_millis() as u64;
    let mut did = Vec::new();

    // The new primary stops only once the old one (its standby now) has replayed everything.
    let mut stop = node(plan, &db.standby, 0);
    stop.graceful = true;
    let stopped = ctx
        .execute_activity(
            DrillActivities::fault,
            stop,
            on_node(options(Duration::from_secs(120), 3), &db.standby),
        )
        .await
        .map_err(|e| format!("stopping the new primary: {}", cause(&e)));
    let promoted = match stopped {
        Ok(at) => {
            did.push(at.note);
            ctx.execute_activity(
                DrillActivities::promote,
                node(plan, &db.primary, within),
                on_node(
                    options(plan.promote_within + Duration::from_secs(60), 3),
                    &db.primary,
                ),
            )
            .await
            .map_err(|e| format!("promoting the original primary: {}", cause(&e)))
        }
        Err(why) => Err(why),
    };
    match promoted {
        Ok(at) => did.push(at.note),
        Err(why) => {
            failed(ctx, p, &why);
            let restored = restore(ctx, plan, Roles::reversed(plan), true).await;
            return fail(ctx, format!("switch_back: {why}"), Some(restored));
        }
    }
    let switched = ctx
        .execute_activity(
            DrillActivities::switch,
            plan.traffic.switch_to(&db.primary.url),
            on_traffic(switch_options(plan, 3), plan),
        )
        .await;
    if let Err(e) = switched {
        let why = format!("pointing the app back: {}", cause(&e));
        failed(ctx, p, &why);
        let restored = restore(ctx, plan, Roles::reversed(plan), true).await;
        return fail(ctx, format!("switch_back: {why}"), Some(restored));
    }
    did.push("the app points at the original primary".to_owned());

    let rebuilt = ctx
        .execute_activity(
            DrillActivities::rebuild,
            RebuildInput {
                database: db.clone(),
                node: db.standby.clone(),
                source: db.primary.clone(),
            },
            on_node(options(Duration::from_secs(600), 3), &db.standby),
        )
        .await;
    let checked = match rebuilt {
        Ok(at) => {
            did.push(at.note);
            let run = ctx.state(|s| s.status.workflow_id.clone());
            ctx.execute_activity(
                DrillActivities::verify,
                verify_input(plan, &format!("{run} switch back")),
                options(Duration::from_secs(90), 1),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match checked {
        Ok(at) => {
            did.push(at.note);
            done(ctx, p, did.join("; "));
            Ok(())
        }
        Err(e) => {
            let why = cause(&e);
            failed(ctx, p, &why);
            fail(
                ctx,
                format!("switch_back: {why}"),
                Some("none: the app is on the original primary".to_owned()),
            )
        }
    }
}

/// Compensation: `roles.keep` is the one writable primary with the app on it (`point_app`
/// rewrites the endpoint file). Returns what it did.
pub(super) async fn restore(
    ctx: &WorkflowContext<DrillWorkflow>,
    plan: &DrillPlan,
    roles: Roles,
    point_app: bool,
) -> String {
    let patched = ctx.state(|s| s.failback);
    // Compensation must run to its end even when the drill is being cancelled (a cancelled
    // drill is exactly one whose database may be half failed over): its activities get a
    // cancellation token of their own. Drills started before this replay as they ran.
    let detached = ctx.patched(super::CANCEL_SAFE_PATCH);
    let options = |timeout: Duration, attempts: u32| {
        let opts = options(timeout, attempts);
        if detached { super::detach(opts) } else { opts }
    };
    let p = phase(ctx, "restore");
    let mut did = Vec::new();
    if patched {
        // Before the kept server comes back: a promoted other server would be a second primary.
        match ctx
            .execute_activity(
                DrillActivities::fence,
                node(plan, &roles.other, 0),
                on_node(options(Duration::from_secs(120), 5), &roles.other),
            )
            .await
        {
            Ok(at) => did.push(at.note),
            Err(e) => did.push(format!("fencing failed: {}", cause(&e))),
        }
    }
    match ctx
        .execute_activity(
            DrillActivities::restart,
            node(plan, &roles.keep, 0),
            on_node(options(Duration::from_secs(120), 5), &roles.keep),
        )
        .await
    {
        Ok(at) => did.push(at.note),
        Err(e) => did.push(format!("restarting the primary failed: {}", cause(&e))),
    }
    if point_app {
        match ctx
            .execute_activity(
                DrillActivities::switch,
                plan.traffic.switch_to(&roles.keep.url),
                on_traffic(switch_options(plan, 5), plan),
            )
            .await
        {
            Ok(_) => did.push("the app points at the kept primary".to_owned()),
            Err(e) => did.push(format!("pointing the app back failed: {}", cause(&e))),
        }
        // With the original primary kept, the application's traffic goes back to its region.
        if let Some(region) = &plan.region
            && roles.keep.data_dir == plan.database.primary.data_dir
        {
            match super::region::move_to(ctx, plan, region, &region.from, "move_back").await {
                Ok(()) => did.push(format!("traffic back in region {}", region.from)),
                Err(why) => did.push(why),
            }
        }
    }
    if patched {
        if plan.failback.rebuild {
            match ctx
                .execute_activity(
                    DrillActivities::rebuild,
                    RebuildInput {
                        database: plan.database.clone(),
                        node: roles.other.clone(),
                        source: roles.keep.clone(),
                    },
                    options(Duration::from_secs(600), 3),
                )
                .await
            {
                Ok(at) => did.push(at.note),
                Err(e) => did.push(format!("rebuilding the standby failed: {}", cause(&e))),
            }
        }
        let run = ctx.state(|s| s.status.workflow_id.clone());
        match ctx
            .execute_activity(
                DrillActivities::verify,
                verify_input(plan, &format!("{run} restore")),
                options(Duration::from_secs(90), 1),
            )
            .await
        {
            Ok(at) => did.push(at.note),
            Err(e) => did.push(format!("the app checks still fail: {}", cause(&e))),
        }
    }
    let text = did.join("; ");
    done(ctx, p, text.clone());
    text
}
