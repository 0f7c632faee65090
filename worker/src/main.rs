//! `cutover-worker`: load settings → connect → register workflows and activities → run until
//! SIGTERM/SIGINT, then drain.

mod config;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cutover_client::{ConnectOptions, connect, ensure_search_attributes};
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tracing::{error, info, warn};

use config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    cutover_client::telemetry::init(config.log_format.into());
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("cutover-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let connected = connect(&ConnectOptions {
        address: config.address.clone(),
        namespace: config.namespace.clone(),
        profile: config.profile.clone(),
        identity: config.identity.clone(),
    })
    .await?;
    // Rollouts carry Cutover's search attributes; register them where they are missing.
    match ensure_search_attributes(&connected.client, &connected.namespace).await {
        Ok(added) if !added.is_empty() => info!(?added, "registered Cutover's search attributes"),
        Ok(_) => {}
        Err(status) => warn!(
            "could not register Cutover's search attributes ({}); starting rollouts needs them: temporal operator search-attribute create --name CutoverService --type Keyword --name CutoverEnvironment --type Keyword --name CutoverVersion --type Keyword",
            status.message()
        ),
    }
    let runtime =
        Runtime::from_current_tokio(Default::default()).context("starting the Temporal runtime")?;
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(
            config.max_concurrent_workflow_tasks as usize,
        ))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(
            config.max_concurrent_activities as usize,
        ))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(10))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .build();
    let options = cutover_activities::register_all(
        WorkerOptions::new(config.task_queue.clone()),
        config.ledger.as_deref(),
        connected.client.clone(),
    )
    .context("registering Cutover's workflows and activities")?
    .tuner(tuner)
    .graceful_shutdown_period(config.shutdown_grace)
    .sticky_queue_schedule_to_start_timeout(config.sticky_timeout)
    .build();
    let mut worker =
        Worker::new(&runtime, connected.client, options).context("creating the worker")?;
    let shutdown = worker.shutdown_handle();
    tokio::spawn(async move {
        cutover_client::shutdown::signal().await;
        info!("shutting down: no new tasks; running activities get the grace period to finish");
        shutdown();
    });
    info!(
        address = %connected.address,
        namespace = %connected.namespace,
        task_queue = %config.task_queue,
        "worker started"
    );
    worker.run().await.context("running the worker")?;
    info!("worker stopped");
    Ok(())
}
