//! `cutover serve` end to end: real HTTP from the test to the real receiver binary, a real
//! Temporal dev server and worker behind it, and the ledger on SQLite (PostgreSQL in
//! `ledger.rs`).

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::Context;
use cutover_tests::serve::{
    GENERIC_SECRET, GITLAB_TOKEN, Receiver, github_push, post_github, sign,
};
use cutover_tests::{Harness, cutover, outcome, write_file};
use cutover_workflows::status::RolloutState;
use serde_json::Value;

/// A rules file in `dir` with one rule per provider, releasing a one-step plan of `service`.
fn rules(dir: &std::path::Path, service: &str) -> std::path::PathBuf {
    write_file(
        dir,
        "plan.yaml",
        &format!(
            "service: {service}\nenvironment: placeholder\nversion: \"0\"\nsteps:\n  - {{ name: hello, kind: command, command: \"true\" }}\n"
        ),
    );
    write_file(
        dir,
        "triggers.yaml",
        "rules:\n  - { name: main, provider: github, repository: acme/hello, event: push, branch: main, plan: plan.yaml, environment: staging }\n  - { name: previews, provider: github, repository: acme/hello, event: push, branch: \"feature/*\", plan: plan.yaml, environment: \"preview-{branch}\", version: commit_sha }\n  - { name: lab, provider: gitlab, repository: acme/hello, event: push, branch: main, plan: plan.yaml, environment: lab }\n  - { name: generic, provider: generic, repository: acme/hello, event: tag, tag: \"v*\", plan: plan.yaml, environment: production }\n",
    )
}

fn ledger_url(h: &Harness) -> String {
    format!("sqlite://{}/.cutover/ledger.db", h.dir.path().display())
}

async fn json(resp: reqwest::Response) -> anyhow::Result<(u16, Value)> {
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let v = serde_json::from_str(&text).with_context(|| format!("{status}: {text}"))?;
    Ok((status, v))
}

fn cli_json(h: &Harness, args: &[&str]) -> anyhow::Result<Value> {
    cutover_tests::cutover_json(h.dir.path(), None, args)
}

