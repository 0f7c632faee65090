//! `deploy` steps on a fleet: the hosts rolled in waves, each host by its own agent.
//!
//! Each host is deployed as a single machine would be (blue-green: prepare beside the old
//! version, then all of that host's traffic at once; rolling: instance by instance), the hosts
//! of a wave at the same time. Between two waves, every host of the wave just deployed is
//! verified by its own agent, the analysis judges the release, and the bake holds; the next
//! wave starts only when all of that passed, so a bad release stops at the first wave it
//! fails in. After the last wave the rollback window is held once for the whole fleet, then
//! every host retires its old version.
//!
//! Progress (hosts done, waves checked) is kept in workflow state: an attempt lost with an
//! agent resumes with the hosts not yet done, and never deploys a host twice. Each host that
//! `prepare`d is remembered for the saga on its own, so a rollback restores every host the
//! release touched, by that host's agent.

use std::collections::BTreeMap;

use temporalio_sdk::workflows::join_all;
use temporalio_sdk::{ActivityOptions, WorkflowContext};

use super::RolloutWorkflow;
use super::analysis::analyse;
use super::hold::hold;
use super::route::on_fleet_host;
use super::step::{Interrupted, Release};
use crate::contracts::{
    DeployOutput, FleetDeployOutput, RetireInput, RolloutActivities, RouteInput, StepOutput,
    StepRef, TargetActivities, VerifyInput, WithdrawInput,
};
use crate::plan::{DeploySpec, Step, Strategy};
use crate::status::{FleetStatus, HostState};

