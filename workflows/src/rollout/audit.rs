//! The rollout's human actions, written to the ledger's audit trail as they happen.
//!
//! Signal and update handlers only record an action in the workflow's state (they stay
//! synchronous, so they take effect exactly where they always did). This pump, running beside
//! the steps, writes whatever is new with one `ledger.record_audit` activity per batch, and
//! drains the rest when the rollout ends. A rollout nobody touches issues no command here.
//!
//! Like the release record, the trail is bookkeeping: a ledger that stays down for all the
//! activity's attempts does not stop the rollout; the failure is in the history.

use std::time::Duration;

use temporalio_common::RetryPolicy as TemporalRetryPolicy;
use temporalio_sdk::{ActivityOptions, WorkflowContext};
use temporalio_workflow::WorkflowCancellationToken;

use super::RolloutWorkflow;
use crate::contracts::{AuditEntry, AuditInput, RolloutActivities};

/// The patch that added audit writes to `RolloutWorkflow`.
pub(super) const PATCH: &str = "audit-trail-v1";

/// How far the pump got.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    /// Actions `0..written` are written (or predate the trail).
    pub(super) written: usize,
    /// Set when the steps are over: drain and stop.
    pub(super) closing: bool,
    /// Whether this run writes the trail (the patch), once known.
    enabled: Option<bool>,
}

/// Writes new actions until the rollout closes the outbox, then what is left.
pub(super) async fn pump(ctx: WorkflowContext<RolloutWorkflow>) {
    loop {
        let waited = ctx
            .wait_condition(|s| s.audit.written < s.status.actions.len() || s.audit.closing)
            .await;
        let (from, to, closing) =
            ctx.state(|s| (s.audit.written, s.status.actions.len(), s.audit.closing));
        if from < to {
            write(&ctx, from, to).await;
        }
        // Cancelled: what was pending is written; nothing more will be waited for.
        if waited.is_err() || (closing && from == to) {
            return;
        }
    }
}

async fn write(ctx: &WorkflowContext<RolloutWorkflow>, from: usize, to: usize) {
    let enabled = match ctx.state(|s| s.audit.enabled) {
        Some(known) => known,
        None => {
            let known = ctx.patched(PATCH);
            ctx.state_mut(|s| s.audit.enabled = Some(known));
            known
        }
    };
    ctx.state_mut(|s| s.audit.written = to);
    if !enabled {
        return;
    }
    let input = ctx.state(|s| AuditInput {
        workflow_id: s.status.workflow_id.clone(),
        service: s.plan.service.clone(),
        environment: s.plan.environment.clone(),
        entries: s.status.actions[from..to]
            .iter()
            .enumerate()
            .map(|(i, a)| AuditEntry {
                seq: (from + i) as u32,
                action: a.action.clone(),
                person: a.by.clone(),
                verified: a.verified.clone().unwrap_or_else(|| "claimed".to_owned()),
                outcome: if a.refused.is_some() {
                    "refused"
                } else {
                    "accepted"
                }
                .to_owned(),
                step: a.step.clone(),
                reason: a.refused.clone().or_else(|| a.reason.clone()),
                at: a.at.map(|t| t.timestamp_millis()),
            })
            .collect(),
    });
    let mut opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            TemporalRetryPolicy::builder()
                .maximum_attempts(10)
                .initial_interval(Duration::from_secs(1))
                .build(),
        )
        .summary(format!("audit: {} action(s)", to - from))
        .build();
    // Runs to the end even when the rollout is being cancelled.
    opts.cancellation_token = Some(WorkflowCancellationToken::new());
    // Deliberately ignored (see the module docs); the failure is in the history.
    let _ = ctx
        .execute_activity(RolloutActivities::record_audit, input, opts)
        .await;
}