#[tokio::test]
async fn a_signed_github_push_starts_one_rollout_and_a_redelivery_starts_nothing()
-> anyhow::Result<()> {
    let h = Harness::start("webhook").await?;
    let rules = rules(h.dir.path(), "hooked");
    let rx = Receiver::start(
        h.dir.path(),
        &rules,
        &ledger_url(&h),
        &h.server.address,
        &h.queue,
        &[],
    )
    .await?;
    let http = reqwest::Client::new();
    let sha = "2f1c5a0d9e8b7c6a5f4e3d2c1b0a998877665544";
    let body = github_push("acme/hello", "main", sha);
    let started_at = std::time::Instant::now();
    let (status, first) =
        json(post_github(&http, &rx.url, "push", "delivery-1", body.clone()).await?).await?;
    println!("answered in {:?}", started_at.elapsed());
    assert_eq!(
        (status, first["outcome"].as_str()),
        (202, Some("started")),
        "{first}"
    );
    assert_eq!(first["workflow_id"], "rollout/hooked/staging");
    let run_id = first["run_id"].as_str().context("run id")?.to_owned();
    let summary = outcome(h.client(), "rollout/hooked/staging").await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    assert_eq!(summary.version, &sha[..12]);
    // With the release-ledger patch in its history, the run replays.
    cutover_tests::replays(
        h.client(),
        "rollout/hooked/staging",
        "rollout-webhook-ledger",
    )
    .await?;

    // The same delivery again — even after the rollout ended — returns the first run.
    let (status, again) =
        json(post_github(&http, &rx.url, "push", "delivery-1", body.clone()).await?).await?;
    assert_eq!(
        (status, again["outcome"].as_str()),
        (200, Some("duplicate")),
        "{again}"
    );
    assert_eq!(again["run_id"].as_str(), Some(run_id.as_str()));
    let runs = cutover_tests::count_runs(h.client(), "rollout/hooked/staging").await?;
    assert_eq!(runs, 1, "one run for one delivery");

    // A feature branch goes to its own preview environment.
    let (status, preview) = json(
        post_github(
            &http,
            &rx.url,
            "push",
            "delivery-2",
            github_push("acme/hello", "feature/Login", sha),
        )
        .await?,
    )
    .await?;
    assert_eq!(status, 202, "{preview}");
    assert_eq!(
        preview["workflow_id"],
        "rollout/hooked/preview-feature-login"
    );
    outcome(h.client(), "rollout/hooked/preview-feature-login").await?;

    // The ledger: both requests to delivery-1 and the release the rollout recorded itself.
    let rows = cli_json(
        &h,
        &[
            "webhooks",
            "deliveries",
            "--ledger",
            &ledger_url(&h),
            "--output",
            "json",
        ],
    )?;
    let outcomes: Vec<&str> = rows
        .as_array()
        .context("rows")?
        .iter()
        .filter(|r| r["delivery_id"] == "delivery-1")
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, vec!["duplicate", "started"], "{rows:#}");
    let releases = cutover_tests::wait_for(
        Duration::from_secs(10),
        "the release's final record",
        || {
            let r = cli_json(
                &h,
                &[
                    "releases",
                    "--service",
                    "hooked",
                    "--environment",
                    "staging",
                    "--ledger",
                    &ledger_url(&h),
                    "--output",
                    "json",
                ],
            )
            .ok();
            async move { r.filter(|r| r[0]["outcome"] == "succeeded") }
        },
    )
    .await?;
    let release = &releases[0];
    assert_eq!(release["run_id"].as_str(), Some(run_id.as_str()));
    assert_eq!(release["trigger"], "github");
    assert_eq!(release["trigger_detail"], "delivery delivery-1, rule main");
    assert_eq!(release["version"], &sha[..12]);
    assert!(release["finished_at"].as_i64() >= release["started_at"].as_i64());
    let text = cutover(
        h.dir.path(),
        None,
        &["releases", "--ledger", &ledger_url(&h)],
    );
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("hooked"),
        "{text:?}"
    );
    // The secret never reaches the log.
    assert!(!rx.log_text().contains("Secret to Everybody"));
    Ok(())
}

#[tokio::test]
async fn two_receivers_given_the_same_delivery_at_once_start_one_run() -> anyhow::Result<()> {
    let h = Harness::start("webhook-race").await?;
    let rules = rules(h.dir.path(), "raced");
    // Separate ledgers: only Temporal's request ID, derived from the delivery, keeps the
    // receivers from starting two runs.
    let a_ledger = format!("sqlite://{}/a.db", h.dir.path().display());
    let b_ledger = format!("sqlite://{}/b.db", h.dir.path().display());
    let a = Receiver::start(
        h.dir.path(),
        &rules,
        &a_ledger,
        &h.server.address,
        &h.queue,
        &[],
    )
    .await?;
    let b = Receiver::start(
        h.dir.path(),
        &rules,
        &b_ledger,
        &h.server.address,
        &h.queue,
        &[],
    )
    .await?;
    let http = reqwest::Client::new();
    let body = github_push(
        "acme/hello",
        "main",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    );
    let (ra, rb) = tokio::join!(
        post_github(&http, &a.url, "push", "race-1", body.clone()),
        post_github(&http, &b.url, "push", "race-1", body.clone())
    );
    let (sa, va) = json(ra?).await?;
    let (sb, vb) = json(rb?).await?;
    // The same request ID: the server starts one run and gives both receivers its ID.
    assert_eq!((sa, sb), (202, 202), "{va} / {vb}");
    assert_eq!(
        (va["outcome"].as_str(), vb["outcome"].as_str()),
        (Some("started"), Some("started"))
    );
    assert_eq!(va["run_id"], vb["run_id"], "{va} / {vb}");
    outcome(h.client(), "rollout/raced/staging").await?;
    assert_eq!(
        cutover_tests::count_runs(h.client(), "rollout/raced/staging").await?,
        1
    );
    Ok(())
}

