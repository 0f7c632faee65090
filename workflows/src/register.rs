//! One list of Cutover's workflows, registered the same way on a worker, on the in-process
//! test workers and on the history replayer. A workflow added here is replay-tested and run
//! by every worker without a second list to forget.

use temporalio_common::WorkflowDefinition;
use temporalio_sdk::WorkerOptionsBuilder;
use temporalio_sdk::WorkflowRegistrationError;
use temporalio_sdk::worker_options_builder;
use temporalio_sdk::workflow_replayer::WorkflowReplayerOptionsBuilder;
use temporalio_sdk::workflow_replayer::workflow_replayer_options_builder;
use temporalio_workflow::workflows::WorkflowImplementation;

use crate::RolloutWorkflow;
use crate::drill::DrillWorkflow;
use crate::lock::LockWorkflow;
use crate::queue::QueueWorkflow;
use crate::release::ReleaseWorkflow;

/// Something workflows can be registered on: a worker's options or the replayer's.
pub trait WorkflowRegistry: Sized {
    /// Registers `W`.
    ///
    /// # Errors
    /// `W` is already registered.
    fn workflow<W>(self) -> Result<Self, WorkflowRegistrationError>
    where
        W: WorkflowImplementation,
        <W::Run as WorkflowDefinition>::Input: Send;
}

impl<S: worker_options_builder::State> WorkflowRegistry for WorkerOptionsBuilder<S> {
    fn workflow<W>(self) -> Result<Self, WorkflowRegistrationError>
    where
        W: WorkflowImplementation,
        <W::Run as WorkflowDefinition>::Input: Send,
    {
        self.register_workflow::<W>()
    }
}

impl<S: workflow_replayer_options_builder::State> WorkflowRegistry
    for WorkflowReplayerOptionsBuilder<S>
{
    fn workflow<W>(self) -> Result<Self, WorkflowRegistrationError>
    where
        W: WorkflowImplementation,
        <W::Run as WorkflowDefinition>::Input: Send,
    {
        self.register_workflow::<W>()
    }
}

/// Registers every Cutover workflow: `RolloutWorkflow`, `DrillWorkflow`, `ReleaseWorkflow`,
/// `LockWorkflow`, `QueueWorkflow`.
///
/// # Errors
/// One of them was already registered.
pub fn register_workflows<R: WorkflowRegistry>(
    registry: R,
) -> Result<R, WorkflowRegistrationError> {
    registry
        .workflow::<RolloutWorkflow>()?
        .workflow::<DrillWorkflow>()?
        .workflow::<ReleaseWorkflow>()?
        .workflow::<LockWorkflow>()?
        .workflow::<QueueWorkflow>()
}
