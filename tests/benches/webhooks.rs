//! Throughput and latency of `cutover serve`, from a signed delivery to a started workflow,
//! on a local dev server; and how fast it refuses bad signatures.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p cutover-tests --bench webhooks
//! # options: -- --deliveries 400 --concurrency 16 --rejects 20000
//! ```
//!
//! Each accepted delivery is a push to its own branch (`feature/b<i>`), which the rules send to
//! its own preview environment, so every delivery starts a rollout (one `command: true` step)
//! and none is refused for a running rollout. The receiver's ledger is SQLite, as by default.
//! The refusals are sent once those rollouts have ended, to a quiet receiver.

use std::sync::Arc;
use std::time::Instant;

use cutover_tests::bench::{arg, report};
use cutover_tests::serve::{GITHUB_SECRET, Receiver, github_push, sign};
use cutover_tests::{DevServer, WorkerProcess, unique_queue, write_file};
use futures::StreamExt;

struct Args {
    deliveries: usize,
    concurrency: usize,
    rejects: usize,
}

fn args() -> Args {
    Args {
        deliveries: arg("deliveries", 400, 1),
        concurrency: arg("concurrency", 16, 1),
        rejects: arg("rejects", 20_000, 1),
    }
}

/// Sends `requests` (prepared bodies and headers) with `concurrency` in flight; returns each
/// request's latency in ms, the statuses seen, and the wall time.
async fn fire(
    http: &reqwest::Client,
    url: &str,
    requests: Vec<(String, Vec<u8>, String)>,
    concurrency: usize,
) -> (Vec<f64>, std::collections::BTreeMap<u16, usize>, f64) {
    let started = Instant::now();
    let results: Vec<(f64, u16)> = futures::stream::iter(requests)
        .map(|(delivery, body, signature)| {
            let http = http.clone();
            let url = format!("{url}/webhooks/github");
            async move {
                let t = Instant::now();
                let status = http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-github-event", "push")
                    .header("x-github-delivery", delivery)
                    .header("x-hub-signature-256", signature)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                (t.elapsed().as_secs_f64() * 1000.0, status)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed().as_secs_f64();
    let mut statuses = std::collections::BTreeMap::new();
    for (_, s) in &results {
        *statuses.entry(*s).or_default() += 1;
    }
    (
        results.into_iter().map(|(ms, _)| ms).collect(),
        statuses,
        wall,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let server = DevServer::start().await?;
    let dir = tempfile::tempdir()?;
    let queue = unique_queue("hookbench");
    let _worker = WorkerProcess::spawn_for_load(&server.address, &queue, dir.path())?;
    write_file(
        dir.path(),
        "plan.yaml",
        "service: hooks\nenvironment: x\nversion: \"0\"\nsteps:\n  - { name: a, kind: command, command: \"true\" }\n",
    );
    let rules = write_file(
        dir.path(),
        "triggers.yaml",
        "rules:\n  - { name: previews, provider: github, repository: acme/hello, event: push, branch: \"feature/*\", plan: plan.yaml, environment: \"preview-{branch}\" }\n",
    );
    let ledger = format!("sqlite://{}/.cutover/ledger.db", dir.path().display());
    let rx = Receiver::start(dir.path(), &rules, &ledger, &server.address, &queue, &[]).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;

    // Warm up: connections, the ledger, the worker.
    let warm: Vec<_> = (0..20)
        .map(|i| {
            let body = github_push(
                "acme/hello",
                &format!("feature/warm{i}"),
                "0123456789abcdef0123",
            );
            let sig = sign(GITHUB_SECRET, &[&body]);
            (format!("warm-{i}"), body, sig)
        })
        .collect();
    fire(&http, &rx.url, warm, a.concurrency).await;

    let accepted: Vec<_> = (0..a.deliveries)
        .map(|i| {
            let body = github_push(
                "acme/hello",
                &format!("feature/b{i}"),
                "0123456789abcdef0123",
            );
            let sig = sign(GITHUB_SECRET, &[&body]);
            (format!("bench-{i}"), body, sig)
        })
        .collect();
    let (mut ms, statuses, wall) = fire(&http, &rx.url, accepted, a.concurrency).await;
    println!(
        "signed deliveries → workflow started: {} in {wall:.2} s = {:.1} deliveries/s (concurrency {}), statuses {statuses:?}",
        ms.len(),
        ms.len() as f64 / wall,
        a.concurrency
    );
    report("  latency per accepted delivery", &mut ms);

    // The rejections are measured on a quiet receiver: the rollouts started above finish first.
    for i in 0..a.deliveries {
        cutover_tests::outcome(
            server.client(),
            &format!("rollout/hooks/preview-feature-b{i}"),
        )
        .await?;
    }

    let body = Arc::new(github_push(
        "acme/hello",
        "feature/x",
        "0123456789abcdef0123",
    ));
    let rejected: Vec<_> = (0..a.rejects)
        .map(|i| (format!("bad-{i}"), body.to_vec(), sign("wrong", &[&body])))
        .collect();
    let (mut ms, statuses, wall) = fire(&http, &rx.url, rejected, 64).await;
    println!(
        "bad signatures → 401: {} in {wall:.2} s = {:.0} req/s (concurrency 64), statuses {statuses:?}",
        ms.len(),
        ms.len() as f64 / wall
    );
    report("  latency per rejected request", &mut ms);
    // Every refusal answered has its row (the receiver answers after the row's commit).
    let recorded = cutover_ledger::Ledger::open(&ledger)
        .await?
        .deliveries(u32::MAX)
        .await?
        .iter()
        .filter(|r| r.outcome == "rejected")
        .count();
    println!(
        "  ledger rows of rejected requests: {recorded} (answered 401: {})",
        statuses.get(&401).copied().unwrap_or_default()
    );
    println!("receiver peak RSS: {} KiB", rx.peak_rss_kib());
    Ok(())
}