#[tokio::test]
async fn bad_input_gets_its_status_and_a_ledger_row() -> anyhow::Result<()> {
    let h = Harness::start("webhook-bad").await?;
    let rules = rules(h.dir.path(), "refused");
    let rx = Receiver::start(
        h.dir.path(),
        &rules,
        &ledger_url(&h),
        &h.server.address,
        &h.queue,
        &[],
    )
    .await?;
    let http = reqwest::Client::new();
    let push = github_push(
        "acme/hello",
        "main",
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    );
    let post = |delivery: &str,
                content_type: &str,
                signature: Option<String>,
                event: &str,
                body: Vec<u8>| {
        let mut req = http
            .post(format!("{}/webhooks/github", rx.url))
            .header("content-type", content_type)
            .header("x-github-event", event)
            .body(body);
        if !delivery.is_empty() {
            req = req.header("x-github-delivery", delivery);
        }
        if let Some(s) = signature {
            req = req.header("x-hub-signature-256", s);
        }
        req.send()
    };
    let good = |b: &[u8]| Some(sign(cutover_tests::serve::GITHUB_SECRET, &[b]));
    let cases: Vec<(&str, reqwest::Response, u16, &str)> = vec![
        (
            "wrong signature",
            post(
                "bad-1",
                "application/json",
                Some(sign("guess", &[&push])),
                "push",
                push.clone(),
            )
            .await?,
            401,
            "signature mismatch",
        ),
        (
            "no signature",
            post("bad-2", "application/json", None, "push", push.clone()).await?,
            401,
            "signature mismatch",
        ),
        (
            "form encoded",
            post(
                "bad-3",
                "application/x-www-form-urlencoded",
                good(&push),
                "push",
                push.clone(),
            )
            .await?,
            415,
            "configure the webhook to send application/json",
        ),
        (
            "malformed JSON",
            post(
                "bad-4",
                "application/json",
                good(b"{\"ref\": \n  oops}"),
                "push",
                b"{\"ref\": \n  oops}".to_vec(),
            )
            .await?,
            400,
            "malformed JSON at line 2 column 3",
        ),
        (
            "no delivery ID",
            post("", "application/json", good(&push), "push", push.clone()).await?,
            400,
            "no delivery ID",
        ),
        (
            "unknown event",
            post(
                "bad-6",
                "application/json",
                good(&push),
                "star",
                push.clone(),
            )
            .await?,
            202,
            "ignored: unknown event `star`",
        ),
        (
            "no rule",
            post(
                "bad-7",
                "application/json",
                good(&github_push("acme/other", "main", "cc")),
                "push",
                github_push("acme/other", "main", "cc"),
            )
            .await?,
            202,
            "no rule matched github push of acme/other (branch main)",
        ),
        (
            "hostile sha",
            post(
                "bad-8",
                "application/json",
                good(&github_push("acme/hello", "main", "x; rm -rf /")),
                "push",
                github_push("acme/hello", "main", "x; rm -rf /"),
            )
            .await?,
            202,
            "has no usable commit SHA",
        ),
    ];
    for (what, resp, status, reason) in cases {
        let (got, v) = json(resp).await?;
        assert_eq!(got, status, "{what}: {v}");
        assert!(
            v["reason"].as_str().unwrap_or_default().contains(reason),
            "{what}: {v}"
        );
        if status == 401 {
            assert_eq!(
                v["reason"], "signature mismatch",
                "{what}: nothing more is said"
            );
        }
    }
    // Oversized, declared: refused before the body is read.
    let big = vec![b' '; 2 * 1024 * 1024];
    let (got, v) = json(post("bad-9", "application/json", None, "push", big).await?).await?;
    assert_eq!(got, 413, "{v}");
    // Unknown provider (on a new connection: the server closes the one whose oversized body
    // it refused unread, and a pooled client could pick it up just as it closes).
    let resp = reqwest::Client::new()
        .post(format!("{}/webhooks/bitbucket", rx.url))
        .body("{}")
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 404);

    let rows = cli_json(
        &h,
        &[
            "webhooks",
            "deliveries",
            "--last",
            "50",
            "--ledger",
            &ledger_url(&h),
            "--output",
            "json",
        ],
    )?;
    let rows = rows.as_array().context("rows")?;
    for (delivery, status) in [
        ("bad-1", 401),
        ("bad-2", 401),
        ("bad-3", 415),
        ("bad-4", 400),
        ("bad-6", 202),
        ("bad-7", 202),
        ("bad-8", 202),
        ("bad-9", 413),
    ] {
        let row = rows
            .iter()
            .find(|r| r["delivery_id"] == delivery)
            .with_context(|| format!("a row for {delivery}"))?;
        assert_eq!(row["status"], status, "{row}");
        assert_eq!(row["provider"], "github");
        assert!(
            row["source"]
                .as_str()
                .unwrap_or_default()
                .starts_with("127.0.0.1:"),
            "{row}"
        );
        assert!(!row["reason"].as_str().unwrap_or_default().is_empty());
    }
    assert!(
        rows.iter()
            .any(|r| r["delivery_id"].is_null() && r["status"] == 400),
        "the request without an ID has a row too"
    );
    assert_eq!(
        cutover_tests::count_runs(h.client(), "rollout/refused/staging").await?,
        0,
        "nothing started"
    );
    let metrics = http
        .get(format!("{}/metrics", rx.url))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains(
            "cutover_webhook_deliveries_total{provider=\"github\",outcome=\"rejected\"} 6"
        ),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn temporal_unreachable_is_503_with_retry_after_and_the_retry_starts_the_rollout()
