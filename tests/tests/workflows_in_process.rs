//! Fast in-process workflow tests: the real workflows, a real dev server, scripted fake
//! activities (see `cutover_tests::inproc`). They cover the decision paths the end-to-end
//! suites cannot reach cheaply: approval timeouts, aborts and pauses in a deploy's rollback
//! window, promote during a rollback, cancelled drills, every `on_failure`, and the service
//! lock given back on every ending.
//!
//! Nothing here waits on wall-clock guesses: tests wait for a fake to be called (woken by the
//! call) or for the workflow's own `status` to say something, each with a deadline.

use std::time::Duration;

use cutover_tests::inproc::{InProcess, PlanBuilder, StepBuilder};
use cutover_tests::{outcome, status, wait_for};
use cutover_workflows::RolloutWorkflow;
use cutover_workflows::contracts::{AbortRequest, StepOutput};
use cutover_workflows::control::{PauseRequest, PromoteRequest, ResumeRequest};
use cutover_workflows::status::{RolloutState, RolloutStatus};
use temporalio_client::{
    Client, WorkflowCancelOptions, WorkflowExecuteUpdateOptions, WorkflowGetResultOptions,
    WorkflowSignalOptions,
};

const LIMIT: Duration = Duration::from_secs(30);

/// How a rollout ended: its final status (state and reason). Its history must replay
/// (saved as `inproc-<id>.json` under `CUTOVER_RECORD_HISTORIES` when set).
async fn ended(client: &Client, id: &str) -> anyhow::Result<RolloutStatus> {
    tokio::time::timeout(LIMIT, outcome(client, id))
        .await
        .map_err(|_| anyhow::anyhow!("{id} did not end within {LIMIT:?}"))?
        .ok();
    let s = status(client, id)
        .await
        .ok_or_else(|| anyhow::anyhow!("no status for {id}"))?;
    anyhow::ensure!(s.state.is_final(), "{id} has not ended: {s:?}");
    cutover_tests::replays(client, id, &history_name(id)).await?;
    Ok(s)
}

/// Waits until the rollout's `status` satisfies `done`.
async fn until(
    client: &Client,
    id: &str,
    what: &str,
    done: impl Fn(&RolloutStatus) -> bool,
) -> anyhow::Result<RolloutStatus> {
    wait_for(LIMIT, what, || {
        let (client, id) = (client.clone(), id.to_owned());
        let done = &done;
        async move { status(&client, &id).await.filter(|s| done(s)) }
    })
    .await
}

async fn signal_abort(client: &Client, id: &str) -> anyhow::Result<()> {
    client
        .get_workflow_handle::<RolloutWorkflow>(id.to_owned())
        .signal(
            RolloutWorkflow::abort,
            AbortRequest {
                by: "ana".to_owned(),
                reason: "looks wrong".to_owned(),
                assertion: None,
            },
            WorkflowSignalOptions::default(),
        )
        .await?;
    Ok(())
}

