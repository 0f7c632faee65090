//! Deploy targets behind one trait (ARCHITECTURE.md, rule 3). The plan's `target.driver`
//! picks the implementation; workflows never know which one acts: `host` (processes + nginx
//! on a machine) or `kubernetes` (objects on a cluster, through its API server).

use cutover_workflows::contracts::{
    PrepareOutput, ProvisionOutput, RetireOutput, RollbackOutput, ShiftOutput, WithdrawOutput,
};
use cutover_workflows::plan::{DeploySpec, ProvisionSpec};

use crate::error::StepFailure;

/// What a deploy target offers. Every operation is idempotent: it converges on the state
/// asked for and reports what it did.
pub(crate) trait DeployDriver {
    /// Creates what the service needs before its first deploy.
    async fn provision(
        &self,
        service: &str,
        version: &str,
        spec: &ProvisionSpec,
    ) -> Result<ProvisionOutput, StepFailure>;

    /// Starts `version` beside the serving version and waits until it is healthy.
    async fn prepare(
        &self,
        service: &str,
        version: &str,
        spec: &DeploySpec,
    ) -> Result<PrepareOutput, StepFailure>;

    /// Sends `weight` percent of traffic to the prepared `version`.
    async fn shift(
        &self,
        service: &str,
        root: &str,
        version: &str,
        weight: u8,
    ) -> Result<ShiftOutput, StepFailure>;

    /// Stops every instance not of version `keep`.
    async fn retire(
        &self,
        service: &str,
        root: &str,
        keep: &str,
    ) -> Result<RetireOutput, StepFailure>;

    /// Replaces the serving instances one at a time.
    async fn rolling(
        &self,
        service: &str,
        version: &str,
        spec: &DeploySpec,
    ) -> Result<PrepareOutput, StepFailure>;

    /// Traffic back to the previous release; the current one stopped.
    async fn rollback(
        &self,
        request: &str,
        service: &str,
        root: &str,
    ) -> Result<RollbackOutput, StepFailure>;

    /// Undoes an unfinished deploy of `version`: its instances stopped, the serving release
    /// whole and alone in the upstream, each member checked. Reports what serves now.
    async fn withdraw(
        &self,
        service: &str,
        root: &str,
        version: &str,
    ) -> Result<WithdrawOutput, StepFailure>;
}

/// Refuses drivers this worker does not have.
pub(crate) fn check(driver: cutover_workflows::plan::Driver) -> Result<(), StepFailure> {
    match driver {
        cutover_workflows::plan::Driver::Host | cutover_workflows::plan::Driver::Kubernetes => {
            Ok(())
        }
        other => Err(StepFailure::InvalidInput(format!(
            "this worker has no `{}` driver; it supports: host, kubernetes",
            other.as_str()
        ))),
    }
}