-> anyhow::Result<()> {
    let h = Harness::start("webhook-503").await?;
    let rules = rules(h.dir.path(), "later");
    let dead = format!("127.0.0.1:{}", cutover_tests::free_port()?);
    let down = Receiver::start(h.dir.path(), &rules, &ledger_url(&h), &dead, &h.queue, &[]).await?;
    let http = reqwest::Client::new();
    let body = github_push(
        "acme/hello",
        "main",
        "dddddddddddddddddddddddddddddddddddddddd",
    );
    let resp = post_github(&http, &down.url, "push", "retry-1", body.clone()).await?;
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("30")
    );
    let (status, v) = json(resp).await?;
    assert_eq!(
        (status, v["outcome"].as_str()),
        (503, Some("unavailable")),
        "{v}"
    );
    let ready = http.get(format!("{}/readyz", down.url)).send().await?;
    assert_eq!(ready.status().as_u16(), 503);
    assert!(ready.text().await?.contains("temporal unreachable"));
    drop(down);
    // The provider retries the same delivery against a receiver that can reach Temporal.
    let up = Receiver::start(
        h.dir.path(),
        &rules,
        &ledger_url(&h),
        &h.server.address,
        &h.queue,
        &[],
    )
    .await?;
    let (status, v) = json(post_github(&http, &up.url, "push", "retry-1", body).await?).await?;
    assert_eq!(
        (status, v["outcome"].as_str()),
        (202, Some("started")),
        "{v}"
    );
    let ready = http.get(format!("{}/readyz", up.url)).send().await?;
    assert_eq!(ready.status().as_u16(), 200);
    let rows = cli_json(
        &h,
        &[
            "webhooks",
            "deliveries",
            "--ledger",
            &ledger_url(&h),
            "--output",
            "json",
        ],
    )?;
    let statuses: Vec<i64> = rows
        .as_array()
        .context("rows")?
        .iter()
        .filter(|r| r["delivery_id"] == "retry-1")
        .filter_map(|r| r["status"].as_i64())
        .collect();
    assert_eq!(statuses, vec![202, 503]);
    Ok(())
}

