//! What a rollout costs, beside its peers: the same no-op steps run by a bare Temporal Rust SDK
//! worker (`bare-worker`), Temporal's Python SDK (`tests/peers/bare_worker.py`), and
//! `cutover-worker` (a plan of `command: "true"` steps), each its own process, one after the
//! other on one dev server.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p cutover-tests --bench peers
//! # options: -- --workflows 300 --steps 5 --sequential 10 --sequential-steps 10
//! # CUTOVER_BENCH_PEERS=rust,cutover to leave Python out; add cutover-observed for Cutover
//! # with --metrics-listen and OTLP traces exported to a real receiver
//! ```
//!
//! For each peer: throughput (`--workflows` of `--steps` steps started at once, until the
//! last ends), the worker's CPU seconds over that (its own; for Cutover also its children,
//! the `true` processes its steps spawn, reported apart), the dev server's CPU seconds over the
//! same, the worker's peak RSS, and `--sequential` workflows of `--sequential-steps` steps run
//! back to back (median and p99 wall time). The Python peer needs the `temporalio` package; the
//! bench installs it for this user with pip when it is missing.
//!
//! `CUTOVER_BENCH_ADDRESS=host:port` measures your own Temporal server instead of a fresh dev
//! server (its CPU is then not measured; the workers still run on this machine). The
//! workflows it starts stay in that namespace's history until its retention removes them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use cutover_client::start_rollout;
use cutover_tests::bench::{arg, percentile};
use cutover_tests::peers::BareWorkflow;
use cutover_tests::{DevServer, WorkerProcess, bin, unique_queue};
use cutover_workflows::RolloutWorkflow;
use cutover_workflows::plan::{PlanLimits, parse_plan};
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};

/// One peer's figures.
struct Row {
    peer: &'static str,
    per_second: f64,
    worker_cpu: f64,
    children_cpu: f64,
    server_cpu: f64,
    rss_mib: f64,
    sequential: Vec<f64>,
}

struct Args {
    workflows: usize,
    steps: u32,
    sequential: usize,
    sequential_steps: u32,
}

/// A worker process being measured.
enum Peer {
    Bare(Child),
    Cutover(WorkerProcess),
}

