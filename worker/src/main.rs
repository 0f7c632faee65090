//! `cutover-worker`: load settings → connect → register workflows and activities → run until
//! SIGTERM/SIGINT, then drain.

mod config;
mod health;
mod metrics;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use cutover_client::{ConnectOptions, connect, ensure_search_attributes};
use cutover_workflows::hosts;
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tracing::{error, info, warn};

use config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let telemetry = cutover_client::telemetry::init(config.log_format.into(), "cutover-worker");
    let code = match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("cutover-worker: {e:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

async fn run(config: Config) -> anyhow::Result<()> {
    cutover_workflows::guard::set_verifying_keys(config.assertion_public_keys.clone());
    if let Some(addr) = config.health_listen {
        health::serve(addr).await?;
    }
    let runtime = Runtime::from_current_tokio(metrics::runtime_options(config.metrics_listen)?)
        .context("starting the Temporal runtime")?;
    match (&config.host, &config.also_host) {
        (Some(host), _) => {
            let connected = connect_as(&config, Some(agent_identity(&config, host))).await?;
            run_agent(&config, host, &runtime, connected).await
        }
        (None, Some(host)) => {
            // One process, two roles (`cutover dev up`): the orchestrator's connection keeps
            // the usual identity, the agent's names its host so `cutover agents` lists it.
            let orchestrator = connect_as(&config, config.identity.clone()).await?;
            let agent = connect_as(&config, Some(agent_identity(&config, host))).await?;
            let (a, b) = tokio::join!(
                run_orchestrator(&config, &runtime, orchestrator),
                run_agent(&config, host, &runtime, agent)
            );
            a.and(b)
        }
        (None, None) => {
            let connected = connect_as(&config, config.identity.clone()).await?;
            run_orchestrator(&config, &runtime, connected).await
        }
    }
}

async fn connect_as(
    config: &Config,
    identity: Option<String>,
) -> anyhow::Result<cutover_client::Connected> {
    Ok(connect(&ConnectOptions {
        address: config.address.clone(),
        namespace: config.namespace.clone(),
        profile: config.profile.clone(),
        identity,
    })
    .await?)
}

/// An agent's identity names its host (`cutover agents` reads it back), then `--identity` or
/// pid@machine.
fn agent_identity(config: &Config, host: &str) -> String {
    match &config.identity {
        Some(identity) => format!("{}{host}/{identity}", hosts::AGENT_IDENTITY_PREFIX),
        None => hosts::agent_identity(host, std::process::id(), &gethostname()),
    }
}

/// The usual worker: every workflow and every activity, on `--task-queue`.
async fn run_orchestrator(
    config: &Config,
    runtime: &Runtime,
    connected: cutover_client::Connected,
) -> anyhow::Result<()> {
    // Rollouts carry Cutover's search attributes; register them where they are missing.
    match ensure_search_attributes(&connected.client, &connected.namespace).await {
        Ok(added) if !added.is_empty() => info!(?added, "registered Cutover's search attributes"),
        Ok(_) => {}
        Err(status) => warn!(
            "could not register Cutover's search attributes ({}); starting rollouts needs them: temporal operator search-attribute create --name CutoverService --type Keyword --name CutoverEnvironment --type Keyword --name CutoverVersion --type Keyword",
            status.message()
        ),
    }
    let options = cutover_activities::register_all(
        WorkerOptions::new(config.task_queue.clone()),
        config.ledger.as_deref(),
        connected.client.clone(),
    )
    .context("registering Cutover's workflows and activities")?
    .tuner(tuner(config))
    .graceful_shutdown_period(config.shutdown_grace)
    .sticky_queue_schedule_to_start_timeout(config.sticky_timeout)
    .build();
    let mut worker =
        Worker::new(runtime, connected.client, options).context("creating the worker")?;
    on_signal_shut_down(vec![worker.shutdown_handle()]);
    health::set_ready(true);
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

/// A host agent: the host activities on `cutover-host-NAME`, plus a poller on the agents'
/// queue so that `cutover agents` finds it.
async fn run_agent(
    config: &Config,
    host: &str,
    runtime: &Runtime,
    connected: cutover_client::Connected,
) -> anyhow::Result<()> {
    let queue = hosts::task_queue(host);
    let options = cutover_activities::register_host(WorkerOptions::new(queue.clone()))
        .tuner(tuner(config))
        .graceful_shutdown_period(config.shutdown_grace)
        .build();
    let mut worker = Worker::new(runtime, connected.client.clone(), options)
        .context("creating the host worker")?;
    let beacon_options = WorkerOptions::new(hosts::AGENTS_QUEUE)
        .register_activities(cutover_activities::AgentActivityImpls::new(host))
        .build();
    let mut beacon = Worker::new(runtime, connected.client, beacon_options)
        .context("creating the agents' queue worker")?;
    on_signal_shut_down(vec![worker.shutdown_handle(), beacon.shutdown_handle()]);
    health::set_ready(true);
    info!(
        address = %connected.address,
        namespace = %connected.namespace,
        host,
        task_queue = %queue,
        "agent started"
    );
    let (hosted, listed) = tokio::join!(worker.run(), beacon.run());
    hosted.context("running the host worker")?;
    listed.context("running the agents' queue worker")?;
    info!("agent stopped");
    Ok(())
}

fn tuner(config: &Config) -> TunerHolder {
    TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(
            config.max_concurrent_workflow_tasks as usize,
        ))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(
            config.max_concurrent_activities as usize,
        ))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(10))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .build()
}

/// On SIGTERM/SIGINT: no new tasks; running activities get the grace period to finish.
fn on_signal_shut_down(handles: Vec<impl Fn() + Send + 'static>) {
    tokio::spawn(async move {
        cutover_client::shutdown::signal().await;
        health::set_ready(false);
        info!("shutting down: no new tasks; running activities get the grace period to finish");
        for shutdown in &handles {
            shutdown();
        }
    });
}

fn gethostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}
