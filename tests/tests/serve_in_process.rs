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

/// A claim as a receiver that stopped right after claiming would leave it, two minutes old.
async fn stuck_claim(
    ledger: &cutover_ledger::Ledger,
    db: &std::path::Path,
    delivery: &str,
    workflow_id: &str,
) -> anyhow::Result<String> {
    let claim = ledger
        .claim_delivery(&cutover_ledger::NewDelivery {
            provider: "github".into(),
            delivery_id: Some(delivery.into()),
            event: Some("push".into()),
            source: "127.0.0.1:1".into(),
            status: 202,
            outcome: "starting".into(),
            reason: "rule `main` matched".into(),
            rule: Some("main".into()),
            workflow_id: Some(workflow_id.into()),
        })
        .await?;
    let cutover_ledger::Claim::Won(id) = claim else {
        anyhow::bail!("the claim of {delivery} was taken");
    };
    // Backdated by hand: the ledger has no API to write the past, on purpose.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await?;
    sqlx::query("UPDATE webhook_deliveries SET received_at = received_at - 120000 WHERE id = $1")
        .bind(&id)
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(id)
}

#[tokio::test]
async fn a_receiver_resolves_deliveries_claimed_but_never_settled_when_it_starts()
-> anyhow::Result<()> {
    use cutover_workflows::plan::{Trigger, TriggerKind};
    let h = Harness::start("serve-stuck").await?;
    let dir = h.dir.path();
    write_file(
        dir,
        "plan.yaml",
        "service: stuck\nenvironment: placeholder\nversion: \"0\"\nsteps:\n  - { name: hello, kind: command, command: \"true\" }\n",
    );
    let rules = write_file(
        dir,
        "triggers.yaml",
        "rules:\n  - { name: main, provider: github, repository: acme/hello, event: push, branch: main, plan: plan.yaml, environment: staging }\n",
    );
    let secret = write_file(dir, "github.secret", GITHUB_SECRET);
    let db = dir.join("ledger.db");
    let url = format!("sqlite://{}", db.display());
    let ledger = cutover_ledger::Ledger::open(&url).await?;
    // One delivery whose rollout did start (the receiver died before recording it), one
    // whose receiver died before starting anything.
    let mut plan = cutover_tests::plan(
        "service: stuck\nenvironment: staging\nversion: \"1\"\nsteps:\n  - { name: hello, kind: command, command: \"true\" }\n",
    );
    plan.trigger = Some(Trigger {
        kind: TriggerKind::Github,
        detail: None,
        delivery: Some("github:d-started".into()),
        author: None,
    });
    let started = cutover_client::start_rollout(h.client(), &plan, &h.queue, None).await?;
    outcome(h.client(), &started.workflow_id).await?;
    let a = stuck_claim(&ledger, &db, "d-started", "rollout/stuck/staging").await?;
    let b = stuck_claim(&ledger, &db, "d-never", "rollout/stuck/prod").await?;

    let listed = cutover_tests::cutover_json(
        dir,
        None,
        &[
            "webhooks",
            "deliveries",
            "--stuck",
            "--ledger",
            &url,
            "--output",
            "json",
        ],
    )?;
    let ids: Vec<&str> = listed
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, [a.as_str(), b.as_str()], "{listed}");

    let receiver = Receiver::from_args([
        "--rules",
        &rules.display().to_string(),
        "--github-secret-file",
        &secret.display().to_string(),
        "--ledger",
        &url,
        "--address",
        &h.server.address,
        "--task-queue",
        &h.queue,
    ])
    .await?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(receiver.run(listener, async {
        let _ = stopped.await;
    }));
    cutover_tests::wait_for(
        std::time::Duration::from_secs(30),
        "the stuck deliveries to be resolved",
        || {
            let ledger = ledger.clone();
            async move {
                let before = cutover_ledger::now_ms();
                ledger
                    .stuck_deliveries(before)
                    .await
                    .ok()
                    .filter(|rows| rows.is_empty())
            }
        },
    )
    .await?;
    let rows = ledger.deliveries(10).await?;
    let row = |id: &str| rows.iter().find(|r| r.id == id).cloned();
    let a_row = row(&a).ok_or_else(|| anyhow::anyhow!("{a} is gone"))?;
    assert_eq!(a_row.outcome, "started", "{a_row:?}");
    assert_eq!(a_row.run_id.as_deref(), Some(started.run_id.as_str()));
    let b_row = row(&b).ok_or_else(|| anyhow::anyhow!("{b} is gone"))?;
    assert_eq!(b_row.outcome, "abandoned", "{b_row:?}");
    // The abandoned claim is released: a redelivery may claim it again.
    assert!(
        ledger
            .claimed_delivery("github", "d-never")
            .await?
            .is_none()
    );
    assert!(
        ledger
            .claimed_delivery("github", "d-started")
            .await?
            .is_some()
    );
    stop.send(())
        .map_err(|()| anyhow::anyhow!("receiver gone"))?;
    served.await??;
    Ok(())
}
