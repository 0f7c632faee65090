//! Drills that move application traffic to a secondary region: the secondary stack checked
//! before the fault, the global router switched after the database, and switched back when
//! the drill restores the original roles or switches back.

use std::time::Duration;

use temporalio_sdk::WorkflowContext;

use super::{DrillWorkflow, cause, done, failed, options, phase};
use crate::contracts::{RouteInput, StepRef, TargetActivities};
use crate::drill::contracts::{AppVerifyInput, DrillActivities};
use crate::drill::{DrillPlan, RegionMove};
use crate::plan::Driver;

/// Phase `secondary`: the secondary region's own checks, directly. `Err` says why; nothing
/// has been touched then.
pub(super) async fn check_secondary(
    ctx: &WorkflowContext<DrillWorkflow>,
    region: &RegionMove,
    run: &str,
) -> Result<(), String> {
    let p = phase(ctx, "secondary");
    match ctx
        .execute_activity(
            DrillActivities::verify,
            AppVerifyInput {
                checks: region.secondary_checks.clone(),
                write_check: None,
                run: run.to_owned(),
                within_ms: 30_000,
            },
            options(Duration::from_secs(60), 1),
        )
        .await
    {
        Ok(at) => {
            done(
                ctx,
                p,
                format!("region {} answers its checks: {}", region.to, at.note),
            );
            Ok(())
        }
        Err(e) => {
            let why = format!("region {} is not ready: {}", region.to, cause(&e));
            failed(ctx, p, &why);
            Err(why)
        }
    }
}

/// Points the router at `to` (every other region drained), as phase `name`. `Err` says why.
pub(super) async fn move_to(
    ctx: &WorkflowContext<DrillWorkflow>,
    plan: &DrillPlan,
    region: &RegionMove,
    to: &str,
    name: &str,
) -> Result<(), String> {
    let p = phase(ctx, name);
    let input = RouteInput {
        step: StepRef {
            rollout: ctx.state(|s| s.status.workflow_id.clone()),
            step: name.to_owned(),
            attempt: 1,
        },
        driver: Driver::Host,
        service: plan.service.clone(),
        router: region.router.clone(),
        drained: region
            .router
            .backends
            .keys()
            .filter(|r| *r != to)
            .cloned()
            .collect(),
        weights: Default::default(),
    };
    let opts = crate::hosts::route(
        options(Duration::from_secs(60), 3),
        Some(&region.router.host),
        crate::plan::DEFAULT_HOST_WAIT,
    );
    match ctx
        .execute_activity(TargetActivities::route, input, opts)
        .await
    {
        Ok(_) => {
            done(ctx, p, format!("application traffic to region {to}"));
            Ok(())
        }
        Err(e) => {
            let why = format!("moving traffic to region {to} failed: {}", cause(&e));
            failed(ctx, p, &why);
            Err(why)
        }
    }
}
