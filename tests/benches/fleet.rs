//! Rolling a fleet: three hosts (network namespaces, each with its agent) deployed in waves
//! 1 / 50% / 100%, against the same six instances on one host deployed in one step.
//!
//! ```text
//! cargo build --release --workspace --bins && cargo bench -p cutover-tests --bench fleet -- --runs 5
//! ```
//!
//! Each run deploys a new version (blue-green, two instances per host, no rollback window,
//! verify between waves, no bake) and is timed from start to the rollout's end, as a client
//! sees it. Needs root (namespaces), as the tests do.

use std::time::Instant;

use cutover_tests::bench::{arg, report};
use cutover_tests::fleet::Fleet;
use cutover_tests::{DevServer, WorkerProcess, bin, outcome, plan, unique_queue};
use cutover_workflows::status::RolloutState;

fn deploy_step(root: &str, instances: u32, base: u16, listen: u16, extra: &str) -> String {
    format!(
        "  - name: deploy\n    kind: deploy\n    root: \"{root}\"\n    strategy: blue-green\n    start: {{ command: \"{}\" }}\n    instances: {instances}\n    base_port: {base}\n    listen: {listen}\n    rollback_window: 0s\n    health: {{ timeout: 15s, interval: 20ms }}\n{extra}",
        bin("hello-service").display()
    )
}

async fn timed(
    server: &DevServer,
    queue: &str,
    text: &dyn Fn(usize) -> String,
    runs: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut samples = Vec::new();
    // Version 0 puts the old version in place; the timed runs replace it.
    for v in 0..=runs {
        let started = Instant::now();
        let id = cutover_client::start_rollout(server.client(), &plan(&text(v)), queue, None)
            .await?
            .workflow_id;
        let summary = outcome(server.client(), &id)
            .await
            .map_err(|e| anyhow::anyhow!("{id}: {e:?}"))?;
        anyhow::ensure!(summary.outcome == RolloutState::Succeeded, "{summary:?}");
        if v > 0 {
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(samples)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs = arg("runs", 5, 1);
    let server = DevServer::start_reachable().await?;
    let dir = tempfile::tempdir()?;
    let queue = unique_queue("bench-fleet");
    let _orchestrator = WorkerProcess::spawn(&server.address, &queue, dir.path())?;

    let hosts = ["web-1", "web-2", "web-3"];
    let fleet = Fleet::create(&hosts)?;
    let _agents: Vec<WorkerProcess> = hosts
        .iter()
        .map(|h| fleet.agent(h, server.port()))
        .collect::<anyhow::Result<_>>()?;
    let root = fleet.root.display().to_string();
    let fleet_plan = |v: usize| {
        format!(
            "service: hello\nenvironment: fleet\nversion: \"{v}.0.0\"\ntarget: {{ driver: host, hosts: [web-1, web-2, web-3] }}\nsteps:\n{}",
            deploy_step(
                &root,
                2,
                18100,
                18080,
                "    waves: [1, 50%, 100%]\n    between_waves: { verify: { url: \"http://127.0.0.1:18080/health\" } }\n"
            )
        )
    };
    let mut waves = timed(&server, &queue, &fleet_plan, runs).await?;

    let one_root = dir.path().join("one").display().to_string();
    let (base, listen) = cutover_tests::host::port_block(12)?;
    let one_plan = |v: usize| {
        format!(
            "service: hello\nenvironment: one\nversion: \"{v}.0.0\"\nsteps:\n{}",
            deploy_step(&one_root, 6, base, listen, "")
        )
    };
    let _guard = cutover_tests::host::HostGuard::new(std::path::Path::new(&one_root), "hello");
    let mut one = timed(&server, &queue, &one_plan, runs).await?;

    report("3 hosts, waves 1/50%/100%, 2 instances each", &mut waves);
    report("1 host, 6 instances, one blue-green switch", &mut one);
    Ok(())
}
