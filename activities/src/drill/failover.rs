//! Changing database roles, behind one trait (ARCHITECTURE.md, rule 3), so the drill
//! activities do not know whether `pg_ctl` on this machine or a Kubernetes Secret does it.
//! Every operation is idempotent: "already stopped", "already promoted", "already streaming
//! from the source" are success.

use cutover_workflows::drill::contracts::{At, NodeInput, RebuildInput, SwitchInput};

use crate::StepFailure;

/// What a failover target offers.
pub(crate) trait Failover {
    /// Stops the primary (at once for a failover, after the standby caught up for a
    /// switchover).
    async fn fault(&self, input: &NodeInput) -> Result<At, StepFailure>;
    /// Starts a stopped server as it was.
    async fn restart(&self, input: &NodeInput) -> Result<At, StepFailure>;
    /// Stops a server that must not take writes (a promoted standby during compensation).
    async fn fence(&self, input: &NodeInput) -> Result<At, StepFailure>;
    /// Makes a server a streaming standby of `input.source`.
    async fn rebuild(&self, input: &RebuildInput) -> Result<At, StepFailure>;
    /// Promotes a standby and waits for its first write.
    async fn promote(&self, input: &NodeInput) -> Result<At, StepFailure>;
    /// Points the app at a primary.
    async fn switch(&self, input: &SwitchInput) -> Result<At, StepFailure>;
}

/// The host implementation: `pg_ctl`, `pg_rewind`/`pg_basebackup` on the worker's machine and
/// the app's endpoint file.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HostFailover;

impl Failover for HostFailover {
    async fn fault(&self, input: &NodeInput) -> Result<At, StepFailure> {
        super::fault(input).await
    }

    async fn restart(&self, input: &NodeInput) -> Result<At, StepFailure> {
        super::restart(input).await
    }

    async fn fence(&self, input: &NodeInput) -> Result<At, StepFailure> {
        super::fence(input).await
    }

    async fn rebuild(&self, input: &RebuildInput) -> Result<At, StepFailure> {
        super::rebuild(input).await
    }

    async fn promote(&self, input: &NodeInput) -> Result<At, StepFailure> {
        super::promote(input).await
    }

    async fn switch(&self, input: &SwitchInput) -> Result<At, StepFailure> {
        super::switch(input).await
    }
}
