//! Approvals that can be trusted: a real dev server, the real worker (verifying assertions
//! with the public key `cutover auth keygen` printed), the real `cutover serve` with API
//! tokens and an OIDC issuer whose JWKS a local HTTP server publishes, and the ledger's audit
//! trail read after the workflow's history is deleted.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use cutover_tests::serve::Receiver;
use cutover_tests::{
    DevServer, WorkerProcess, cutover, outcome, status, temporal_cli, unique_queue, wait_for,
    write_file,
};
use cutover_workflows::RolloutWorkflow;
use cutover_workflows::control::{ApproveRequest, ControlRequest};
use cutover_workflows::guard::{Action, Assertion, Claims};
use cutover_workflows::plan::{Trigger, TriggerKind};
use cutover_workflows::status::StepState;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use serde_json::{Value, json};
use temporalio_client::WorkflowExecuteUpdateOptions;

/// `cutover auth token`: (token, hash line).
fn new_token(dir: &Path) -> (String, String) {
    let out = cutover(dir, None, &["auth", "token"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let token = text
        .lines()
        .find(|l| l.starts_with("cut_"))
        .expect("a token")
        .to_owned();
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("- "))
        .expect("a hash line")
        .to_owned();
    assert!(!hash.contains(&token), "only the hash goes in the file");
    (token, hash)
}

/// An OIDC issuer: an Ed25519 key, its JWKS served over HTTP.
struct Issuer {
    key: SigningKey,
    url: String,
}

impl Issuer {
    async fn start() -> anyhow::Result<Self> {
        let key = SigningKey::from_bytes(&[42; 32]);
        let jwks = json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA", "use": "sig",
            "x": B64URL.encode(key.verifying_key().to_bytes()),
        }]});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/jwks.json", listener.local_addr()?);
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { key, url })
    }

    /// A JWT for `claims`, signed by `key` (the issuer's unless told otherwise).
    fn jwt(&self, claims: &Value, key: Option<&SigningKey>) -> String {
        let pem = key
            .unwrap_or(&self.key)
            .to_pkcs8_pem(LineEnding::LF)
            .expect("pem");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("k1".to_owned());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).expect("key"),
        )
        .expect("jwt")
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn post(url: &str, auth: Option<&str>, body: &str) -> anyhow::Result<(u16, Value)> {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await?;
    let code = resp.status().as_u16();
    let bytes = resp.bytes().await?;
    Ok((code, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

/// A rules file and its plan: `cutover serve` needs one to start.
fn receiver_files(d: &Path) {
    write_file(
        d,
        "plan.yaml",
        "service: shop\nenvironment: prod\nversion: \"2\"\nsteps:\n  - { name: hello, kind: command, command: \"true\" }\n",
    );
    write_file(
        d,
        "rules.yaml",
        "rules:\n  - { name: main, provider: github, repository: acme/shop, event: push, branch: main, plan: plan.yaml, environment: prod }\n",
    );
}

#[tokio::test]
async fn a_guarded_approval_takes_only_verified_allowed_people_and_the_audit_outlives_history()
-> anyhow::Result<()> {
    let server = DevServer::start().await?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let queue = unique_queue("approvals");

    // The receiver's key; the worker gets its public half.
    let out = cutover(d, None, &["auth", "keygen", "assertion.key"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .context("public key")?
        .to_owned();
    assert_eq!(public.len(), 64, "{public}");
    let _worker = WorkerProcess::spawn_with(
        &server.address,
        &queue,
        d,
        &["--assertion-public-key", &public],
    )?;

    let (ana1, ana1_hash) = new_token(d);
    let (ana2, ana2_hash) = new_token(d);
    let (bob, bob_hash) = new_token(d);
    let (dave, dave_hash) = new_token(d);
    let tokens = |ana: &[&str]| {
        format!(
            "people:\n  ana:\n    tokens: [{}]\n  bob:\n    tokens: [{bob_hash}]\n  dave:\n    groups: [observers]\n    tokens: [{dave_hash}]\n",
            ana.join(", ")
        )
    };
    write_file(d, "tokens.yaml", &tokens(&[&ana1_hash, &ana2_hash]));
    let issuer = Issuer::start().await?;
    write_file(
        d,
        "access.yaml",
        &format!(
            "signing_key: {{ file: assertion.key }}\ntokens: tokens.yaml\noidc:\n  issuer: https://login.test\n  audience: cutover\n  jwks: {}\n  person_claim: email\n",
            issuer.url
        ),
    );
    receiver_files(d);
    let ledger = format!("sqlite://{}/.cutover/ledger.db", d.display());
    let receiver = Receiver::start(
        d,
        &d.join("rules.yaml"),
        &ledger,
        &server.address,
        &queue,
        &["--access", "access.yaml"],
    )
    .await?;

    // A release bob pushed: two approvals from ana, bob or the release group; bob may not
    // approve his own; only the release group may abort.
    let mut plan = cutover_tests::plan(&format!(
        "service: shop\nenvironment: prod\nversion: \"2\"\nseparation: author\ncontrols: {{ abort: [group:release] }}\nsteps:\n  - {{ name: sign-off, kind: approval, required: 2, approvers: [ana, bob, group:release] }}\n  - {{ name: after, kind: command, command: touch, args: [released], workdir: \"{}\" }}\n",
        d.display()
    ));
    plan.trigger = Some(Trigger {
        kind: TriggerKind::Github,
        detail: None,
        delivery: None,
        author: Some("bob".to_owned()),
    });
    let id = cutover_client::start_rollout(server.client(), &plan, &queue, None)
        .await?
        .workflow_id;
    wait_for(Duration::from_secs(30), "the approval to wait", || async {
        let st = status(server.client(), &id).await?;
        (st.steps[0].state == StepState::Running).then_some(())
    })
    .await?;
    let endpoint = |action: &str| format!("{}/rollouts/shop/prod/{action}", receiver.url);
    let handle = server
        .client()
        .get_workflow_handle::<RolloutWorkflow>(id.clone());

    // Straight to Temporal, without an assertion: refused, with the way to do it.
    let direct = handle
        .execute_update(
            RolloutWorkflow::approve,
            ApproveRequest {
                approver: "ana".to_owned(),
                comment: None,
                assertion: None,
            },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .expect_err("no identity");
    assert!(
        format!("{direct:?}").contains("needs a verified identity"),
        "{direct:?}"
    );
    let cli = Command::new(temporal_cli()?)
        .args([
            "workflow",
            "update",
            "execute",
            "--address",
            &server.address,
            "-w",
            &id,
        ])
        .args(["--name", "approve", "--input", r#"{"approver":"ana"}"#])
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&cli.stdout),
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(
        !cli.status.success() && said.contains("verified identity"),
        "{said}"
    );

    // A forged assertion (another key) and a replayed one.
    let claims = |action, nonce: &str| Claims {
        action,
        workflow_id: id.clone(),
        step: None,
        person: "ana".to_owned(),
        groups: vec!["release".to_owned()],
        method: "token".to_owned(),
        issued_at: now(),
        nonce: nonce.to_owned(),
    };
    let client = server.client().clone();
    let send = |a: Assertion, action| {
        let handle = client.get_workflow_handle::<RolloutWorkflow>(id.clone());
        async move {
            handle
                .execute_update(
                    RolloutWorkflow::control,
                    ControlRequest {
                        action,
                        by: "ana".to_owned(),
                        reason: None,
                        full: false,
                        assertion: Some(a),
                    },
                    WorkflowExecuteUpdateOptions::default(),
                )
                .await
        }
    };
    let forged = send(
        Assertion::sign(
            &SigningKey::from_bytes(&[9; 32]),
            &claims(Action::Pause, "f"),
        ),
        Action::Pause,
    )
    .await?;
    assert!(
        !forged.accepted && forged.message.contains("does not verify"),
        "{forged:?}"
    );
    let real_key = cutover_workflows::guard::parse_signing_key(&std::fs::read_to_string(
        d.join("assertion.key"),
    )?)
    .map_err(anyhow::Error::msg)?;
    let pause = Assertion::sign(&real_key, &claims(Action::Pause, "p1"));
    let first = send(pause.clone(), Action::Pause).await?;
    assert!(first.accepted, "{first:?}");
    let resume = send(
        Assertion::sign(&real_key, &claims(Action::Resume, "r1")),
        Action::Resume,
    )
    .await?;
    assert!(resume.accepted, "{resume:?}");
    let replayed = send(pause, Action::Pause).await?;
    assert!(
        !replayed.accepted && replayed.message.contains("already used"),
        "{replayed:?}"
    );
    assert!(
        status(server.client(), &id)
            .await
            .context("status")?
            .paused
            .is_none(),
        "the replay paused nothing"
    );

    // Hostile requests to the endpoint: the right status, nothing changes.
    let bearer = |t: &str| format!("Bearer {t}");
    for (auth, body, url, want) in [
        (None, "{}", endpoint("approve"), 401),
        (
            Some("Basic YW5hOnB3".to_owned()),
            "{}",
            endpoint("approve"),
            401,
        ),
        (
            Some("Bearer not-a-token".to_owned()),
            "{}",
            endpoint("approve"),
            401,
        ),
        (Some(bearer(&ana1)), "{not json", endpoint("approve"), 400),
        (
            Some(bearer(&ana1)),
            r#"{"reason": 5}"#,
            endpoint("approve"),
            400,
        ),
        (
            Some(bearer(&ana1)),
            &"x".repeat(100_000),
            endpoint("approve"),
            413,
        ),
        (
            Some(bearer(&ana1)),
            "{}",
            format!("{}/rollouts/nope/prod/approve", receiver.url),
            404,
        ),
        (Some(bearer(&ana1)), "{}", endpoint("launch"), 404),
        (Some(bearer(&ana1)), "{}", endpoint("promote"), 409),
    ] {
        let (code, body) = post(&url, auth.as_deref(), body).await?;
        assert_eq!(code, want, "{url} {auth:?}: {body}");
        assert!(
            !body.to_string().contains(&ana1),
            "the token is never echoed: {body}"
        );
    }
    // A person not in `approvers:`, and the author.
    let (code, body) = post(&endpoint("approve"), Some(&bearer(&dave)), "{}").await?;
    assert_eq!(code, 403, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or("")
            .contains("dave may not approve"),
        "{body}"
    );
    let (code, body) = post(&endpoint("approve"), Some(&bearer(&bob)), "{}").await?;
    assert_eq!(code, 403, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or("")
            .contains("separation: author"),
        "{body}"
    );
    // Only the release group may abort.
    let (code, body) = post(
        &endpoint("abort"),
        Some(&bearer(&ana1)),
        r#"{"reason":"no"}"#,
    )
    .await?;
    assert_eq!(code, 403, "{body}");
    // Bad OIDC tokens.
    let good = json!({"iss": "https://login.test", "aud": "cutover", "exp": now() + 600, "email": "carol", "groups": ["release"]});
    let mut expired = good.clone();
    expired["exp"] = json!(now() - 600);
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("other");
    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("https://evil.test");
    for (jwt, want) in [
        (issuer.jwt(&expired, None), "expired"),
        (issuer.jwt(&wrong_aud, None), "audience"),
        (issuer.jwt(&wrong_iss, None), "issued by"),
        (
            issuer.jwt(&good, Some(&SigningKey::from_bytes(&[5; 32]))),
            "signature",
        ),
    ] {
        let (code, body) = post(&endpoint("approve"), Some(&bearer(&jwt)), "{}").await?;
        assert_eq!(code, 401, "{want}: {body}");
        assert!(
            body["reason"].as_str().unwrap_or("").contains(want),
            "{want}: {body}"
        );
    }
    let st = status(server.client(), &id).await.context("status")?;
    assert!(
        st.steps[0].approvals.is_empty(),
        "nothing counted yet: {:?}",
        st.steps[0].approvals
    );

    // Ana with two tokens counts once.
    let (code, body) = post(
        &endpoint("approve"),
        Some(&bearer(&ana1)),
        r#"{"comment":"lgtm"}"#,
    )
    .await?;
    assert_eq!(
        (code, body["verified"].as_str()),
        (200, Some("token")),
        "{body}"
    );
    let (code, body) = post(&endpoint("approve"), Some(&bearer(&ana2)), "{}").await?;
    assert_eq!(code, 200, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("had already approved"),
        "{body}"
    );
    // Rotation without a restart: ana's first token replaced by a new one.
    let (ana3, ana3_hash) = new_token(d);
    write_file(d, "tokens.yaml", &tokens(&[&ana3_hash, &ana2_hash]));
    let (code, _) = post(&endpoint("approve"), Some(&bearer(&ana1)), "{}").await?;
    assert_eq!(code, 401, "the revoked token is refused");
    let (code, body) = post(&endpoint("approve"), Some(&bearer(&ana3)), "{}").await?;
    assert_eq!(code, 200, "the new token works at once: {body}");
    assert!(!d.join("released").exists(), "one distinct approver so far");

    // Carol, through OIDC, in the release group: the second approval, via the CLI.
    let token_file = write_file(d, "carol.jwt", &issuer.jwt(&good, None));
    let out = cutover(
        d,
        Some(&server.address),
        &[
            "rollout",
            "approve",
            &id,
            "--via",
            &receiver.url,
            "--token-file",
            token_file.to_str().context("path")?,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("carol (oidc)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    outcome(server.client(), &id)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert!(d.join("released").exists());

    // The history replays (with the key the worker verified with), and says who was refused.
    cutover_workflows::guard::set_verifying_keys(vec![
        cutover_workflows::guard::parse_verifying_key(&public).map_err(anyhow::Error::msg)?,
    ]);
    cutover_tests::replays(server.client(), &id, "approval-guarded").await?;
    let history = cutover(d, Some(&server.address), &["rollout", "history", &id]);
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(
        text.contains("approve by carol (oidc) at step `sign-off`"),
        "{text}"
    );
    assert!(
        text.contains("approve by dave (token) at step `sign-off` — REFUSED: dave may not approve"),
        "{text}"
    );

    // The history goes; the trail stays.
    // `temporal workflow delete -w` asks for confirmation on its standard input.
    let mut delete = Command::new(temporal_cli()?)
        .args([
            "workflow",
            "delete",
            "--address",
            &server.address,
            "-w",
            &id,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(&mut delete.stdin.take().context("stdin")?, b"y\n")?;
    let deleted = delete.wait_with_output()?;
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    wait_for(
        Duration::from_secs(60),
        "the history to be deleted",
        || async {
            cutover_tests::history_events(server.client(), &id)
                .await
                .is_err()
                .then_some(())
        },
    )
    .await?;
    let rows = wait_for(Duration::from_secs(30), "the audit rows", || async {
        let out = cutover(d, None, &["audit", "--output", "json", "--ledger", &ledger]);
        let rows: Vec<Value> = serde_json::from_slice(&out.stdout).ok()?;
        let accepted = rows
            .iter()
            .filter(|r| r["outcome"] == "accepted" && r["action"] == "approve")
            .count();
        (accepted == 4).then_some(rows)
    })
    .await?;
    let has = |action: &str, outcome: &str, person: &str, verified: &str, reason: &str| {
        rows.iter().any(|r| {
            r["action"] == action
                && r["outcome"] == outcome
                && r["person"] == person
                && r["verified"] == verified
                && r["reason"].as_str().unwrap_or("").contains(reason)
        })
    };
    assert!(
        has("approve", "refused", "ana", "claimed", "verified identity"),
        "direct update: {rows:#?}"
    );
    assert!(
        has("pause", "refused", "ana", "claimed", "does not verify"),
        "forged"
    );
    assert!(
        has("pause", "refused", "ana", "claimed", "already used"),
        "replayed"
    );
    assert!(
        has("approve", "refused", "unknown", "none", "no Authorization"),
        "401"
    );
    assert!(
        has("approve", "refused", "dave", "token", "may not approve"),
        "not an approver"
    );
    assert!(
        has("approve", "refused", "bob", "token", "separation: author"),
        "author"
    );
    assert!(
        has(
            "abort",
            "refused",
            "ana",
            "token",
            "plan allows group:release"
        ),
        "controls"
    );
    assert!(
        has("approve", "refused", "unknown", "none", "expired"),
        "expired JWT"
    );
    assert!(
        has("approve", "accepted", "ana", "token", "lgtm"),
        "ana's approval"
    );
    assert!(
        has("approve", "accepted", "carol", "oidc", ""),
        "carol's approval"
    );
    assert!(
        has("pause", "accepted", "ana", "token", ""),
        "the signed pause"
    );

    // The chain holds, and an edited row is found.
    let ok = cutover(d, None, &["audit", "verify", "--ledger", &ledger]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let db = d.join(".cutover/ledger.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await?;
    sqlx::query("UPDATE audit SET person = 'mallory' WHERE position = 2")
        .execute(&pool)
        .await?;
    let bad = cutover(d, None, &["audit", "verify", "--ledger", &ledger]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("row 2"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn a_refusal_at_an_open_approval_rolls_back_and_is_audited() -> anyhow::Result<()> {
    let h = cutover_tests::Harness::start("refuse").await?;
    let id = h
        .start_rollout("service: gate\nenvironment: test\nversion: \"1\"\nsteps:\n  - { name: sign-off, kind: approval }\n")
        .await?;
    // `rollout wait`: a script's way to act at the right moment.
    let wait = |args: &[&str]| {
        let mut all = vec!["rollout", "wait", id.as_str()];
        all.extend_from_slice(args);
        cutover(h.dir.path(), Some(&h.server.address), &all)
    };
    let reached = wait(&["--for", "approval", "--timeout", "60s", "--output", "json"]);
    assert!(
        reached.status.success(),
        "{}",
        String::from_utf8_lossy(&reached.stderr)
    );
    let said: Value = serde_json::from_slice(&reached.stdout)?;
    assert_eq!(
        (said["reached"].as_str(), said["step"].as_str()),
        (Some("waiting for approval"), Some("sign-off"))
    );
    let not_paused = wait(&["--for", "paused", "--timeout", "1s"]);
    assert_eq!(not_paused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&not_paused.stderr).contains("was not paused within 1s"));
    assert_eq!(
        wait(&["--for", "lunch"]).status.code(),
        Some(2),
        "bad usage"
    );
    let out = cutover(
        h.dir.path(),
        Some(&h.server.address),
        &[
            "rollout",
            "refuse",
            &id,
            "--reason",
            "not this week",
            "--by",
            "lee",
            "--output",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        (
            answer["accepted"].as_bool(),
            answer["action"].as_str(),
            answer["by"].as_str(),
            answer["id"].as_str()
        ),
        (Some(true), Some("refuse"), Some("lee"), Some(id.as_str()))
    );
    let done = wait(&["--for", "done"]);
    assert_eq!(done.status.code(), Some(1), "it ended, but not succeeded");
    assert!(
        String::from_utf8_lossy(&done.stderr)
            .contains("ended failed without being succeeded: step `sign-off` failed"),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let failed = outcome(h.client(), &id).await.expect_err("refused");
    // An approval has no attempts to count.
    let history = cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "history", &id],
    );
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(
        text.contains("step `sign-off` failed: ApprovalRefused: refused by lee"),
        "{text}"
    );
    assert!(!text.contains("attempt"), "{text}");
    let shown = cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "status", &id],
    );
    assert!(
        !String::from_utf8_lossy(&shown.stdout).contains("attempt 1"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );
    assert!(
        format!("{failed:?}").contains("refused by lee: not this week"),
        "{failed:?}"
    );
    let st = status(h.client(), &id).await.context("status")?;
    let action = st.actions.last().context("an action")?;
    assert_eq!(
        (
            action.action.as_str(),
            action.by.as_str(),
            action.verified.as_deref()
        ),
        ("refuse", "lee", Some("claimed"))
    );
    cutover_tests::replays(h.client(), &id, "rollout-approval-refused-audited").await?;
    let ledger = format!("sqlite://{}/.cutover/ledger.db", h.dir_str());
    let rows = wait_for(Duration::from_secs(30), "the audit row", || async {
        let out = cutover(
            h.dir.path(),
            None,
            &[
                "audit",
                "--service",
                "gate",
                "--output",
                "json",
                "--ledger",
                &ledger,
            ],
        );
        let rows: Vec<Value> = serde_json::from_slice(&out.stdout).ok()?;
        (!rows.is_empty()).then_some(rows)
    })
    .await?;
    assert_eq!(rows[0]["action"], "refuse");
    assert_eq!(rows[0]["reason"], "not this week");
    Ok(())
}

#[tokio::test]
async fn a_bad_access_configuration_is_refused_at_start_with_what_to_fix() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    receiver_files(d);
    write_file(d, "good.key", &"ab".repeat(32));
    write_file(
        d,
        "raw-tokens.yaml",
        "people:\n  ana:\n    tokens: [cut_supersecretvalue]\n",
    );
    write_file(
        d,
        "good-tokens.yaml",
        &format!("people:\n  ana:\n    tokens: [sha256:{}]\n", "0".repeat(64)),
    );
    write_file(d, "jwks.json", "{not json");
    let secret = write_file(d, "github.secret", "s3cret");
    let cases = [
        ("tokens: good-tokens.yaml\n", "signing_key"),
        (
            "signing_key: { file: missing.key }\ntokens: good-tokens.yaml\n",
            "cannot read the signing key",
        ),
        (
            "signing_key: { file: plan.yaml }\ntokens: good-tokens.yaml\n",
            "signing_key: expected 64 hex digits",
        ),
        (
            "signing_key: { file: good.key }\n",
            "name `tokens:`, `oidc:` or both",
        ),
        (
            "signing_key: { file: good.key }\ntokens: good-tokens.yaml\nextra: 1\n",
            "unknown field `extra`",
        ),
        (
            "signing_key: { file: good.key }\ntokens: raw-tokens.yaml\n",
            "people.ana.tokens[0]: expected `sha256:`",
        ),
        (
            "signing_key: { file: good.key }\noidc: { issuer: https://i, audience: a, jwks: jwks.json }\n",
            "the JWKS is not valid",
        ),
        (
            "signing_key: { env: CUTOVER_TEST_UNSET_KEY }\ntokens: good-tokens.yaml\n",
            "CUTOVER_TEST_UNSET_KEY is not set",
        ),
        ("signing_key: [\n", "access-8.yaml:2:1: invalid YAML"),
    ];
    for (i, (text, want)) in cases.into_iter().enumerate() {
        let access = write_file(d, &format!("access-{i}.yaml"), text);
        let ledger = format!("sqlite://{}/l{i}.db", d.display());
        let err = match cutover::serve::Receiver::from_args([
            "--rules",
            d.join("rules.yaml").to_str().context("path")?,
            "--ledger",
            &ledger,
            "--access",
            access.to_str().context("path")?,
            "--github-secret-file",
            secret.to_str().context("path")?,
        ])
        .await
        {
            Ok(_) => anyhow::bail!("{text}: accepted"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(want), "{text}: `{err}` should say `{want}`");
        assert!(
            !err.contains("supersecretvalue"),
            "no token in errors: {err}"
        );
    }
    Ok(())
}

#[test]
fn the_cli_says_what_is_wrong_with_audit_and_via_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let err = |args: &[&str], code: i32, want: &str| {
        let mut cmd = Command::new(cutover_tests::bin("cutover"));
        cmd.current_dir(d).args(args).env_remove("CUTOVER_TOKEN");
        let out = cmd.output().expect("cutover");
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {text}");
        assert!(
            text.contains(want),
            "{args:?}: `{text}` should say `{want}`"
        );
    };
    err(
        &["audit", "--since", "last tuesday"],
        2,
        "neither a duration",
    );
    err(&["audit", "--last", "0"], 2, "--last");
    err(
        &[
            "rollout",
            "approve",
            "rollout/a/b",
            "--via",
            "http://127.0.0.1:1",
        ],
        2,
        "set CUTOVER_TOKEN or pass --token-file",
    );
    err(
        &[
            "rollout",
            "pause",
            "not-an-id",
            "--via",
            "http://127.0.0.1:1",
            "--token-file",
            "/dev/null",
        ],
        2,
        "the token is empty",
    );
    std::fs::write(d.join("t"), "tok").expect("write");
    err(
        &[
            "rollout",
            "pause",
            "a/b/c/d",
            "--via",
            "http://127.0.0.1:1",
            "--token-file",
            "t",
        ],
        2,
        "is not a rollout ID",
    );
    err(
        &[
            "rollout",
            "resume",
            "a/b",
            "--via",
            "http://127.0.0.1:1",
            "--token-file",
            "t",
        ],
        1,
        "cannot reach http://127.0.0.1:1",
    );
    std::fs::write(d.join("k"), "x").expect("write");
    err(&["auth", "keygen", "k"], 2, "never overwritten");
    assert_eq!(
        std::fs::read_to_string(d.join("k")).expect("read"),
        "x",
        "left as it was"
    );
    // An empty ledger verifies, and says so.
    let out = cutover(d, None, &["audit", "verify"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("intact: 0 rows")
    );
}