/// Deploys `spec` on every host of the fleet, wave by wave.
pub(super) async fn deploy(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    step: &Step,
    spec: &DeploySpec,
    release: &Release,
    step_ref: StepRef,
    opts: ActivityOptions,
) -> Result<FleetDeployOutput, Interrupted> {
    let waves = spec.waves.as_deref().cloned().unwrap_or_default();
    // Each region (or the one fleet) cut into waves; regions rolled one after another. Each
    // wave remembers its group's size: draining a whole group would leave its router empty.
    let mut plan: Vec<Vec<String>> = Vec::new();
    let mut regions: Vec<String> = Vec::new();
    let mut group_size: Vec<usize> = Vec::new();
    for (region, hosts) in release.target.groups() {
        for wave in waves.plan(hosts) {
            plan.push(wave.to_vec());
            group_size.push(hosts.len());
            if let Some(r) = region {
                regions.push(r.to_owned());
            }
        }
    }
    ctx.state_mut(|s| {
        s.status.steps[index]
            .fleet
            .get_or_insert_with(|| FleetStatus {
                waves: plan.clone(),
                regions: regions.clone(),
                wave: 0,
                hosts: plan
                    .iter()
                    .flatten()
                    .map(|h| (h.clone(), HostState::Pending))
                    .collect(),
            });
    });
    let last = plan.len();
    for (w, wave) in plan.iter().enumerate() {
        let progress = super::deploy::progress(ctx, index);
        if progress.waves_checked > w {
            continue;
        }
        set_wave(ctx, index, w);
        let todo: Vec<&String> = wave
            .iter()
            .filter(|h| !progress.hosts.contains_key(*h))
            .collect();
        for host in &todo {
            set_host(ctx, index, host, HostState::Deploying);
        }
        // Out of the router while they change, unless the wave is the whole fleet (then
        // nobody would be left to serve; each host's own switch fails no request anyway).
        if !todo.is_empty() && wave.len() < group_size[w] {
            route(ctx, step, release, &step_ref, &opts, wave, wave.to_vec()).await?;
        }
        // A wave switches together: every host's new version is started and healthy before
        // any host's traffic moves, so a host that cannot start it leaves the whole wave on
        // the old version (blue-green across hosts). Rolling hosts replace in one activity.
        let prepared = join_all(
            todo.iter()
                .map(|host| prepare_host(ctx, index, step, spec, release, &step_ref, &opts, host)),
        )
        .await;
        let mut failed = None;
        let mut ready = Vec::new();
        for (host, result) in todo.into_iter().zip(prepared) {
            match result {
                Ok(out) => ready.push((host, out)),
                Err(e) => {
                    host_failed(ctx, index, host, &e);
                    failed.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let (each_ref, each_opts) = (&step_ref, &opts);
        let switched = join_all(ready.iter().map(|(host, _)| async move {
            if spec.strategy == Strategy::Rolling {
                return Ok(Vec::new());
            }
            switch_host(ctx, step, spec, release, each_ref, each_opts, host)
                .await
                .map(|s| vec![s])
        }))
        .await;
        for ((host, prepared), result) in ready.into_iter().zip(switched) {
            match result {
                Ok(shifts) => {
                    let out = DeployOutput {
                        prepared,
                        shifts,
                        retired: Vec::new(),
                    };
                    ctx.state_mut(|s| {
                        s.deploys
                            .entry(index)
                            .or_default()
                            .hosts
                            .insert(host.clone(), out);
                    });
                    set_host(ctx, index, host, HostState::Deployed);
                }
                Err(e) => {
                    host_failed(ctx, index, host, &e);
                    failed.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        verify(ctx, step, &waves.between, wave, &step_ref, &opts).await?;
        // A canary across hosts: the first wave gets each canary weight of the router's
        // traffic in turn (never an equal share first); the other waves follow at 100.
        if w == 0 && spec.strategy == Strategy::Canary && plan.len() > 1 {
            canary(ctx, index, step, spec, release, &step_ref, &opts, wave).await?;
        } else {
            route(ctx, step, release, &step_ref, &opts, wave, Vec::new()).await?;
        }
        if w + 1 < last {
            judge(ctx, index, &waves.between, &step_ref, &opts).await?;
        }
        ctx.state_mut(|s| s.deploys.entry(index).or_default().waves_checked = w + 1);
    }
    set_wave(ctx, index, last);
    let progress = super::deploy::progress(ctx, index);
    if !spec.rollback_window.is_zero() && !progress.window_held {
        // Held once for the whole fleet, like a single host's window: pausable, abortable
        // (every host still runs its old version), promotable.
        hold(ctx, index, spec.rollback_window).await.promoted()?;
        ctx.state_mut(|s| s.deploys.entry(index).or_default().window_held = true);
    }
    let mut hosts: BTreeMap<String, DeployOutput> = progress.hosts;
    let retiring: Vec<String> = hosts.keys().cloned().collect();
    let retired = fan_out(&retiring, step, &opts, "retire", |_, o| {
        let input = RetireInput {
            step: step_ref.clone(),
            driver: release.target.driver,
            service: release.service.clone(),
            root: spec.root.clone(),
            keep: release.version.clone(),
        };
        ctx.execute_activity(TargetActivities::retire, input, o)
    })
    .await;
    for (host, result) in retiring.iter().zip(retired) {
        if let Some(out) = hosts.get_mut(host) {
            out.retired = result.map_err(|e| on_host(host, e))?.stopped;
        }
    }
    Ok(FleetDeployOutput { hosts, waves: last })
}

/// Marks `host` failed, or still `pending` when its agent never took the work and nothing
/// of this deploy was done there.
fn host_failed(ctx: &WorkflowContext<RolloutWorkflow>, index: usize, host: &str, e: &Interrupted) {
    let touched = ctx.state(|s| super::saga::touched(s, index, host));
    let untouched =
        matches!(e, Interrupted::Host { error, .. } if super::failure::never_started(error));
    let state = if untouched && !touched {
        HostState::Pending
    } else {
        HostState::Failed
    };
    set_host(ctx, index, host, state);
}

/// One host's new version started beside the old and healthy (or, for rolling, its
/// instances replaced one by one); remembered for the saga.
#[allow(clippy::too_many_arguments)]
async fn prepare_host(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    step: &Step,
    spec: &DeploySpec,
    release: &Release,
    step_ref: &StepRef,
    opts: &ActivityOptions,
    host: &str,
) -> Result<crate::contracts::PrepareOutput, Interrupted> {
    let input = release.deploy_input(step_ref, spec);
    let out = if spec.strategy == Strategy::Rolling {
        let o = on_fleet_host(opts.clone(), step, host, "rolling");
        ctx.execute_activity(TargetActivities::rolling, input, o)
            .await
    } else {
        let o = on_fleet_host(opts.clone(), step, host, "prepare");
        ctx.execute_activity(TargetActivities::prepare, input, o)
            .await
    }
    .map_err(|e| on_host(host, e))?;
    if !out.already_current {
        ctx.state_mut(|s| {
            super::saga::remember_deploy(s, index, &spec.root, out.previous.clone(), Some(host));
        });
    }
    Ok(out)
}

/// All of `host`'s traffic to its prepared version.
#[allow(clippy::too_many_arguments)]
async fn switch_host(
    ctx: &WorkflowContext<RolloutWorkflow>,
    step: &Step,
    spec: &DeploySpec,
    release: &Release,
    step_ref: &StepRef,
    opts: &ActivityOptions,
    host: &str,
) -> Result<crate::contracts::ShiftOutput, Interrupted> {
    let shift = release.shift_input(step_ref, &spec.root, 100);
    ctx.execute_activity(
        TargetActivities::shift,
        shift,
        on_fleet_host(opts.clone(), step, host, "shift"),
    )
    .await
    .map_err(|e| on_host(host, e))
}

/// Each host of the wave just deployed, checked by its own agent (so a URL on 127.0.0.1
/// means that host), before it gets traffic from the router again.
async fn verify(
    ctx: &WorkflowContext<RolloutWorkflow>,
    step: &Step,
    between: &crate::plan::Between,
    wave: &[String],
    step_ref: &StepRef,
    opts: &ActivityOptions,
) -> Result<(), Interrupted> {
    if let Some(verify) = &between.verify {
        let results = fan_out(wave, step, opts, "verify", |_, o| {
            let input = VerifyInput {
                step: step_ref.clone(),
                spec: verify.clone(),
            };
            ctx.execute_activity(RolloutActivities::verify, input, o)
        })
        .await;
        for (host, result) in wave.iter().zip(results) {
            result.map_err(|e| on_host(host, e))?;
        }
    }
    Ok(())
}

/// Points the routers in front of `scope` (the target's, or those of the regions `scope` is
/// in) at every host but `drained`, each by its host's agent.
async fn route(
    ctx: &WorkflowContext<RolloutWorkflow>,
    step: &Step,
    release: &Release,
    step_ref: &StepRef,
    opts: &ActivityOptions,
    scope: &[String],
    drained: Vec<String>,
) -> Result<(), Interrupted> {
    for (router, hosts) in release.target.routers() {
        if !hosts.iter().any(|h| scope.contains(h)) {
            continue;
        }
        let input = RouteInput {
            step: step_ref.clone(),
            driver: release.target.driver,
            service: release.service.clone(),
            router: router.clone(),
            drained: drained
                .iter()
                .filter(|h| hosts.contains(h))
                .cloned()
                .collect(),
            weights: Default::default(),
        };
        let o = on_fleet_host(opts.clone(), step, &router.host, "route");
        ctx.execute_activity(TargetActivities::route, input, o)
            .await
            .map_err(|e| on_host(&router.host, e))?;
    }
    Ok(())
}

/// The canary entries below 100 across hosts: `canary` (the first wave's hosts, on the new
/// version) get each weight of the router's traffic, judged by the deploy's `analysis` and
/// held for its bake, with the script's gates between (see [`super::canary`]). Entries done
/// are kept for a retried attempt.
#[allow(clippy::too_many_arguments)]
async fn canary(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    step: &Step,
    spec: &DeploySpec,
    release: &Release,
    step_ref: &StepRef,
    opts: &ActivityOptions,
    canary: &[String],
) -> Result<(), Interrupted> {
    let Some(router) = &release.target.router else {
        return route(ctx, step, release, step_ref, opts, canary, Vec::new()).await;
    };
    let fleet = release.target.fleet();
    let script = super::canary::Script {
        entries: &spec.canary,
        analysis: spec.analysis.as_ref(),
        from: super::deploy::progress(ctx, index).completed,
        stop_at_full: true,
        shown: true,
    };
    super::canary::script(
        ctx,
        index,
        script,
        step_ref,
        opts,
        async |weight| {
            let input = RouteInput {
                step: step_ref.clone(),
                driver: release.target.driver,
                service: release.service.clone(),
                router: router.clone(),
                drained: Vec::new(),
                weights: canary_weights(fleet, canary, weight),
            };
            let o = on_fleet_host(opts.clone(), step, &router.host, "route");
            ctx.execute_activity(TargetActivities::route, input, o)
                .await
                .map_err(|e| on_host(&router.host, e))?;
            Ok(())
        },
        |n| ctx.state_mut(|s| s.deploys.entry(index).or_default().completed = n),
    )
    .await
}

/// Router weights giving the `canary` hosts `percent` of the traffic between them and the
/// rest of `fleet` (each host of a group equal): canary hosts `percent × others`, the others
/// `(100 − percent) × canaries`, reduced.
fn canary_weights(fleet: &[String], canary: &[String], percent: u8) -> BTreeMap<String, u32> {
    let n_new = canary.len() as u32;
    let n_old = fleet.iter().filter(|h| !canary.contains(h)).count() as u32;
    if n_new == 0 || n_old == 0 {
        return BTreeMap::new();
    }
    let (mut new, mut old) = (
        u32::from(percent) * n_old,
        (100 - u32::from(percent)) * n_new,
    );
    let g = gcd(new, old);
    (new, old) = (new / g, old / g);
    fleet
        .iter()
        .map(|h| (h.clone(), if canary.contains(h) { new } else { old }))
        .collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

/// Between two waves, once the wave serves again: the analysis, then the bake. `promote`
/// during the bake starts the next wave at once.
async fn judge(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    between: &crate::plan::Between,
    step_ref: &StepRef,
    opts: &ActivityOptions,
) -> Result<(), Interrupted> {
    if let Some(analysis) = &between.analysis {
        analyse(ctx, index, analysis, step_ref, opts, None)
            .await
            .promoted()?;
    }
    if !between.bake.is_zero() {
        hold(ctx, index, between.bake).await.promoted()?;
    }
    Ok(())
}

/// Withdraws a fleet deploy that failed for good: every host of the failed wave that was
/// touched and not finished has its unfinished deploy undone by its agent. Hosts finished
/// (in this wave or earlier ones) are left to the saga, which rolls them back. Returns what
/// to add to the step's failure reason.
pub(super) async fn withdraw(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    step: &Step,
    spec: &DeploySpec,
    release: &Release,
    step_ref: StepRef,
) -> Option<String> {
    let failed: Vec<String> = ctx.state(|s| {
        s.status.steps[index]
            .fleet
            .iter()
            .flat_map(|f| &f.hosts)
            .filter(|(_, state)| matches!(state, HostState::Failed | HostState::Deploying))
            .map(|(h, _)| h.clone())
            .collect()
    });
    if failed.is_empty() {
        return None;
    }
    let opts = super::saga::options();
    let results = fan_out(&failed, step, &opts, "withdraw", |_, o| {
        let input = WithdrawInput {
            step: step_ref.clone(),
            driver: release.target.driver,
            service: release.service.clone(),
            root: spec.root.clone(),
            version: release.version.clone(),
        };
        ctx.execute_activity(TargetActivities::withdraw, input, o)
    })
    .await;
    let mut said = Vec::new();
    let mut unknown = Vec::new();
    for (host, result) in failed.iter().zip(results) {
        match result {
            Ok(out) => {
                if !out.still_serving {
                    ctx.state_mut(|s| super::saga::forget_host(s, index, Some(host)));
                    set_host(ctx, index, host, HostState::Withdrawn);
                }
                said.push(format!("{host}: {}", out.describe(&release.service)));
            }
            Err(e) => {
                unknown.push(host.clone());
                said.push(format!(
                    "{host}: undoing it failed ({e}); the state of {} there is not verified",
                    release.service
                ));
            }
        }
    }
    // Withdrawn hosts serve their old version, checked: back into the router. A host whose
    // state is not known stays out of it, and so does one of the failed wave that runs the
    // new version unverified (the saga rolls it back, then returns it).
    if !release.target.routers().is_empty() {
        let mut out = unknown;
        out.extend(ctx.state(|s| {
            s.status.steps[index]
                .fleet
                .as_ref()
                .and_then(|f| {
                    let wave = f.waves.get(f.wave)?;
                    Some(
                        wave.iter()
                            .filter(|h| f.hosts.get(*h) == Some(&HostState::Deployed))
                            .cloned()
                            .collect::<Vec<_>>(),
                    )
                })
                .unwrap_or_default()
        }));
        said.push(reroute(ctx, step, release, &step_ref, out).await);
    }
    (!said.is_empty()).then(|| said.join("; "))
}

/// Points the router at every host but `out`, and says so.
pub(super) async fn reroute(
    ctx: &WorkflowContext<RolloutWorkflow>,
    step: &Step,
    release: &Release,
    step_ref: &StepRef,
    out: Vec<String>,
) -> String {
    let opts = super::saga::options();
    let fleet = release.target.fleet();
    match route(ctx, step, release, step_ref, &opts, fleet, out.clone()).await {
        Ok(()) if out.is_empty() => "the router sends traffic to every host".to_owned(),
        Ok(()) => format!("the router keeps {} out", out.join(", ")),
        Err(_) => "the router could not be updated; check it".to_owned(),
    }
}

/// Runs `run` on every host of `fleet` at once, each with `opts` routed to its agent; the
/// outputs by host, or the first host's failure (after all have ended).
pub(super) async fn each_host<F, Fut>(
    step: &Step,
    fleet: &[String],
    opts: &ActivityOptions,
    run: F,
) -> Result<BTreeMap<String, StepOutput>, Interrupted>
where
    F: Fn(ActivityOptions) -> Fut,
    Fut: std::future::Future<Output = Result<StepOutput, Interrupted>>,
{
    let what = step.action.kind().as_str();
    let results = fan_out(fleet, step, opts, what, |_, o| run(o)).await;
    let mut out = BTreeMap::new();
    for (host, result) in fleet.iter().zip(results) {
        let output = result.map_err(|e| match e {
            Interrupted::Activity(error) => Interrupted::Host {
                host: host.clone(),
                error,
            },
            other => other,
        })?;
        out.insert(host.clone(), output);
    }
    Ok(out)
}

/// Runs `run(host, opts)` for every host at once, `opts` routed to that host's agent with an
/// activity ID of its own (`what` names the activity); each host's result, in `hosts` order,
/// once all have ended (one host failing does not cut the others short: their work is
/// recorded, so the saga knows what to undo).
async fn fan_out<'a, T, F, Fut>(
    hosts: &'a [String],
    step: &Step,
    opts: &ActivityOptions,
    what: &str,
    run: F,
) -> Vec<T>
where
    F: Fn(&'a str, ActivityOptions) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    join_all(
        hosts
            .iter()
            .map(|host| run(host, on_fleet_host(opts.clone(), step, host, what))),
    )
    .await
}

/// An activity failure on `host`, kept with the host's name for the step's error.
fn on_host(host: &str, error: temporalio_common::error::ActivityExecutionError) -> Interrupted {
    Interrupted::Host {
        host: host.to_owned(),
        error: Box::new(error),
    }
}

fn set_wave(ctx: &WorkflowContext<RolloutWorkflow>, index: usize, wave: usize) {
    ctx.state_mut(|s| {
        if let Some(f) = s.status.steps[index].fleet.as_mut() {
            f.wave = wave;
        }
    });
}

fn set_host(ctx: &WorkflowContext<RolloutWorkflow>, index: usize, host: &str, state: HostState) {
    ctx.state_mut(|s| {
        if let Some(f) = s.status.steps[index].fleet.as_mut() {
            f.hosts.insert(host.to_owned(), state);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::canary_weights;

    #[test]
    fn canary_weights_give_the_canary_hosts_their_share() {
        let fleet: Vec<String> = ["web-1", "web-2", "web-3"].map(String::from).to_vec();
        let w = canary_weights(&fleet, &fleet[..1], 10);
        // web-1: 10 × 2 = 20; the others 90 × 1 = 90; reduced by 10: 2 and 9 each.
        assert_eq!((w["web-1"], w["web-2"], w["web-3"]), (2, 9, 9));
        let share = f64::from(w["web-1"]) / f64::from(w.values().sum::<u32>());
        assert!((share - 0.10).abs() < 1e-9, "{share}");
        let half = canary_weights(&fleet, &fleet[..1], 50);
        assert_eq!((half["web-1"], half["web-2"]), (2, 1));
        assert!(
            canary_weights(&fleet, &fleet, 10).is_empty(),
            "no old hosts: equal"
        );
    }
}
