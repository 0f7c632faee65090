//! The service lock's activities (`lock.*`): they start and signal the lock workflow through
//! `cutover_client::lock`.

use std::sync::Arc;

use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::{StepFailure, acting};

/// The service lock's activities (`lock.*`); they start and signal the lock workflow.
pub struct LockActivityImpls {
    client: temporalio_client::Client,
}

impl LockActivityImpls {
    /// With the worker's own Temporal client.
    pub fn new(client: temporalio_client::Client) -> Self {
        Self { client }
    }
}

#[activities]
impl LockActivityImpls {
    /// `lock.acquire`: held by the same holder already is success.
    #[activity(definition = cutover_workflows::lock::contracts::Acquire)]
    pub async fn acquire(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: cutover_workflows::lock::contracts::LockRequest,
    ) -> Result<String, ActivityError> {
        let queue = ctx.info().task_queue.clone();
        let work = async {
            cutover_client::lock::acquire(&self.client, &queue, &input)
                .await
                .map_err(lock_failure)
        };
        acting(&ctx, work).await
    }

    /// `lock.release`: gone already is success.
    #[activity(definition = cutover_workflows::lock::contracts::Release)]
    pub async fn release(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: cutover_workflows::lock::contracts::LockRequest,
    ) -> Result<(), ActivityError> {
        let work = async {
            cutover_client::lock::release(&self.client, &input)
                .await
                .map_err(lock_failure)
        };
        acting(&ctx, work).await
    }
}

/// Held is final (`ServiceLocked`, not retried); a Temporal that cannot be asked is retried.
fn lock_failure(e: cutover_client::lock::LockError) -> StepFailure {
    match e {
        cutover_client::lock::LockError::Held(why) => StepFailure::Locked(why),
        e @ cutover_client::lock::LockError::Unavailable(_) => {
            StepFailure::CheckFailed(e.to_string())
        }
    }
}