#[tokio::test]
async fn a_50_mib_body_is_refused_without_being_buffered() -> anyhow::Result<()> {
    let h = Harness::start("webhook-big").await?;
    let rules = rules(h.dir.path(), "big");
    let rx = Receiver::start(
        h.dir.path(),
        &rules,
        &ledger_url(&h),
        &h.server.address,
        &h.queue,
        &[],
    )
    .await?;
    let before = rx.peak_rss_kib();
    let addr = rx.url.trim_start_matches("http://").to_owned();
    // Declared 50 MiB: the answer comes before a byte of the body is sent.
    let mut tcp = std::net::TcpStream::connect(&addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        tcp,
        "POST /webhooks/github HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-github-delivery: big-1\r\nx-github-event: push\r\n\r\n",
        50 * 1024 * 1024
    )?;
    let mut answer = [0u8; 512];
    let n = tcp.read(&mut answer)?;
    let head = String::from_utf8_lossy(&answer[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // Streamed 50 MiB without a length (chunked): read up to the limit, then refused.
    let mut tcp = std::net::TcpStream::connect(&addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        tcp,
        "POST /webhooks/github HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nx-github-delivery: big-2\r\nx-github-event: push\r\n\r\n"
    )?;
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    for _ in 0..800 {
        let ok = write!(tcp, "{:x}\r\n", chunk.len()).is_ok()
            && tcp.write_all(&chunk).is_ok()
            && tcp.write_all(b"\r\n").is_ok();
        if !ok {
            break;
        }
        sent += chunk.len();
    }
    let _ = tcp.write_all(b"0\r\n\r\n");
    let n = tcp.read(&mut answer).unwrap_or(0);
    let head = String::from_utf8_lossy(&answer[..n]);
    println!(
        "streamed {} MiB before the receiver stopped reading; answer: {}",
        sent / (1024 * 1024),
        head.lines().next().unwrap_or("(connection closed)")
    );
    assert!(n == 0 || head.starts_with("HTTP/1.1 413"), "{head}");
    let after = rx.peak_rss_kib();
    println!("receiver peak RSS: {before} KiB before, {after} KiB after 2 × 50 MiB");
    assert!(
        after < before + 16 * 1024,
        "peak RSS grew from {before} to {after} KiB"
    );
    let rows = cli_json(
        &h,
        &[
            "webhooks",
            "deliveries",
            "--ledger",
            &ledger_url(&h),
            "--output",
            "json",
        ],
    )?;
    assert!(
        rows.as_array()
            .context("rows")?
            .iter()
            .any(|r| r["delivery_id"] == "big-1" && r["status"] == 413),
        "{rows:#}"
    );
    Ok(())
}

#[tokio::test]
async fn gitlab_tokens_and_generic_signatures_authenticate() -> anyhow::Result<()> {
    let h = Harness::start("webhook-providers").await?;
    let rules = rules(h.dir.path(), "multi");
    let http = reqwest::Client::new();
    let secrets_file = write_file(h.dir.path(), "github-secrets", "\nfrom-a-file\n");
    let rx = Receiver::start(
        h.dir.path(),
        &rules,
        &ledger_url(&h),
        &h.server.address,
        &h.queue,
        &[
            "--github-secret-file",
            secrets_file.to_str().unwrap_or_default(),
        ],
    )
    .await?;
    // A secret from the file verifies, beside the ones from the environment.
    let ping =
        br#"{"zen": "Keep it logically awesome.", "repository": {"full_name": "acme/hello"}}"#
            .to_vec();
    let resp = http
        .post(format!("{}/webhooks/github", rx.url))
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "ping-1")
        .header("x-hub-signature-256", sign("from-a-file", &[&ping]))
        .body(ping)
        .send()
        .await?;
    let (status, v) = json(resp).await?;
    assert_eq!(
        (status, v["reason"].as_str()),
        (202, Some("ignored: ping")),
        "{v}"
    );
    let gitlab_push = serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main", "after": "eeeeeeeeeeee", "checkout_sha": "eeeeeeeeeeee",
        "project": {"path_with_namespace": "acme/hello"}
    }))?;
    let gitlab = |token: &str| {
        http.post(format!("{}/webhooks/gitlab", rx.url))
            .header("content-type", "application/json")
            .header("x-gitlab-event", "Push Hook")
            .header("x-gitlab-event-uuid", "gl-1")
            .header("x-gitlab-token", token)
            .body(gitlab_push.clone())
            .send()
    };
    assert_eq!(gitlab("wrong").await?.status().as_u16(), 401);
    let (status, v) = json(gitlab(GITLAB_TOKEN).await?).await?;
    assert_eq!(
        (status, v["workflow_id"].as_str()),
        (202, Some("rollout/multi/lab")),
        "{v}"
    );

    let body =
        br#"{"repository": "acme/hello", "event": "tag", "tag": "v2.0.0", "commit": "ffff"}"#
            .to_vec();
    let generic = |ts: i64, secret: &str| {
        let signature = sign(secret, &[ts.to_string().as_bytes(), b".", &body]);
        http.post(format!("{}/webhooks/generic", rx.url))
            .header("content-type", "application/json; charset=utf-8")
            .header("x-cutover-delivery", "gen-1")
            .header("x-cutover-timestamp", ts.to_string())
            .header("x-cutover-signature", signature)
            .body(body.clone())
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        generic(now - 3600, GENERIC_SECRET).await?.status().as_u16(),
        401,
        "a replay from an hour ago"
    );
    assert_eq!(generic(now, "not-the-secret").await?.status().as_u16(), 401);
    let (status, v) = json(generic(now, GENERIC_SECRET).await?).await?;
    assert_eq!(
        (status, v["workflow_id"].as_str()),
        (202, Some("rollout/multi/production")),
        "{v}"
    );
    let summary = outcome(h.client(), "rollout/multi/production").await?;
    assert_eq!(summary.version, "v2.0.0");
    Ok(())
}

