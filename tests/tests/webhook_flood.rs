//! A flood of refused deliveries against the real `cutover serve` binary: every request leaves
//! its ledger row, and a receiver killed mid-flood (SIGKILL) has a row for every request it
//! answered. Refusals need no Temporal, so the receiver is pointed at a closed port.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cutover_ledger::Ledger;
use cutover_tests::serve::{Receiver, github_push, sign};
use cutover_tests::write_file;
use futures::StreamExt;

const IN_FLIGHT: usize = 64;

struct Setup {
    _dir: tempfile::TempDir,
    ledger: String,
    receiver: Receiver,
}

async fn setup() -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    write_file(
        dir.path(),
        "plan.yaml",
        "service: flood\nenvironment: x\nversion: \"0\"\nsteps:\n  - { name: a, kind: command, command: \"true\" }\n",
    );
    let rules = write_file(
        dir.path(),
        "triggers.yaml",
        "rules:\n  - { name: main, provider: github, repository: acme/hello, event: push, branch: main, plan: plan.yaml, environment: staging }\n",
    );
    let ledger = format!("sqlite://{}/.cutover/ledger.db", dir.path().display());
    let closed = format!("127.0.0.1:{}", cutover_tests::free_port()?);
    let receiver = Receiver::start(dir.path(), &rules, &ledger, &closed, "flood", &[]).await?;
    Ok(Setup {
        _dir: dir,
        ledger,
        receiver,
    })
}

/// Sends `count` deliveries `flood-<i>` signed with the wrong key, [`IN_FLIGHT`] at a time;
/// `after_each` runs after every answer with the number answered so far. Returns the IDs
/// answered 401 and how many got no answer.
async fn flood(
    url: &str,
    count: usize,
    after_each: impl Fn(usize) + Send + Sync + 'static,
) -> anyhow::Result<(BTreeSet<String>, usize)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()?;
    let body = Arc::new(github_push("acme/hello", "main", "0123456789abcdef0123"));
    let signature = sign("not-the-secret", &[&body]);
    let answered = Arc::new(AtomicUsize::new(0));
    let after_each = Arc::new(after_each);
    let results: Vec<(String, Option<u16>)> = futures::stream::iter(0..count)
        .map(|i| {
            let (http, body, signature) = (http.clone(), body.clone(), signature.clone());
            let (answered, after_each) = (answered.clone(), after_each.clone());
            let url = format!("{url}/webhooks/github");
            async move {
                let id = format!("flood-{i}");
                let status = http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-github-event", "push")
                    .header("x-github-delivery", &id)
                    .header("x-hub-signature-256", signature)
                    .body(body.to_vec())
                    .send()
                    .await
                    .ok()
                    .map(|r| r.status().as_u16());
                if status.is_some() {
                    after_each(answered.fetch_add(1, Ordering::SeqCst) + 1);
                }
                (id, status)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut ok = BTreeSet::new();
    let mut unanswered = 0;
    for (id, status) in results {
        match status {
            Some(401) => {
                ok.insert(id);
            }
            Some(other) => anyhow::bail!("{id} answered {other}, expected 401"),
            None => unanswered += 1,
        }
    }
    Ok((ok, unanswered))
}

/// The delivery IDs of the `rejected` rows in the ledger; fails on a duplicate.
async fn rejected_rows(ledger: &str) -> anyhow::Result<BTreeSet<String>> {
    let rows = Ledger::open(ledger).await?.deliveries(u32::MAX).await?;
    let mut ids = BTreeSet::new();
    for row in rows.into_iter().filter(|r| r.outcome == "rejected") {
        assert_eq!(row.status, 401, "{row:?}");
        let id = row.delivery_id.unwrap_or_default();
        assert!(ids.insert(id.clone()), "{id} recorded twice");
    }
    Ok(ids)
}

#[tokio::test]
async fn a_flood_of_bad_signatures_leaves_one_row_per_request() -> anyhow::Result<()> {
    let s = setup().await?;
    let sent = 5_000;
    let (answered, unanswered) = flood(&s.receiver.url, sent, |_| {}).await?;
    assert_eq!((answered.len(), unanswered), (sent, 0));
    // Answered means recorded: the rows are there before the receiver is stopped.
    let rows = rejected_rows(&s.ledger).await?;
    assert_eq!(rows, answered, "one row per request, none missing");
    Ok(())
}

#[tokio::test]
async fn a_receiver_killed_mid_flood_has_a_row_for_every_request_it_answered() -> anyhow::Result<()>
{
    let s = setup().await?;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(s.receiver.pid())?);
    let sent = 20_000;
    // SIGKILL once 2,000 requests are answered: batches are being written and more are queued.
    let (answered, unanswered) = flood(&s.receiver.url, sent, move |n| {
        if n == 2_000 {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    })
    .await?;
    assert!(
        answered.len() >= 2_000 && unanswered > 0,
        "the receiver died mid-flood: {} answered, {unanswered} unanswered",
        answered.len()
    );
    let rows = rejected_rows(&s.ledger).await?;
    let lost: Vec<_> = answered.difference(&rows).take(5).collect();
    assert!(
        lost.is_empty(),
        "answered but not recorded (of {}): {lost:?}",
        answered.len()
    );
    // Rows beyond the answered ones are requests committed whose answer the kill cut off.
    assert!(
        rows.len() - answered.len() <= IN_FLIGHT,
        "{} rows for {} answers: at most the requests in flight may be recorded unanswered",
        rows.len(),
        answered.len()
    );
    Ok(())
}
