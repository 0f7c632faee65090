//! The webhook receiver started in-process through `cutover::serve::Receiver` — the same
//! entry point `cutover serve` uses — on `127.0.0.1:0`, stopped by a channel instead of a
//! signal. A real dev server and worker sit behind it.

use cutover::serve::Receiver;
use cutover_tests::serve::{GITHUB_SECRET, github_push, post_github};
use cutover_tests::{Harness, outcome, write_file};
use cutover_workflows::status::RolloutState;

#[tokio::test]
async fn an_in_process_receiver_starts_a_rollout_and_stops_when_told() -> anyhow::Result<()> {
    let h = Harness::start("serve-inproc").await?;
    let dir = h.dir.path();
    write_file(
        dir,
        "plan.yaml",
        "service: inproc\nenvironment: placeholder\nversion: \"0\"\nsteps:\n  - { name: hello, kind: command, command: \"true\" }\n",
    );
    let rules = write_file(
        dir,
        "triggers.yaml",
        "rules:\n  - { name: main, provider: github, repository: acme/hello, event: push, branch: main, plan: plan.yaml, environment: staging }\n",
    );
    let secret = write_file(dir, "github.secret", GITHUB_SECRET);
    let ledger = format!("sqlite://{}/ledger.db", dir.display());
    let receiver = Receiver::from_args([
        "--rules",
        &rules.display().to_string(),
        "--github-secret-file",
        &secret.display().to_string(),
        "--ledger",
        &ledger,
        "--address",
        &h.server.address,
        "--task-queue",
        &h.queue,
    ])
    .await?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(receiver.run(listener, async {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let body = github_push(
        "acme/hello",
        "main",
        "0123456789abcdef0123456789abcdef01234567",
    );
    let resp = post_github(&http, &url, "push", "inproc-1", body).await?;
    assert_eq!(resp.status().as_u16(), 202, "{}", resp.text().await?);
    let summary = outcome(h.client(), "rollout/inproc/staging").await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);

    stop.send(())
        .map_err(|()| anyhow::anyhow!("receiver gone"))?;
    served.await??;
    // Stopped means stopped: the port no longer answers.
    assert!(http.get(format!("{url}/healthz")).send().await.is_err());
    Ok(())
}

#[tokio::test]
async fn a_receiver_with_bad_flags_is_refused_with_the_reason() {
    let err = Receiver::from_args(["--rules"])
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("--rules"), "{err}");
    let err = Receiver::from_args(["--rules", "/nonexistent/triggers.yaml"])
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(err.contains("triggers.yaml"), "{err}");
}
