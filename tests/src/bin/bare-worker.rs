//! A bare Temporal SDK worker: the peer `cutover-worker` is measured against (`cargo bench
//! --bench peers`). `BareWorkflow(steps)` runs `steps` no-op activities in a row, with the
//! SDK's defaults and nothing else: no lock, no ledger, no status, no process per step.
//!
//! ```text
//! bare-worker ADDRESS TASK_QUEUE
//! ```

use cutover_tests::peers::{BareWorkflow, Noop};
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    let [_, address, queue] = argv.as_slice() else {
        anyhow::bail!("usage: bare-worker ADDRESS TASK_QUEUE");
    };
    let connected = cutover_client::connect(&cutover_client::ConnectOptions {
        address: Some(address.clone()),
        identity: Some("bare-worker".to_owned()),
        ..Default::default()
    })
    .await?;
    let runtime = Runtime::from_current_tokio(Default::default())?;
    // The same slot counts `cutover-worker` gets in the bench (100 each), so the two differ
    // only in what they run.
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(100))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(100))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(10))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .build();
    let options = WorkerOptions::new(queue.clone())
        .register_workflow::<BareWorkflow>()?
        .register_activities(Noop)
        .tuner(tuner)
        .build();
    let mut worker = Worker::new(&runtime, connected.client, options)?;
    worker.run().await?;
    Ok(())
}
