//! What `cutover serve` does besides answering requests: on startup, it resolves the
//! deliveries a previous receiver claimed but never settled (it stopped between the claim and
//! recording the start); then, at startup and once a day, it deletes ledger rows older than
//! `--retention`.
//!
//! A stuck claim is resolved by asking Temporal whether a run of the rollout it names carries
//! the delivery in its memo: if so, the row becomes `started` with that run; if not, the
//! claim is released (`abandoned`), so the provider's redelivery (or a person's) starts it.

use std::sync::Arc;
use std::time::Duration;

use cutover_ledger::DeliveryRow;

use super::App;

/// A claim younger than this may still be starting on another receiver.
pub(crate) const STUCK_AFTER: Duration = Duration::from_secs(60);

/// How often the ledger is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Resolves stuck claims once, then prunes every day until the task is dropped.
pub(super) async fn run(app: Arc<App>) {
    resolve_stuck(&app).await;
    loop {
        prune(&app).await;
        tokio::time::sleep(PRUNE_EVERY).await;
    }
}

/// Settles every claim older than [`STUCK_AFTER`] still `starting`. Returns how many.
pub(super) async fn resolve_stuck(app: &App) -> usize {
    let before = cutover_ledger::now_ms() - STUCK_AFTER.as_millis() as i64;
    let stuck = match app.ledger.stuck_deliveries(before).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read stuck deliveries; will not resolve them now");
            return 0;
        }
    };
    if stuck.is_empty() {
        return 0;
    }
    let Some(client) = app.temporal().await else {
        tracing::warn!(
            count = stuck.len(),
            "deliveries are stuck `starting` but Temporal is unreachable; they stay claimed until the next start"
        );
        return 0;
    };
    let mut resolved = 0;
    for row in stuck {
        if resolve(app, &client, &row).await {
            resolved += 1;
        }
    }
    resolved
}

async fn resolve(app: &App, client: &temporalio_client::Client, row: &DeliveryRow) -> bool {
    let tag = format!(
        "{}:{}",
        row.provider,
        row.delivery_id.as_deref().unwrap_or_default()
    );
    let found = match &row.workflow_id {
        Some(id) => cutover_client::rollout::run_started_by(client, id, &tag).await,
        None => Ok(None),
    };
    let settled = match found {
        Ok(Some(run_id)) => {
            tracing::info!(delivery = %tag, run_id, "a stuck delivery had started its rollout");
            app.ledger
                .settle_delivery(
                    &row.id,
                    202,
                    "started",
                    "started (found after the receiver that claimed it stopped)",
                    row.workflow_id.as_deref(),
                    Some(&run_id),
                    true,
                )
                .await
        }
        Ok(None) => {
            tracing::info!(delivery = %tag, "a stuck delivery never started its rollout; claim released");
            app.ledger
                .settle_delivery(
                    &row.id,
                    503,
                    "abandoned",
                    "the receiver stopped before starting the rollout; a redelivery will start it",
                    None,
                    None,
                    false,
                )
                .await
        }
        Err(e) => {
            tracing::warn!(delivery = %tag, error = %e, "cannot tell whether a stuck delivery started");
            return false;
        }
    };
    settled
        .inspect_err(|e| tracing::warn!(error = %e, "cannot settle a stuck delivery"))
        .is_ok()
}

/// Deletes deliveries and drill rows older than the retention.
async fn prune(app: &App) {
    let before = cutover_ledger::now_ms() - app.retention.as_millis() as i64;
    match app.ledger.prune(before).await {
        Ok(p) => tracing::info!(
            deliveries = p.deliveries,
            drills = p.drills,
            retention = %humantime::format_duration(app.retention),
            "ledger pruned"
        ),
        Err(e) => tracing::warn!(error = %e, "pruning the ledger failed"),
    }
}
