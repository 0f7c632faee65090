//! The bare peer the benches measure Cutover against: `BareWorkflow(steps)` runs `steps` no-op
//! activities in a row with the SDK's defaults and nothing else — no lock, no ledger, no
//! status, no process per step. Run by `bare-worker` (its own process, for CPU and RSS) and
//! in-process by the orchestration bench; `tests/peers/bare_worker.py` is the same workflow
//! for Temporal's Python SDK.

use std::time::Duration;

use temporalio_common::ActivityError;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::ActivityContext;
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

/// The no-op activity (`noop`).
pub struct Noop;

#[activities]
impl Noop {
    /// Does nothing.
    #[activity]
    pub async fn noop(_ctx: ActivityContext) -> Result<(), ActivityError> {
        Ok(())
    }
}

/// `steps` no-op activities in a row.
#[workflow]
#[derive(Default)]
pub struct BareWorkflow;

#[workflow_methods]
impl BareWorkflow {
    /// Runs them.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, steps: u32) -> WorkflowResult<()> {
        for _ in 0..steps {
            ctx.execute_activity(
                Noop::noop,
                (),
                ActivityOptions::start_to_close_timeout(Duration::from_secs(30)),
            )
            .await?;
        }
        Ok(())
    }
}
