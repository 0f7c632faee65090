//! What the lock activities take and return.

use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

use super::LockHolder;

/// Input of `lock.acquire` and `lock.release`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockRequest {
    /// The service.
    pub service: String,
    /// The environment.
    pub environment: String,
    /// The workflow taking or giving back the lock.
    pub holder: LockHolder,
}

/// The lock activities.
pub struct LockActivities;

#[activity_definitions]
impl LockActivities {
    /// Starts the lock workflow for the holder; held by the same holder already is success,
    /// held by a running other workflow fails `ServiceLocked` (not retryable), held by one that
    /// has ended is taken over.
    #[activity(name = "lock.acquire")]
    pub fn acquire(input: LockRequest) -> Result<String, ActivityError> {
        unimplemented!()
    }

    /// Signals the lock workflow to end, if the holder holds it. Gone already is success.
    #[activity(name = "lock.release")]
    pub fn release(input: LockRequest) -> Result<(), ActivityError> {
        unimplemented!()
    }
}

pub use lock_activities::{Acquire, Release};