#[test]
fn triggers_validate_reports_rules_and_plans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = rules(dir.path(), "checked");
    let out = cutover(
        dir.path(),
        None,
        &["triggers", "validate", path.to_str().unwrap_or_default()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ok — 4 rules, 4 plans"), "{text}");
    assert!(
        text.contains("main: github push of acme/hello branch main → checked to staging"),
        "{text}"
    );

    write_file(
        dir.path(),
        "bad.yaml",
        "rules:\n  - name: x\n    provider: github\n    repository: acme/hello\n    event: pushh\n    plan: missing.yaml\n    environment: staging\n",
    );
    let out = cutover(dir.path(), None, &["triggers", "validate", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:5:12: rules[0].event: unknown event `pushh`"),
        "{err}"
    );

    write_file(
        dir.path(),
        "noplan.yaml",
        "rules:\n  - { name: x, provider: github, repository: acme/hello, event: push, plan: missing.yaml, environment: staging }\n",
    );
    let out = cutover(dir.path(), None, &["triggers", "validate", "noplan.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read plan"),
        "{:?}",
        out
    );
}

#[tokio::test]
async fn tls_serves_https_and_sigterm_shuts_down_cleanly() -> anyhow::Result<()> {
    let h = Harness::start("webhook-tls").await?;
    let rules = rules(h.dir.path(), "tls");
    let (cert, key) = (h.dir.path().join("cert.pem"), h.dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        // A leaf, not a CA: rustls refuses a CA certificate used as a server's own.
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()?;
    anyhow::ensure!(
        made.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let tls_args = [
        "--tls-cert",
        cert.to_str().unwrap_or_default(),
        "--tls-key",
        key.to_str().unwrap_or_default(),
    ];
    // The helper waits on plain HTTP /healthz, which a TLS listener refuses; start by hand.
    let port = cutover_tests::free_port()?;
    let mut child = std::process::Command::new(cutover_tests::bin("cutover"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--rules"])
        .arg(&rules)
        .args(["--ledger", &ledger_url(&h), "--task-queue", &h.queue])
        .args(tls_args)
        .env("CUTOVER_TEMPORAL_ADDRESS", &h.server.address)
        .env("CUTOVER_GITHUB_SECRET", "s")
        .env("CUTOVER_GITLAB_TOKEN", "s")
        .env("CUTOVER_GENERIC_SECRET", "s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&cert)?)?)
        .build()?;
    let url = format!("https://127.0.0.1:{port}/healthz");
    cutover_tests::wait_for(Duration::from_secs(30), "HTTPS /healthz", || {
        let (https, url) = (https.clone(), url.clone());
        async move {
            https
                .get(&url)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    })
    .await?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let status = cutover_tests::wait_for(Duration::from_secs(15), "serve to exit", || {
        let s = child.try_wait().ok().flatten();
        async move { s }
    })
    .await?;
    assert!(status.success(), "{status:?}");

    // Half a TLS configuration is refused with a clear message.
    let out = cutover(
        h.dir.path(),
        None,
        &[
            "serve",
            "--rules",
            rules.to_str().unwrap_or_default(),
            "--tls-cert",
            "x.pem",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tls-key"),
        "{out:?}"
    );
    Ok(())
}

#[tokio::test]
async fn serve_refuses_rules_whose_provider_has_no_secret() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rules = rules(dir.path(), "nosecret");
    let out = std::process::Command::new(cutover_tests::bin("cutover"))
        .current_dir(dir.path())
        .args(["serve", "--rules"])
        .arg(&rules)
        .env_remove("CUTOVER_GITHUB_SECRET")
        .env("CUTOVER_GITLAB_TOKEN", "t")
        .env("CUTOVER_GENERIC_SECRET", "g")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rule `main` uses github but no github secret is configured: set CUTOVER_GITHUB_SECRET or --github-secret-file"), "{err}");
    let out = std::process::Command::new(cutover_tests::bin("cutover"))
        .current_dir(dir.path())
        .args(["serve", "--rules"])
        .arg(&rules)
        .args(["--max-body", "10GiB"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown unit `GiB`"),
        "{out:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_delivery_is_refused_409_while_another_workflow_holds_the_service_lock()
-> anyhow::Result<()> {
    use futures::StreamExt;
    let h = Harness::start("webhook-locked").await?;
    let rules = rules(h.dir.path(), "held");
    let rx = Receiver::start(
        h.dir.path(),
        &rules,
        &ledger_url(&h),
        &h.server.address,
        &h.queue,
        &[],
    )
    .await?;
    // The lock of held/staging, taken for a running workflow as a drill takes it (the holder
    // must be running: a lock whose holder has ended is free). The stand-in holder is a
    // rollout of another service waiting for an approval.
    let holder_id = h
        .start_rollout("service: other\nenvironment: x\nversion: \"1\"\nsteps:\n  - { name: wait, kind: approval }\n")
        .await?;
    // Listing is eventually consistent: wait until the holder's run is visible.
    let run_id = cutover_tests::wait_for(
        Duration::from_secs(10),
        "the holder's run to be listed",
        || async {
            let mut runs = h.client().list_workflows(
                format!("WorkflowId = '{holder_id}'"),
                temporalio_client::WorkflowListOptions::default(),
            );
            runs.next()
                .await
                .and_then(Result::ok)
                .map(|run| run.run_id().to_owned())
        },
    )
    .await?;
    let request = cutover_workflows::lock::contracts::LockRequest {
        service: "held".to_owned(),
        environment: "staging".to_owned(),
        holder: cutover_workflows::lock::LockHolder {
            kind: "drill".to_owned(),
            workflow_id: holder_id.clone(),
            run_id: run_id.clone(),
        },
    };
    cutover_client::lock::acquire(h.client(), &h.queue, &request).await?;

    let http = reqwest::Client::new();
    let body = github_push(
        "acme/hello",
        "main",
        "2f1c5a0d9e8b7c6a5f4e3d2c1b0a998877665544",
    );
    let (status, answer) =
        json(post_github(&http, &rx.url, "push", "delivery-held", body.clone()).await?).await?;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (409, Some("locked")),
        "{answer}"
    );
    assert_eq!(
        answer["reason"],
        format!(
            "held in staging is busy: drill {holder_id} (run {run_id}) holds its lock; redeliver when it has ended"
        )
    );
    assert_eq!(
        cutover_tests::count_runs(h.client(), "rollout/held/staging").await?,
        0,
        "nothing was started"
    );
    // Released, the redelivery of the same delivery starts the rollout.
    cutover_client::lock::release(h.client(), &request).await?;
    let (status, answer) =
        json(post_github(&http, &rx.url, "push", "delivery-held", body).await?).await?;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (202, Some("started")),
        "{answer}"
    );
    let summary = outcome(h.client(), "rollout/held/staging").await?;
    assert_eq!(summary.outcome, RolloutState::Succeeded);
    Ok(())
}
