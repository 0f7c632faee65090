//! The chaos suite (issue 12): rollouts of counted effects while the worker is SIGKILLed every
//! K seconds (and the dev server once), then recovery time after single kills.
//!
//! `cargo bench -p cutover-tests --bench chaos -- [--rollouts 50] [--steps 6] [--kills 10]
//!  [--heartbeat-ms 2000] [--sticky 2s] [--only recovery|chaos]`
//!
//! Prints one line per scenario: completed/N, effects once, lost, re-executions, wall time;
//! and the median and p99 of the recovery time. Figures in BENCHMARKS.md.

use std::time::Duration;

use cutover_tests::bench::{arg, report};
use cutover_tests::chaos::{self, Config, Recovery};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rollouts = arg("rollouts", 50, 1);
    let steps = arg("steps", 6, 1);
    let kills = arg("kills", 10, 1);
    let heartbeat = Duration::from_millis(arg("heartbeat-ms", 2000, 200) as u64);
    let argv: Vec<String> = std::env::args().collect();
    let flag = |name: &str| argv.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
    let sticky = flag("--sticky").unwrap_or_else(|| "2s".to_owned());
    let only = flag("--only");
    println!("heartbeat timeout {heartbeat:?}, worker --sticky-timeout {sticky}");
    if only.as_deref() != Some("chaos") {
        let dir = tempfile::tempdir()?;
        let cfg = Recovery {
            rollouts: 5,
            kills,
            heartbeat,
            sticky: sticky.clone(),
        };
        let times = chaos::recovery(&cfg, dir.path()).await?;
        let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1000.0).collect();
        report(
            "recovery after SIGKILL (5 rollouts interrupted), kill → all next attempts",
            &mut ms,
        );
    }
    if only.as_deref() == Some("recovery") {
        return Ok(());
    }
    let base = Config {
        rollouts,
        steps,
        step: Duration::from_secs(1),
        kill_every: None,
        server_restart: false,
        heartbeat,
        sticky,
        deadline: Duration::from_secs(300),
    };
    let scenarios = [
        ("no kills", None, false),
        ("worker SIGKILL every 10s", Some(10), false),
        ("worker SIGKILL every 5s", Some(5), false),
        ("worker SIGKILL every 3s", Some(3), false),
        (
            "worker SIGKILL every 5s + one server SIGKILL",
            Some(5),
            true,
        ),
    ];
    for (label, every, server) in scenarios {
        let dir = tempfile::tempdir()?;
        let cfg = Config {
            kill_every: every.map(Duration::from_secs),
            server_restart: server,
            ..base.clone()
        };
        let r = chaos::run(&cfg, dir.path()).await?;
        println!("{label:<46} {r}");
        for p in r.problems.iter().take(5) {
            println!("    {p}");
        }
    }
    Ok(())
}