impl Peer {
    fn pid(&self) -> u32 {
        match self {
            Peer::Bare(c) => c.id(),
            Peer::Cutover(w) => w.pid(),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Peer::Bare(c) = self {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// CPU seconds of `pid` (user + system), and of its waited-for children.
fn cpu(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<u64> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // After the command: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    let tick = |i: usize| fields.get(i - 3).copied().unwrap_or(0) as f64 / 100.0;
    (tick(14) + tick(15), tick(16) + tick(17))
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// The dev server's process: the `temporal server start-dev` listening on `port`.
fn server_pid(port: u16) -> Option<u32> {
    let needle = port.to_string();
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        (args.iter().any(|a| a == "start-dev") && args.iter().any(|a| a == &needle)).then_some(pid)
    })
}

/// Makes sure Python's `temporalio` imports, installing it for this user if not.
fn python_sdk() -> anyhow::Result<()> {
    let has = |_: ()| {
        Command::new("python3")
            .args(["-c", "import temporalio"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has(()) {
        return Ok(());
    }
    eprintln!("installing the temporalio Python package for this user (pip)");
    let ok = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--user",
            "--break-system-packages",
            "temporalio",
        ])
        .status()?
        .success();
    anyhow::ensure!(ok && has(()), "pip could not install temporalio");
    Ok(())
}

fn python_worker() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/bare_worker.py")
}

/// Starts `n` bare workflows of `steps` at once and waits for them all; returns the seconds.
async fn bare_batch(
    client: &Client,
    queue: &str,
    tag: &str,
    n: usize,
    steps: u32,
) -> anyhow::Result<f64> {
    let t = Instant::now();
    let handles = futures::future::try_join_all((0..n).map(|i| {
        client.start_workflow(
            BareWorkflow::run,
            steps,
            WorkflowStartOptions::new(queue.to_owned(), format!("{tag}-{i}")).build(),
        )
    }))
    .await?;
    futures::future::try_join_all(
        handles
            .iter()
            .map(|h| h.get_result(WorkflowGetResultOptions::default())),
    )
    .await?;
    Ok(t.elapsed().as_secs_f64())
}

fn plan(
    service: &str,
    environment: &str,
    steps: u32,
) -> anyhow::Result<cutover_workflows::plan::Plan> {
    let mut text =
        format!("service: {service}\nenvironment: {environment}\nversion: \"1\"\nsteps:\n");
    for i in 0..steps {
        text.push_str(&format!(
            "  - {{ name: s{i}, kind: command, command: \"true\" }}\n"
        ));
    }
    parse_plan(&text, PlanLimits::default()).map_err(|d| anyhow::anyhow!("{d}"))
}

/// Starts `n` rollouts of `steps` at once and waits for them all; returns the seconds.
async fn rollout_batch(
    client: &Client,
    queue: &str,
    tag: &str,
    n: usize,
    steps: u32,
) -> anyhow::Result<f64> {
    let plans: Vec<_> = (0..n)
        .map(|i| plan(&format!("{tag}{i}"), "bench", steps))
        .collect::<Result<_, _>>()?;
    let t = Instant::now();
    let started =
        futures::future::try_join_all(plans.iter().map(|p| start_rollout(client, p, queue, None)))
            .await?;
    futures::future::try_join_all(started.iter().map(|s| async move {
        client
            .get_workflow_handle::<RolloutWorkflow>(s.workflow_id.clone())
            .get_result(WorkflowGetResultOptions::default())
            .await
    }))
    .await?;
    Ok(t.elapsed().as_secs_f64())
}

/// Measures one peer: a warm-up, the batch, then the sequential runs.
async fn measure(
    client: &Client,
    server_pid: Option<u32>,
    name: &'static str,
    peer: Peer,
    queue: &str,
    a: &Args,
) -> anyhow::Result<Row> {
    let cutover = matches!(peer, Peer::Cutover(_));
    let batch = async |tag: &str, n: usize, steps: u32| {
        if cutover {
            rollout_batch(client, queue, tag, n, steps).await
        } else {
            bare_batch(client, queue, tag, n, steps).await
        }
    };
    // IDs (and, for Cutover, service names) by the name rules.
    let slug = name.to_lowercase().replace(' ', "-");
    // Warm-up: the worker is connected, its caches and connections are up.
    batch(&format!("{slug}-warm"), 5, a.steps).await?;
    let (w0, c0) = cpu(peer.pid());
    let s0 = server_pid.map(|p| cpu(p).0).unwrap_or(0.0);
    let secs = batch(&format!("{slug}-batch"), a.workflows, a.steps).await?;
    let (w1, c1) = cpu(peer.pid());
    let s1 = server_pid.map(|p| cpu(p).0).unwrap_or(0.0);
    let mut sequential = Vec::new();
    for i in 0..a.sequential + 2 {
        let one = batch(&format!("{slug}-seq{i}-"), 1, a.sequential_steps).await?;
        if i >= 2 {
            sequential.push(one * 1000.0);
        }
    }
    Ok(Row {
        peer: name,
        per_second: a.workflows as f64 / secs,
        worker_cpu: w1 - w0,
        children_cpu: c1 - c0,
        server_cpu: s1 - s0,
        rss_mib: peak_rss_mib(peer.pid()),
        sequential,
    })
}

fn print(rows: &mut [Row], a: &Args) {
    let activities = (a.workflows as f64) * f64::from(a.steps);
    println!(
        "\nPeers — {} workflows × {} no-op steps at once, then {} × {} steps back to back, one local dev server\n",
        a.workflows, a.steps, a.sequential, a.sequential_steps
    );
    println!(
        "| | throughput | worker CPU-s | CPU-s / 1000 steps | spawned processes CPU-s | dev server CPU-s | worker peak RSS | {} steps back to back (median / p99) |",
        a.sequential_steps
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows.iter_mut() {
        let median = percentile(&mut r.sequential, 0.5);
        let p99 = percentile(&mut r.sequential, 0.99);
        println!(
            "| {} | {:.1} wf/s | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} MiB | {:.0} ms / {:.0} ms |",
            r.peer,
            r.per_second,
            r.worker_cpu,
            r.worker_cpu * 1000.0 / activities,
            r.children_cpu,
            r.server_cpu,
            r.rss_mib,
            median,
            p99
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let a = Args {
        workflows: arg("workflows", 300, 1),
        steps: arg("steps", 5, 1) as u32,
        sequential: arg("sequential", 10, 1),
        sequential_steps: arg("sequential-steps", 10, 1) as u32,
    };
    let wanted =
        std::env::var("CUTOVER_BENCH_PEERS").unwrap_or_else(|_| "rust,python,cutover".into());
    let (server, client, address) = match std::env::var("CUTOVER_BENCH_ADDRESS") {
        Ok(address) => {
            let connected = cutover_client::connect(&cutover_client::ConnectOptions {
                address: Some(address.clone()),
                ..Default::default()
            })
            .await?;
            (None, connected.client, address)
        }
        Err(_) => {
            let server = DevServer::start().await?;
            let client = server.client().clone();
            let address = server.address.clone();
            (Some(server), client, address)
        }
    };
    let spid = server.as_ref().and_then(|s| server_pid(s.port()));
    if spid.is_none() {
        eprintln!(
            "the server's process is not on this machine (or was not found): its CPU is not measured"
        );
    }
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    // OTLP receivers stay up until the end, so no exporter waits on a closed port.
    let mut collectors = Vec::new();
    for peer in wanted.split(',') {
        let queue = unique_queue(peer);
        let log = std::fs::File::create(dir.path().join(format!("{peer}.log")))?;
        let (name, worker) = match peer.trim() {
            "rust" => {
                let child = Command::new(bin("bare-worker"))
                    .args([&address, &queue])
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .context("starting bare-worker (cargo build --release --bins)")?;
                ("bare Rust SDK", Peer::Bare(child))
            }
            "python" => {
                python_sdk()?;
                let child = Command::new("python3")
                    .arg(python_worker())
                    .args([&address, &queue])
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .context("starting the Python worker")?;
                ("Python SDK", Peer::Bare(child))
            }
            "cutover" => (
                "Cutover",
                Peer::Cutover(WorkerProcess::spawn_for_load(&address, &queue, dir.path())?),
            ),
            "cutover-observed" => {
                // Metrics served and scraped, every span exported to a real OTLP receiver.
                let (collector, endpoint) = cutover_tests::otlp::Collector::start().await?;
                collectors.push(collector);
                let metrics = format!("127.0.0.1:{}", cutover_tests::free_port()?);
                let mut command = Command::new(bin("cutover-worker"));
                command
                    .args(["--address", &address, "--task-queue", &queue])
                    .args(["--max-concurrent-activities", "100"])
                    .args(["--max-concurrent-workflow-tasks", "100"])
                    .args(["--metrics-listen", &metrics])
                    .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
                (
                    "Cutover observed",
                    Peer::Cutover(WorkerProcess::spawn_command(command, dir.path())?),
                )
            }
            other => {
                anyhow::bail!("unknown peer `{other}`: rust, python, cutover or cutover-observed")
            }
        };
        eprintln!("measuring {name} …");
        rows.push(measure(&client, spid, name, worker, &queue, &a).await?);
    }
    print(&mut rows, &a);
    match server {
        Some(s) => s.shutdown().await,
        None => Ok(()),
    }
}
