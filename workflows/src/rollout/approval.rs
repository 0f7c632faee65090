//! `approval` steps: a durable wait for distinct people, with an optional timeout that
//! aborts or continues as the plan says. The `approve` update (in `mod.rs`) counts them.

use temporalio_sdk::{TimerResult, WorkflowContext};

use super::RolloutWorkflow;
use super::step::Interrupted;
use crate::contracts::ApprovalOutput;
use crate::plan::{ApprovalSpec, OnTimeout};
use crate::status::StepError;

/// Waits for the required distinct approvals; with a timeout, aborts or continues when it
/// passes, as the plan says. A `fresh` approval (a canary's gate) counts only approvals given
/// after it began: each gate of a script needs its own.
pub(super) async fn approval(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    spec: &ApprovalSpec,
    fresh: bool,
) -> Result<ApprovalOutput, Interrupted> {
    let base = ctx.state_mut(|s| {
        s.awaiting_approval = Some(index);
        s.approval_base = if fresh {
            s.status.steps[index].approvals.len()
        } else {
            0
        };
        s.approval_base
    });
    let since = ctx
        .workflow_time()
        .map(chrono::DateTime::<chrono::Utc>::from)
        .unwrap_or_default();
    ctx.state_mut(|s| {
        let step = s.plan.steps[index].name.clone();
        let have = s.status.steps[index].approvals.len() - base;
        let reason = format!(
            "{have} of {} approval{}",
            spec.required,
            if spec.required == 1 { "" } else { "s" }
        );
        let command = format!(
            "cutover rollout approve {} --approver NAME",
            s.status.workflow_id
        );
        let at = Some(since);
        s.notice(
            crate::plan::notify::NotifyEvent::Approval,
            Some(step),
            Some(reason),
            Some(command),
            at,
        );
    });
    ctx.state(|s| {
        crate::observe::emit(
            ctx.is_replaying(),
            crate::observe::Event::ApprovalWaiting {
                workflow_id: &s.status.workflow_id,
                service: &s.plan.service,
                environment: &s.plan.environment,
                since,
            },
        )
    });
    let required = spec.required as usize;
    let enough = move |s: &RolloutWorkflow| {
        s.status.steps[index].approvals.len() - base >= required
            || s.aborted.is_some()
            || s.refusal.is_some()
    };
    let timed_out = match spec.timeout {
        None => ctx
            .wait_condition(enough)
            .await
            .map(|()| false)
            .map_err(|_| ()),
        Some(limit) => temporalio_sdk::workflows::select! {
            fired = ctx.timer(limit) => if fired == TimerResult::Cancelled { Err(()) } else { Ok(true) },
            done = ctx.wait_condition(enough) => done.map(|()| false).map_err(|_| ())
        },
    };
    ctx.state_mut(|s| {
        s.awaiting_approval = None;
        s.approval_base = 0;
    });
    ctx.state(|s| {
        crate::observe::emit(
            ctx.is_replaying(),
            crate::observe::Event::ApprovalDone {
                workflow_id: &s.status.workflow_id,
            },
        )
    });
    let timed_out = timed_out.map_err(|()| Interrupted::TimerCancelled)?;
    if ctx.state(|s| s.aborted.is_some()) {
        return Err(Interrupted::Aborted);
    }
    if let Some((by, why)) = ctx.state(|s| s.refusal.clone()) {
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        };
        return Err(Interrupted::Failed(StepError {
            kind: crate::contracts::error_kind::ErrorKind::ApprovalRefused,
            message: format!("refused by {by}{why}"),
            retryable: false,
        }));
    }
    let approvers: Vec<String> = ctx.state(|s| {
        s.status.steps[index].approvals[base..]
            .iter()
            .map(|a| a.approver.clone())
            .collect()
    });
    if timed_out && spec.on_timeout == OnTimeout::Abort {
        return Err(Interrupted::Failed(StepError {
            kind: crate::contracts::error_kind::ErrorKind::ApprovalTimedOut,
            message: format!(
                "{} of {required} approvals within {}",
                approvers.len(),
                humantime::format_duration(spec.timeout.unwrap_or_default())
            ),
            retryable: false,
        }));
    }
    Ok(ApprovalOutput {
        approvers,
        timed_out,
    })
}