async fn promote(client: &Client, id: &str) -> anyhow::Result<String> {
    let result = client
        .get_workflow_handle::<RolloutWorkflow>(id.to_owned())
        .execute_update(
            RolloutWorkflow::promote,
            PromoteRequest {
                by: "ana".to_owned(),
                full: false,
                assertion: None,
            },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await?;
    Ok(result.step)
}

/// The service lock of `plan` is free: its lock workflow is not running.
async fn lock_given_back(client: &Client, plan: &PlanBuilder) -> anyhow::Result<()> {
    let (service, environment) = plan.names();
    let id = cutover_workflows::lock::lock_id(&service, &environment);
    wait_for(LIMIT, "the service lock to be given back", || {
        let (client, id) = (client.clone(), id.clone());
        async move {
            (!cutover_client::lock::running(&client, &id, "")
                .await
                .unwrap_or(true))
            .then_some(())
        }
    })
    .await
}

fn approval_plan(service: &str, on_timeout: &str) -> PlanBuilder {
    PlanBuilder::new(service)
        .step(StepBuilder::command("before"))
        .step(
            StepBuilder::approval("gate")
                .set("timeout", "1s")
                .set("on_timeout", on_timeout),
        )
        .step(StepBuilder::command("after"))
}

#[tokio::test]
async fn an_approval_that_times_out_with_on_timeout_abort_fails_the_rollout_before_the_next_step()
-> anyhow::Result<()> {
    let t = InProcess::start("approval-abort").await?;
    let plan = approval_plan("appr-abort", "abort");
    let end = t
        .run(|| async {
            let id = t.start_rollout(&plan).await?;
            ended(t.client(), &id).await
        })
        .await?;
    assert_eq!(end.state, RolloutState::Failed, "{end:?}");
    let reason = end.reason.unwrap_or_default();
    assert!(reason.contains("ApprovalTimedOut"), "{reason}");
    assert!(reason.contains("0 of 1 approvals"), "{reason}");
    let steps: Vec<_> = t.script.calls().into_iter().map(|c| c.step).collect();
    assert!(steps.contains(&"before".to_owned()), "{steps:?}");
    assert!(!steps.contains(&"after".to_owned()), "{steps:?}");
    lock_given_back(t.client(), &plan).await?;
    t.shutdown().await
}

#[tokio::test]
async fn an_approval_that_times_out_with_on_timeout_continue_goes_on_and_says_it_timed_out()
-> anyhow::Result<()> {
    let t = InProcess::start("approval-continue").await?;
    let plan = approval_plan("appr-continue", "continue");
    let end = t
        .run(|| async {
            let id = t.start_rollout(&plan).await?;
            ended(t.client(), &id).await
        })
        .await?;
    assert_eq!(end.state, RolloutState::Succeeded, "{end:?}");
    match &end.steps[1].output {
        Some(StepOutput::Approval(a)) => assert!(a.timed_out && a.approvers.is_empty()),
        other => panic!("approval output: {other:?}"),
    }
    assert_eq!(t.script.count("process.run"), 2);
    lock_given_back(t.client(), &plan).await?;
    t.shutdown().await
}

fn windowed_deploy(service: &str, window: &str) -> PlanBuilder {
    PlanBuilder::new(service)
        .on_failure("rollback")
        .step(StepBuilder::deploy("deploy").set("rollback_window", window))
}

/// The deploy has moved all traffic and sits in its rollback window.
async fn in_rollback_window(t: &InProcess, id: &str) -> anyhow::Result<()> {
    t.script
        .wait_until(LIMIT, "all traffic on the new version", |calls| {
            calls
                .iter()
                .any(|c| c.activity == "traffic.shift" && c.detail.ends_with("@100"))
        })
        .await?;
    until(t.client(), id, "the rollback window to be running", |s| {
        s.steps[0].hold_ms.is_some() || s.steps[0].ends_at.is_some()
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_abort_in_a_deploys_rollback_window_rolls_back_at_once_without_retiring_the_old_version()
-> anyhow::Result<()> {
    let t = InProcess::start("window-abort").await?;
    // An hour-long window: the rollout can only end within the test's deadline if the abort
    // cuts it short.
    let plan = windowed_deploy("window-abort", "1h");
    let end = t
        .run(|| async {
            let id = t.start_rollout(&plan).await?;
            in_rollback_window(&t, &id).await?;
            signal_abort(t.client(), &id).await?;
            ended(t.client(), &id).await
        })
        .await?;
    assert_eq!(end.state, RolloutState::RolledBack, "{end:?}");
    assert!(
        end.reason
            .as_deref()
            .is_some_and(|r| r.contains("aborted by ana")),
        "{end:?}"
    );
    let activities = t.script.activities();
    assert!(
        !activities.iter().any(|a| a == "deploy.retire"),
        "the old version must not be retired before the rollback: {activities:?}"
    );
    assert_eq!(t.script.count("deploy.rollback"), 1, "{activities:?}");
    lock_given_back(t.client(), &plan).await?;
    t.shutdown().await
}

#[tokio::test]
async fn a_pause_in_a_deploys_rollback_window_stops_its_clock_until_resume() -> anyhow::Result<()> {
    let t = InProcess::start("window-pause").await?;
    let plan = windowed_deploy("window-pause", "2s");
    let end = t
        .run(|| async {
            let id = t.start_rollout(&plan).await?;
            in_rollback_window(&t, &id).await?;
            let handle = t
                .client()
                .get_workflow_handle::<RolloutWorkflow>(id.clone());
            handle
                .signal(
                    RolloutWorkflow::pause,
                    PauseRequest {
                        by: "ana".to_owned(),
                        reason: "watching".to_owned(),
                        assertion: None,
                    },
                    WorkflowSignalOptions::default(),
                )
                .await?;
            // The clock stops: the window reports what remains instead of an end time.
            let paused = until(t.client(), &id, "the window's clock to stop", |s| {
                s.steps[0].remaining_ms.is_some()
            })
            .await?;
            assert!(paused.steps[0].ends_at.is_none());
            assert_eq!(t.script.count("deploy.retire"), 0);
            handle
                .signal(
                    RolloutWorkflow::resume,
                    ResumeRequest {
                        by: "ana".to_owned(),
                        assertion: None,
                    },
                    WorkflowSignalOptions::default(),
                )
                .await?;
            ended(t.client(), &id).await
        })
        .await?;
    assert_eq!(end.state, RolloutState::Succeeded, "{end:?}");
    assert_eq!(t.script.count("deploy.retire"), 1);
    lock_given_back(t.client(), &plan).await?;
    t.shutdown().await
}

#[tokio::test]
async fn promote_is_refused_while_a_rollback_runs() -> anyhow::Result<()> {
    let t = InProcess::start("promote-rollback").await?;
    let plan = PlanBuilder::new("promote-rb").on_failure("rollback").step(
        StepBuilder::deploy("canary")
            .set("strategy", "canary")
            .set("rollback_window", "0s")
            .set("canary", "[{ weight: 20 }, { weight: 100 }]")
            .set(
                "analysis",
                "{ interval: 200ms, duration: 10s, metrics: [{ name: up, http: { url: \"http://127.0.0.1:9/\" }, success_condition: \"success_rate >= 0.5\" }] }",
            ),
    );
    // The first measurement hangs until the test lets it go; the rollback then hangs too,
    // so the test can ask for a promotion while it runs.
    t.script.block("analysis.measure");
    t.script.block("deploy.rollback");
    let (refused, end) = t
        .run(|| async {
            let id = t.start_rollout(&plan).await?;
            t.script.wait_for_calls("analysis.measure", 1).await?;
            signal_abort(t.client(), &id).await?;
            until(t.client(), &id, "the abort to be recorded", |s| {
                s.actions.iter().any(|a| a.action == "abort")
            })
            .await?;
            // Only the measurement is released: the rollback it leads to stays blocked.
            t.script.release("analysis.measure");
            t.script.wait_for_calls("deploy.rollback", 1).await?;
            let refused = promote(t.client(), &id).await;
            t.script.release("deploy.rollback");
            Ok((refused, ended(t.client(), &id).await?))
        })
        .await?;
    let err = refused.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(
        err.contains("nothing to promote"),
        "promote was not refused: {err}"
    );
    assert_eq!(end.state, RolloutState::RolledBack, "{end:?}");
    lock_given_back(t.client(), &plan).await?;
    t.shutdown().await
}

/// A first deploy, then a command that fails for good.
fn failing_after_deploy(service: &str, on_failure: &str) -> PlanBuilder {
    PlanBuilder::new(service)
        .on_failure(on_failure)
        .step(StepBuilder::deploy("deploy").set("rollback_window", "0s"))
        .step(StepBuilder::command("boom"))
}

#[tokio::test]
async fn on_failure_fail_leaves_completed_steps_as_they_are() -> anyhow::Result<()> {
    let t = InProcess::start("onfail-fail").await?;
    let plan = failing_after_deploy("onfail-fail", "fail");
    t.script.fail("process.run", "CommandFailed", false);
    let end = t
        .run(|| async { ended(t.client(), &t.start_rollout(&plan).await?).await })
        .await?;
    assert_eq!(end.state, RolloutState::Failed, "{end:?}");
    assert!(
        end.reason
            .as_deref()
            .is_some_and(|r| r.contains("step `boom` failed after 1 attempt: CommandFailed")),
        "{end:?}"
    );
    assert_eq!(t.script.count("deploy.rollback"), 0);
    lock_given_back(t.client(), &plan).await?;
    t.shutdown().await
}

#[tokio::test]
async fn on_failure_rollback_undoes_the_deploy_after_the_failure() -> anyhow::Result<()> {
    let t = InProcess::start("onfail-rollback").await?;
    let plan = failing_after_deploy("onfail-rollback", "rollback");
    t.script.fail("process.run", "CommandFailed", false);
    let end = t
        .run(|| async { ended(t.client(), &t.start_rollout(&plan).await?).await })
        .await?;
    assert_eq!(end.state, RolloutState::RolledBack, "{end:?}");
    let activities = t.script.activities();
    let boom = activities.iter().position(|a| a == "process.run");
    let undo = activities.iter().position(|a| a == "deploy.rollback");
    assert!(
        boom.is_some() && undo.is_some() && boom < undo,
        "{activities:?}"
    );
    lock_given_back(t.client(), &plan).await?;
    t.shutdown().await
}

#[tokio::test]
async fn on_failure_pause_holds_the_failed_step_until_retry_runs_it_again() -> anyhow::Result<()> {
    let t = InProcess::start("onfail-pause").await?;
    let plan = failing_after_deploy("onfail-pause", "pause");
    // The first run fails for good; after the "fix", the retried run succeeds.
    t.script.on(
        "process.run",
        None,
        cutover_tests::inproc::Behaviour::Fail {
            kind: "CommandFailed",
            retryable: false,
        },
        Some(1),
    );
    let end = t
        .run(|| async {
            let id = t.start_rollout(&plan).await?;
            let held = until(t.client(), &id, "the failed step to be held", |s| {
                s.paused.is_some() && s.steps[1].attempts == 1
            })
            .await?;
            assert_eq!(held.state, RolloutState::Running);
            let step = t
                .client()
                .get_workflow_handle::<RolloutWorkflow>(id.clone())
                .execute_update(
                    RolloutWorkflow::retry,
                    ResumeRequest {
                        by: "ana".to_owned(),
                        assertion: None,
                    },
                    WorkflowExecuteUpdateOptions::default(),
                )
                .await?;
            assert_eq!(step, "boom");
            ended(t.client(), &id).await
        })
        .await?;
    assert_eq!(end.state, RolloutState::Succeeded, "{end:?}");
    assert_eq!(end.steps[1].attempts, 2);
    assert_eq!(t.script.count("deploy.rollback"), 0);
    lock_given_back(t.client(), &plan).await?;
    t.shutdown().await
}

#[tokio::test]
async fn a_cancelled_rollout_ends_cancelled_and_gives_the_lock_back() -> anyhow::Result<()> {
    let t = InProcess::start("cancel").await?;
    let plan = PlanBuilder::new("cancelled").step(StepBuilder::command("slow"));
    t.script.block("process.run");
    let end = t
        .run(|| async {
            let id = t.start_rollout(&plan).await?;
            t.script.wait_for_calls("process.run", 1).await?;
            t.client()
                .get_workflow_handle::<RolloutWorkflow>(id.clone())
                .cancel(
                    WorkflowCancelOptions::builder()
                        .reason("stop".to_owned())
                        .build(),
                )
                .await?;
            ended(t.client(), &id).await
        })
        .await?;
    assert_eq!(end.state, RolloutState::Cancelled, "{end:?}");
    lock_given_back(t.client(), &plan).await?;
    t.shutdown().await
}

const DRILL: &str = "drill: inproc-db\nservice: inproc\nenvironment: dev\nmode: failover\ndatabase:\n  primary: { url: { env: A_URL }, data_dir: /srv/pg-a, application_name: pg_a }\n  standby: { url: { env: B_URL }, data_dir: /srv/pg-b, application_name: pg_b }\ntraffic:\n  endpoint_file: /srv/app/database_url\nchecks:\n  - { url: \"http://127.0.0.1:9/health\" }\nobjectives: { rto: 30s, rpo: 0 }\nfailback: { rebuild: true, switch_back: false }\n";

async fn drill_status(
    client: &Client,
    id: &str,
) -> anyhow::Result<cutover_workflows::drill::DrillStatus> {
    let handle =
        client.get_workflow_handle::<cutover_workflows::drill::DrillWorkflow>(id.to_owned());
    tokio::time::timeout(
        LIMIT,
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("{id} did not end within {LIMIT:?}"))?
    .ok();
    let s = cutover_tests::drill::status(client, id)
        .await
        .ok_or_else(|| anyhow::anyhow!("no drill status for {id}"))?;
    cutover_tests::replays(client, id, &history_name(id)).await?;
    Ok(s)
}

fn history_name(id: &str) -> String {
    format!("inproc-{}", id.replace('/', "-"))
}

/// After compensation: the promoted standby was fenced, then the original primary restarted
/// (and, when the app had been switched, pointed back at it), and the evidence recorded.
fn assert_restored(calls: &[cutover_tests::inproc::Call], app_was_switched: bool) {
    let after_fault: Vec<_> = calls
        .iter()
        .skip_while(|c| c.activity != "drill.fault")
        .collect();
    let fence = after_fault
        .iter()
        .position(|c| c.activity == "drill.fence" && c.detail == "/srv/pg-b");
    let restart = after_fault
        .iter()
        .position(|c| c.activity == "drill.restart" && c.detail == "/srv/pg-a");
    assert!(
        fence.is_some() && restart.is_some() && fence < restart,
        "expected the standby fenced, then the primary restarted: {after_fault:?}"
    );
    if app_was_switched {
        let switches = after_fault
            .iter()
            .filter(|c| c.activity == "drill.switch")
            .count();
        assert_eq!(switches, 2, "switched, then pointed back: {after_fault:?}");
    }
    assert!(
        calls.iter().any(|c| c.activity == "drill.record"),
        "the evidence must be recorded: {calls:?}"
    );
}

#[tokio::test]
async fn a_drill_cancelled_after_its_fault_restores_the_primary_and_records_evidence()
-> anyhow::Result<()> {
    let t = InProcess::start("drill-cancel").await?;
    t.script.block("drill.promote");
    let end = t
        .run(|| async {
            let id = t.start_drill(DRILL).await?;
            t.script.wait_for_calls("drill.promote", 1).await?;
            t.client()
                .get_workflow_handle::<cutover_workflows::drill::DrillWorkflow>(id.clone())
                .cancel(
                    WorkflowCancelOptions::builder()
                        .reason("stop the drill".to_owned())
                        .build(),
                )
                .await?;
            t.script
                .wait_until(LIMIT, "the drill to record its evidence", |calls| {
                    calls.iter().any(|c| c.activity == "drill.record")
                })
                .await?;
            drill_status(t.client(), &id).await
        })
        .await?;
    assert_restored(&t.script.calls(), false);
    assert_eq!(end.state, "failed", "{end:?}");
    assert!(
        end.restoration.is_some(),
        "the status must say what was restored: {end:?}"
    );
    let service = PlanBuilder::new("inproc").environment("dev");
    lock_given_back(t.client(), &service).await?;
    t.shutdown().await
}

#[tokio::test]
async fn a_drill_whose_verify_fails_restores_like_any_other_failure() -> anyhow::Result<()> {
    let t = InProcess::start("drill-verify").await?;
    t.script.fail("drill.verify", "CheckFailed", false);
    let end = t
        .run(|| async {
            let plan = DRILL.replace("drill: inproc-db", "drill: inproc-verify");
            drill_status(t.client(), &t.start_drill(&plan).await?).await
        })
        .await?;
    assert_eq!(end.state, "failed", "{end:?}");
    assert!(
        end.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("verify:")),
        "{end:?}"
    );
    assert_restored(&t.script.calls(), true);
    let service = PlanBuilder::new("inproc").environment("dev");
    lock_given_back(t.client(), &service).await?;
    t.shutdown().await
}

/// The traffic weights the fake `traffic.shift` was asked for, in order.
fn shifted_weights(t: &InProcess) -> Vec<String> {
    t.script
        .calls()
        .into_iter()
        .filter(|c| c.activity == "traffic.shift")
        .map(|c| c.detail)
        .collect()
}

fn canary(service: &str) -> PlanBuilder {
    PlanBuilder::new(service).step(
        StepBuilder::deploy("canary")
            .set("strategy", "canary")
            .set("rollback_window", "0s")
            .set("retry", "{ maximum_attempts: 3, initial_interval: 100ms }")
            .set(
                "canary",
                "[{ weight: 10, bake: 100ms }, { weight: 50, bake: 100ms }, { weight: 100 }]",
            ),
    )
}

#[tokio::test]
async fn a_canary_attempt_that_fails_at_50_percent_resumes_at_50_not_10() -> anyhow::Result<()> {
    let t = InProcess::start("canary-resume").await?;
    let plan = canary("canary-resume");
    // The move from 50% to 100% fails once, transiently: the step's second attempt must
    // start from the 50% reached, not from 10%.
    t.script.on_detail(
        "traffic.shift",
        "2@100",
        cutover_tests::inproc::Behaviour::Fail {
            kind: "NginxFailed",
            retryable: true,
        },
        Some(1),
    );
    let end = t
        .run(|| async { ended(t.client(), &t.start_rollout(&plan).await?).await })
        .await?;
    assert_eq!(end.state, RolloutState::Succeeded, "{end:?}");
    assert_eq!(end.steps[0].attempts, 2, "{end:?}");
    // Attempt 1: 10, 50, 100 (fails). Attempt 2: on from the 50% reached, straight to 100.
    assert_eq!(
        shifted_weights(&t),
        ["2@10", "2@50", "2@100", "2@100"],
        "{:?}",
        t.script.calls()
    );
    assert_eq!(t.script.count("deploy.withdraw"), 0);
    lock_given_back(t.client(), &plan).await?;
    t.shutdown().await
}

/// The attempt is lost during the shift to 50% (which may have been applied): the next attempt
/// shifts to 50% again, never back to the 10% last completed.
#[tokio::test]
async fn an_attempt_lost_during_the_shift_to_50_never_goes_back_to_10() -> anyhow::Result<()> {
    let t = InProcess::start("canary-lost-shift").await?;
    let plan = canary("canary-lost-shift");
    t.script.on_detail(
        "traffic.shift",
        "2@50",
        cutover_tests::inproc::Behaviour::Fail {
            kind: "NginxFailed",
            retryable: true,
        },
        Some(1),
    );
    let end = t
        .run(|| async { ended(t.client(), &t.start_rollout(&plan).await?).await })
        .await?;
    assert_eq!(end.state, RolloutState::Succeeded, "{end:?}");
    assert_eq!(
        shifted_weights(&t),
        ["2@10", "2@50", "2@50", "2@100"],
        "{:?}",
        t.script.calls()
    );
    lock_given_back(t.client(), &plan).await?;
    t.shutdown().await
}

#[tokio::test]
async fn a_deploy_that_fails_for_good_is_withdrawn_and_the_reason_says_what_serves()
-> anyhow::Result<()> {
    let t = InProcess::start("deploy-withdraw").await?;
    // on_failure: rollback — the saga must not roll back the release that was serving
    // before, since the failed deploy never took all traffic and has been withdrawn.
    let plan = canary("deploy-withdraw").on_failure("rollback");
    t.script.on_detail(
        "traffic.shift",
        "2@50",
        cutover_tests::inproc::Behaviour::Fail {
            kind: "NginxFailed",
            retryable: false,
        },
        None,
    );
    let end = t
        .run(|| async { ended(t.client(), &t.start_rollout(&plan).await?).await })
        .await?;
    assert_eq!(end.state, RolloutState::Failed, "{end:?}");
    let reason = end.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("step `canary` failed after 1 attempt: NginxFailed")
            && reason.contains("undone: stopped new instance on port 18100")
            && reason.contains("previous serves all traffic on ports [18101]"),
        "{reason}"
    );
    assert_eq!(t.script.count("deploy.withdraw"), 1);
    assert_eq!(
        t.script.count("deploy.rollback"),
        0,
        "{:?}",
        t.script.calls()
    );
    lock_given_back(t.client(), &plan).await?;
    t.shutdown().await
}

#[tokio::test]
async fn notifications_are_sent_in_order_and_a_failing_notifier_never_holds_the_rollout()
-> anyhow::Result<()> {
    use cutover_tests::inproc::Behaviour;
    use cutover_workflows::notify::NoticeState;
    let t = InProcess::start("notify").await?;
    let plan = PlanBuilder::new("notified")
        .notify("{ name: team, slack: { env: TEAM_HOOK }, on: [started, succeeded] }")
        .notify("{ name: down, slack: { env: DOWN_HOOK }, on: [started, succeeded] }")
        .step(StepBuilder::command("one"))
        .step(StepBuilder::command("two"));
    for event in ["started", "succeeded"] {
        let fail = Behaviour::Fail {
            kind: "NotifyFailed",
            retryable: true,
        };
        t.script
            .on_detail("notify.send", &format!("down:{event}"), fail, None);
    }
    let end = t
        .run(|| async {
            let id = t.start_rollout(&plan).await?;
            ended(t.client(), &id).await
        })
        .await?;
    assert_eq!(end.state, RolloutState::Succeeded, "{end:?}");
    let sent: Vec<String> = t
        .script
        .calls()
        .into_iter()
        .filter(|c| c.activity == "notify.send" && c.detail.starts_with("team:"))
        .map(|c| c.detail)
        .collect();
    assert_eq!(sent, ["team:started", "team:succeeded"]);
    // Both steps ran once: the notifier that fails every send held nothing back.
    assert_eq!(t.script.count("process.run"), 2);
    let states: Vec<(&str, NoticeState)> = end
        .notifications
        .iter()
        .map(|n| (n.notifier.as_str(), n.state))
        .collect();
    assert!(
        states.contains(&("team", NoticeState::Sent))
            && states
                .iter()
                .filter(|(name, _)| *name == "down")
                .all(|(_, state)| *state == NoticeState::Failed),
        "{states:?}"
    );
    t.shutdown().await
}
