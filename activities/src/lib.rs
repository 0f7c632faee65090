//! Every side effect Cutover performs, as Temporal activities.
//!
//! Each activity implements a contract declared in `cutover_workflows::contracts`, is safe to
//! run more than once, and classifies its failures as retryable or not
//! ([`StepFailure`]). Long activities heartbeat so that a dead worker is noticed within the
//! heartbeat timeout rather than the step timeout.

mod agent;
mod analysis;
mod artifact;
mod deploy;
mod drill;
mod drivers;
mod error;
mod heartbeat;
mod host;
mod kube;
mod ledger;
mod lock;
pub mod metrics;
mod notify;
mod postgres;
mod process;
mod queue;
mod rollout;
mod secrets;
mod verify;

use heartbeat::beating;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub use agent::AgentActivityImpls;
pub use deploy::TargetActivityImpls;
pub use drill::DrillActivityImpls;
pub use error::StepFailure;
pub use host::{Teardown, teardown};
pub use kube::{DryRun, DryRunObject, dry_run as kube_dry_run};
pub use lock::LockActivityImpls;
pub use notify::NotifyActivityImpls;
pub use queue::QueueActivityImpls;
pub use rollout::RolloutActivityImpls;

/// Registers every Cutover workflow and every real activity on a worker's options: what
/// `cutover-worker` runs. `ledger` is the ledger URL (see [`RolloutActivityImpls::with_ledger`]);
/// `client` is what the lock activities talk to Temporal with.
///
/// # Errors
/// A workflow was already registered on `options`.
pub fn register_all<S: temporalio_sdk::worker_options_builder::State>(
    options: temporalio_sdk::WorkerOptionsBuilder<S>,
    ledger: Option<&str>,
    client: temporalio_client::Client,
) -> Result<temporalio_sdk::WorkerOptionsBuilder<S>, temporalio_sdk::WorkflowRegistrationError> {
    Ok(cutover_workflows::register_workflows(options)?
        .register_activities(RolloutActivityImpls::with_ledger(ledger))
        .register_activities(TargetActivityImpls::default())
        .register_activities(DrillActivityImpls::with_ledger(ledger))
        .register_activities(LockActivityImpls::new(client.clone()))
        .register_activities(NotifyActivityImpls::default())
        .register_activities(QueueActivityImpls::new(client)))
}

/// Registers what a host agent (`cutover-worker --host NAME`) runs on its host's queue: the
/// activities that act on the machine (processes, nginx, data directories, and the commands,
/// builds, checks and migrations marked `on: host`; a drill's stop, promote, fence, rebuild and
/// traffic switch of the nodes placed there), and no workflow. Workflows route only
/// those activities to a host's queue, so the agent never receives anything else; it needs
/// no ledger and no Temporal client of its own.
pub fn register_host<S: temporalio_sdk::worker_options_builder::State>(
    options: temporalio_sdk::WorkerOptionsBuilder<S>,
) -> temporalio_sdk::WorkerOptionsBuilder<S> {
    options
        .register_activities(RolloutActivityImpls::with_ledger(None))
        .register_activities(TargetActivityImpls::default())
        .register_activities(DrillActivityImpls::with_ledger(None))
}

/// Runs a driver operation: refuses drivers this worker lacks, heartbeats meanwhile, and
/// classifies the failure.
async fn on_target<T>(
    ctx: &ActivityContext,
    driver: cutover_workflows::plan::Driver,
    work: impl std::future::Future<Output = Result<T, StepFailure>>,
) -> Result<T, ActivityError> {
    let run = async {
        drivers::check(driver)?;
        work.await
    };
    acting(ctx, run).await
}

/// Runs an activity's work: heartbeats meanwhile, and turns its failure into the typed
/// activity error (kind, message, retryable).
async fn acting<T>(
    ctx: &ActivityContext,
    work: impl std::future::Future<Output = Result<T, StepFailure>>,
) -> Result<T, ActivityError> {
    beating(ctx, work)
        .await
        .map_err(StepFailure::into_activity_error)
}
