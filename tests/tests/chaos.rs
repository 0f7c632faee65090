//! The chaos suite, small: 20 rollouts of 3 one-second command steps while the worker is
//! SIGKILLed every 5 s and restarted, and the dev server is SIGKILLed once and restarted from
//! its SQLite file. Every rollout must succeed and every effect must have happened; none may
//! be lost. (Re-executions — an effect done, then its worker killed before the server heard —
//! are printed, not forbidden: a command step is at-least-once, which is why it is retried.)
//! The full-size run with its figures is the `chaos` bench.

use std::time::Duration;

use cutover_tests::chaos::{self, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_survive_worker_kills_and_a_server_restart_with_no_effect_lost()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = Config {
        rollouts: 20,
        steps: 3,
        step: Duration::from_secs(1),
        kill_every: Some(Duration::from_secs(5)),
        server_restart: true,
        heartbeat: Duration::from_secs(2),
        sticky: "1s".to_owned(),
        deadline: Duration::from_secs(300),
    };
    let r = chaos::run(&cfg, dir.path()).await?;
    println!("chaos: {r}");
    assert!(r.worker_kills >= 1, "the worker was killed: {r}");
    assert_eq!(r.server_restarts, 1, "{r}");
    assert_eq!(r.completed, 20, "{r}; {:?}", r.problems);
    assert_eq!(r.succeeded, 20, "{r}; {:?}", r.problems);
    assert_eq!(r.lost, 0, "{r}");
    assert_eq!(r.once + r.repeated, r.expected, "every effect done: {r}");
    Ok(())
}
