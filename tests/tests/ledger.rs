//! The ledger on a real PostgreSQL: the same migrations as on SQLite, applied on an empty
//! database and a no-op the second time; the worker writes release records to it.

use anyhow::Context;
use cutover_ledger::{Claim, Ledger, NewDelivery};
use cutover_tests::pg::PgCluster;
use cutover_tests::{Harness, cutover, outcome};
use cutover_workflows::status::RolloutState;

#[tokio::test]
async fn postgres_migrates_once_and_keeps_deliveries_and_releases() -> anyhow::Result<()> {
    let pg = PgCluster::start()?;
    let url = pg.url("postgres");
    let first = Ledger::open(&url).await?;
    assert_eq!(first.applied_migrations().await?, vec![1, 2, 3]);
    first.close().await;
    let ledger = Ledger::open(&url).await?;
    assert_eq!(
        ledger.applied_migrations().await?,
        vec![1, 2, 3],
        "nothing applied twice"
    );
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM _sqlx_migrations")?,
        "3"
    );

    // The audit trail on PostgreSQL: writers racing for the chain's end make one chain; a
    // filter by service and time; an edited row found.
    let entry = |key: String, service: &str, at: i64| cutover_ledger::NewAudit {
        key,
        at: Some(at),
        subject: format!("rollout/{service}/prod"),
        run_id: "r".into(),
        service: service.into(),
        environment: "prod".into(),
        action: "approve".into(),
        outcome: "accepted".into(),
        person: "ana".into(),
        verified: "token".into(),
        step: None,
        reason: None,
        source: "workflow".into(),
    };
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let ledger = ledger.clone();
            let batch: Vec<_> = (0..5)
                .map(|i| {
                    entry(
                        format!("w{w}/{i}"),
                        if w % 2 == 0 { "even" } else { "odd" },
                        i,
                    )
                })
                .collect();
            tokio::spawn(async move { ledger.append_audit(&batch).await })
        })
        .collect();
    for w in writers {
        w.await??;
    }
    let (count, _) = ledger.verify_audit().await?.map_err(anyhow::Error::msg)?;
    assert_eq!(count, 30);
    let even = ledger
        .audit(&cutover_ledger::AuditFilter {
            service: Some("even".into()),
            since: Some(3),
            limit: None,
        })
        .await?;
    assert_eq!(even.len(), 6, "3 writers x at 3 and 4");
    pg.psql(
        "postgres",
        "UPDATE audit SET reason = 'edited' WHERE position = 7",
    )?;
    let problem = ledger.verify_audit().await?.expect_err("tampered");
    assert!(problem.to_string().starts_with("row 7 "), "{problem}");

    let delivery = NewDelivery {
        provider: "github".into(),
        delivery_id: Some("pg-1".into()),
        event: Some("push".into()),
        source: "127.0.0.1:1".into(),
        status: 202,
        outcome: "starting".into(),
        reason: "rule matched".into(),
        rule: Some("main".into()),
        workflow_id: None,
    };
    let Claim::Won(id) = ledger.claim_delivery(&delivery).await? else {
        anyhow::bail!("the first claim wins")
    };
    ledger
        .settle_delivery(
            &id,
            202,
            "started",
            "ok",
            Some("rollout/a/b"),
            Some("r1"),
            true,
        )
        .await?;
    let Claim::Taken(row) = ledger.claim_delivery(&delivery).await? else {
        anyhow::bail!("the second claim finds the first")
    };
    assert_eq!(row.run_id.as_deref(), Some("r1"));

    // Refusals written in batches: several multi-row inserts in one transaction, every row kept.
    let refusals: Vec<NewDelivery> = (0..150)
        .map(|i| NewDelivery {
            delivery_id: Some(format!("pg-refused-{i}")),
            status: 401,
            outcome: "rejected".into(),
            reason: "signature mismatch".into(),
            rule: None,
            ..delivery.clone()
        })
        .collect();
    ledger.record_deliveries(&refusals).await?;
    let kept: std::collections::BTreeSet<String> = ledger
        .deliveries(1000)
        .await?
        .into_iter()
        .filter(|r| r.outcome == "rejected")
        .filter_map(|r| r.delivery_id)
        .collect();
    assert_eq!(kept.len(), 150);
    assert!(kept.contains("pg-refused-0") && kept.contains("pg-refused-149"));

    // A worker with its ledger on PostgreSQL records the release it runs.
    let h = Harness::start_with("ledger-pg", &["--ledger", &url]).await?;
    let id = h
        .start_rollout("service: pgrel\nenvironment: test\nversion: \"7\"\nsteps:\n  - { name: a, kind: command, command: \"true\" }\n")
        .await?;
    assert_eq!(
        outcome(h.client(), &id).await?.outcome,
        RolloutState::Succeeded
    );
    let rows = cutover_tests::wait_for(
        std::time::Duration::from_secs(10),
        "the final release record",
        || {
            let ledger = ledger.clone();
            async move {
                ledger
                    .releases(Some("pgrel"), None, 10)
                    .await
                    .ok()
                    .filter(|r| r.first().is_some_and(|r| r.outcome == "succeeded"))
            }
        },
    )
    .await?;
    assert_eq!((rows.len(), rows[0].version.as_str()), (1, "7"));
    let out = cutover(
        h.dir.path(),
        None,
        &[
            "releases",
            "--ledger",
            &url,
            "--service",
            "pgrel",
            "--output",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).context("json")?;
    assert_eq!(listed[0]["outcome"], "succeeded");
    Ok(())
}

#[tokio::test]
async fn a_bad_ledger_url_is_a_clear_error_without_the_password() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let port = cutover_tests::free_port()?;
    let out = cutover(
        dir.path(),
        None,
        &[
            "releases",
            "--ledger",
            &format!("postgres://cutover:hunter22@127.0.0.1:{port}/ledger"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot open the ledger at postgres://cutover:***@127.0.0.1:{port}/ledger"
        )),
        "{err}"
    );
    assert!(!err.contains("hunter22"), "{err}");
    let out = cutover(dir.path(), None, &["releases", "--ledger", "mysql://x/y"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not supported"));
    Ok(())
}
