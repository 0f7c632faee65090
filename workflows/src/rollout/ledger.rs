//! The rollout's release record in the ledger: written when it starts and when it ends, by
//! the `ledger.record_release` activity (an upsert, so a retried write changes nothing).
//!
//! The record is bookkeeping: if the ledger cannot be written, the rollout still runs and the
//! failure stays in the worker's log and the workflow's history, rather than stopping a release.
//! The write at the end runs even after a cancellation (it has its own cancellation token).

use std::time::Duration;

use temporalio_common::RetryPolicy as TemporalRetryPolicy;
use temporalio_sdk::{ActivityOptions, WorkflowContext};
use temporalio_workflow::WorkflowCancellationToken;

use super::RolloutWorkflow;
use crate::contracts::{ReleaseInput, RolloutActivities};

/// The patch that added the two ledger activities to `RolloutWorkflow`.
pub(super) const PATCH: &str = "release-ledger-v1";

/// Writes the release as it stands.
pub(super) async fn record(ctx: &WorkflowContext<RolloutWorkflow>) {
    let input = ctx.state(|s| {
        let ms = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_millis());
        ReleaseInput {
            workflow_id: s.status.workflow_id.clone(),
            service: s.plan.service.clone(),
            environment: s.plan.environment.clone(),
            version: s.plan.version.clone(),
            trigger: s
                .plan
                .trigger
                .as_ref()
                .map_or("cli", |t| t.kind.as_str())
                .to_owned(),
            trigger_detail: s.plan.trigger.as_ref().and_then(|t| t.detail.clone()),
            outcome: s.status.state.as_str().to_owned(),
            reason: s.status.reason.clone(),
            started_at: ms(s.status.started_at),
            finished_at: ms(s.status.finished_at),
        }
    });
    let mut opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            TemporalRetryPolicy::builder()
                .maximum_attempts(5)
                .initial_interval(Duration::from_secs(1))
                .build(),
        )
        .summary(format!("release record: {}", input.outcome))
        .build();
    opts.cancellation_token = Some(WorkflowCancellationToken::new());
    // Deliberately ignored (see the module docs); the failure is in the history.
    let _ = ctx
        .execute_activity(RolloutActivities::record_release, input, opts)
        .await;
}
