//! Orchestration overhead of Cutover against a bare Temporal workflow, on a local dev server.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p cutover-tests --bench orchestration
//! # options: -- --rollouts 30 --steps 10 --concurrent 100
//! ```
//!
//! Prints, for no-op steps (`command: "true"`):
//! - per-step time in a Cutover rollout (wall time / steps, and the gap between consecutive
//!   step starts from `status`), median and p99;
//! - the same with every step placed on a host agent (`on: host`, `cutover-worker --host`);
//! - the same for a bare workflow running K no-op activities on the same server;
//! - rollouts/s with `--concurrent` rollouts started at once;
//! - the worker's peak RSS.

use std::time::Instant;

use anyhow::Context;
use cutover_client::start_rollout;
use cutover_tests::bench::{arg, report};
use cutover_tests::peers::{BareWorkflow, Noop};
use cutover_tests::{DevServer, WorkerProcess, status, unique_queue};
use cutover_workflows::RolloutWorkflow;
use cutover_workflows::plan::{PlanLimits, parse_plan};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

struct Args {
    rollouts: usize,
    steps: u32,
    concurrent: usize,
}

fn args() -> Args {
    Args {
        rollouts: arg("rollouts", 30, 1),
        steps: arg("steps", 10, 2) as u32,
        concurrent: arg("concurrent", 100, 1),
    }
}

/// A plan of `steps` no-op commands; with `host`, each placed on that host's agent.
fn plan_text(service: &str, steps: u32, host: Option<&str>) -> String {
    let mut text = format!("service: {service}\nenvironment: bench\nversion: \"1\"\n");
    if let Some(h) = host {
        text.push_str(&format!("target: {{ host: {h} }}\n"));
    }
    text.push_str("steps:\n");
    let on = if host.is_some() { ", on: host" } else { "" };
    for i in 0..steps {
        text.push_str(&format!(
            "  - {{ name: s{i}, kind: command, command: \"true\"{on} }}\n"
        ));
    }
    text
}

/// Runs `a.rollouts` rollouts one after another (after 3 warm-ups); returns the per-step wall
/// times and the gaps between consecutive step starts, in ms.
async fn sequential(
    server: &DevServer,
    queue: &str,
    a: &Args,
    prefix: &str,
    host: Option<&str>,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let client = server.client();
    let mut per_step = Vec::new();
    let mut gaps = Vec::new();
    for i in 0..a.rollouts + 3 {
        let plan = parse_plan(
            &plan_text(&format!("{prefix}{i}"), a.steps, host),
            PlanLimits::default(),
        )
        .map_err(|d| anyhow::anyhow!("{d}"))?;
        let t = Instant::now();
        let started = start_rollout(client, &plan, queue, None).await?;
        client
            .get_workflow_handle::<RolloutWorkflow>(started.workflow_id.clone())
            .get_result(WorkflowGetResultOptions::default())
            .await?;
        let wall = t.elapsed().as_secs_f64() * 1000.0;
        if i < 3 {
            continue; // warm-up
        }
        per_step.push(wall / f64::from(a.steps));
        let st = status(client, &started.workflow_id)
            .await
            .context("status")?;
        for pair in st.steps.windows(2) {
            if let (Some(x), Some(y)) = (pair[0].started_at, pair[1].started_at) {
                gaps.push((y - x).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
        }
    }
    Ok((per_step, gaps))
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

async fn run_bench(server: &DevServer, bare_queue: &str, a: &Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let queue = unique_queue("bench");
    let worker = WorkerProcess::spawn_for_load(&server.address, &queue, dir.path())?;
    let client = server.client();
    let limits = PlanLimits::default();

    // Cutover, sequential rollouts: steps on the orchestrating worker, then on a host agent.
    let (mut per_step, mut gaps) = sequential(server, &queue, a, "seq", None).await?;
    let agent = WorkerProcess::spawn_agent(
        &server.address,
        "bench-host",
        dir.path(),
        &["--max-concurrent-activities", "100"],
    )?;
    let (mut agent_per_step, mut agent_gaps) =
        sequential(server, &queue, a, "agent", Some("bench-host")).await?;
    drop(agent);

    // Bare workflow, same server, same number of no-op activities.
    let mut bare = Vec::new();
    for i in 0..a.rollouts + 3 {
        let t = Instant::now();
        let handle = client
            .start_workflow(
                BareWorkflow::run,
                a.steps,
                WorkflowStartOptions::new(bare_queue.to_owned(), format!("bare-{i}")).build(),
            )
            .await?;
        handle
            .get_result(WorkflowGetResultOptions::default())
            .await?;
        if i >= 3 {
            bare.push(t.elapsed().as_secs_f64() * 1000.0 / f64::from(a.steps));
        }
    }

    // Throughput: many rollouts at once.
    let plans: Vec<_> = (0..a.concurrent)
        .map(|i| {
            parse_plan(&plan_text(&format!("par{i}"), a.steps, None), limits)
                .map_err(|d| anyhow::anyhow!("{d}"))
        })
        .collect::<Result<_, _>>()?;
    let t = Instant::now();
    let starts =
        futures::future::try_join_all(plans.iter().map(|p| start_rollout(client, p, &queue, None)))
            .await?;
    futures::future::try_join_all(starts.iter().map(|s| async move {
        client
            .get_workflow_handle::<RolloutWorkflow>(s.workflow_id.clone())
            .get_result(WorkflowGetResultOptions::default())
            .await
    }))
    .await?;
    let secs = t.elapsed().as_secs_f64();

    println!(
        "\nCutover orchestration benchmark — {} rollouts × {} no-op steps, local dev server",
        a.rollouts, a.steps
    );
    report(
        "Cutover: per step (rollout wall time / steps)",
        &mut per_step,
    );
    report(
        "Cutover: per step (gap between step starts, from status)",
        &mut gaps,
    );
    report(
        "Cutover, steps on a host agent: per step (wall time / steps)",
        &mut agent_per_step,
    );
    report(
        "Cutover, steps on a host agent: gap between step starts",
        &mut agent_gaps,
    );
    report("bare Temporal workflow: per no-op activity", &mut bare);
    println!(
        "{:<58} {:.1} rollouts/s ({} rollouts × {} steps in {:.2} s)",
        format!("throughput, {} concurrent rollouts", a.concurrent),
        a.concurrent as f64 / secs,
        a.concurrent,
        a.steps,
        secs
    );
    match peak_rss_kib(worker.pid()) {
        Some(kib) => println!(
            "{:<58} {:.1} MiB",
            "cutover-worker peak RSS (VmHWM)",
            kib as f64 / 1024.0
        ),
        None => println!("cutover-worker peak RSS: unavailable"),
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let server = DevServer::start().await?;
    let bare_queue = unique_queue("bare");
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let options = WorkerOptions::new(bare_queue.clone())
        .register_workflow::<BareWorkflow>()?
        .register_activities(Noop)
        .build();
    let mut bare_worker = Worker::new(&runtime, server.client().clone(), options)?;
    let shutdown = bare_worker.shutdown_handle();
    let (run, bench) = tokio::join!(bare_worker.run(), async {
        let r = run_bench(&server, &bare_queue, &a).await;
        shutdown();
        r
    });
    run?;
    bench?;
    server.shutdown().await
}
