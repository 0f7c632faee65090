//! Notifications for real: the real worker sends a plan's `notify:` messages over real HTTP to
//! a server the test runs on 127.0.0.1 — a Slack-style hook and a signed generic webhook, whose
//! signatures the test verifies with the secret it gave the worker through a file — and a
//! notifier that answers 500 is retried without holding the rollout back.

use std::time::Duration;

use cutover_tests::hooks::{header, serve};
use cutover_tests::serve::sign;
use cutover_tests::{Harness, approve, outcome, status, wait_for, write_file};
use cutover_workflows::status::StepState;
use serde_json::Value;

const SECRET: &str = "a-shared-notification-key";

#[tokio::test]
async fn a_rollout_that_waits_for_approval_then_fails_is_told_in_order_and_signed()
-> anyhow::Result<()> {
    let (url, inbox) = serve().await?;
    let h = Harness::start("notify").await?;
    let dir = h.dir.path();
    let slack_url = write_file(dir, "slack-url", &format!("{url}/slack\n"));
    let hook_url = write_file(dir, "hook-url", &format!("{url}/hook\n"));
    let hook_key = write_file(dir, "hook-key", &format!("{SECRET}\n"));
    let plan = format!(
        "service: told\nenvironment: test\nversion: \"7\"\non_failure: fail\nnotify:\n  - {{ name: team, slack: {{ file: \"{}\" }}, on: [approval, failed] }}\n  - name: bot\n    webhook: {{ url: {{ file: \"{}\" }}, secret: {{ file: \"{}\" }} }}\nsteps:\n  - {{ name: sign-off, kind: approval, required: 1 }}\n  - {{ name: boom, kind: command, command: \"false\", retry: {{ maximum_attempts: 1 }} }}\n",
        slack_url.display(),
        hook_url.display(),
        hook_key.display()
    );
    let id = h.start_rollout(&plan).await?;
    // Waiting for approval: both notifiers hear of it, the hook first of the start.
    wait_for(Duration::from_secs(30), "the approval message", || async {
        (inbox.on("hook").len() >= 2 && !inbox.on("slack").is_empty()).then_some(())
    })
    .await?;
    let slack = inbox.on("slack");
    let text: Value = serde_json::from_slice(&slack[0].body)?;
    let text = text["text"].as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("waiting for approval")
            && text.contains(&format!("cutover rollout approve {id} --approver NAME")),
        "{text}"
    );
    approve(h.client(), &id, "alice").await?;
    let ended = outcome(h.client(), &id).await;
    assert!(ended.is_err(), "the rollout fails at `boom`");

    let hook = inbox.on("hook");
    let events: Vec<String> = hook.iter().map(|r| header(r, "x-cutover-event")).collect();
    assert_eq!(events, ["started", "approval", "failed"], "in order");
    let slack_events: Vec<String> = inbox
        .on("slack")
        .iter()
        .map(|r| header(r, "x-cutover-event"))
        .collect();
    assert_eq!(slack_events, ["approval", "failed"], "only what `on` asks");
    let mut deliveries = std::collections::BTreeSet::new();
    for r in &hook {
        // The signature verifies with the shared key over `<timestamp>.<body>`.
        let timestamp = header(r, "x-cutover-timestamp");
        let parts: [&[u8]; 3] = [timestamp.as_bytes(), b".", &r.body];
        assert_eq!(header(r, "x-cutover-signature"), sign(SECRET, &parts));
        assert_ne!(
            header(r, "x-cutover-signature"),
            sign("another key", &parts)
        );
        assert!(deliveries.insert(header(r, "x-cutover-delivery")));
    }
    let failed: Value = serde_json::from_slice(&hook[2].body)?;
    assert_eq!(failed["event"], "failed");
    assert_eq!(failed["service"], "told");
    assert_eq!(failed["version"], "7");
    assert_eq!(failed["step"], "boom");
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("step `boom` failed")),
        "{failed}"
    );
    // Nothing secret went out or into the history: no URL, no key.
    for r in hook.iter().chain(inbox.on("slack").iter()) {
        let body = String::from_utf8_lossy(&r.body);
        assert!(!body.contains(SECRET) && !body.contains(&url), "{body}");
    }
    let history = cutover_tests::history_events(h.client(), &id).await?;
    let history = serde_json::to_string(&history)?;
    assert!(!history.contains(SECRET) && !history.contains(&url));
    cutover_tests::replays(h.client(), &id, "rollout-notify-approval-failed").await?;
    // `status` shows each delivery.
    let st = status(h.client(), &id).await.expect("status");
    let sent: Vec<(String, String, u32)> = st
        .notifications
        .iter()
        .map(|n| {
            (
                n.notifier.clone(),
                serde_json::to_value(n.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                n.attempts,
            )
        })
        .collect();
    assert_eq!(sent.len(), 5, "{sent:?}");
    assert!(
        sent.iter()
            .all(|(_, state, attempts)| state == "sent" && *attempts == 1),
        "{sent:?}"
    );
    h.shutdown().await
}

#[tokio::test]
async fn a_notifier_that_answers_500_is_retried_and_never_holds_the_rollout() -> anyhow::Result<()>
{
    let (url, inbox) = serve().await?;
    let h = Harness::start("notify-down").await?;
    let dir = h.dir.path();
    let down = write_file(dir, "down-url", &format!("{url}/down"));
    let up = write_file(dir, "up-url", &format!("{url}/up"));
    let plan = format!(
        "service: unheard\nenvironment: test\nversion: \"1\"\nnotify:\n  - {{ name: down, slack: {{ file: \"{}\" }} }}\n  - {{ name: up, slack: {{ file: \"{}\" }} }}\nsteps:\n  - {{ name: one, kind: command, command: \"true\" }}\n  - {{ name: two, kind: command, command: \"true\" }}\n",
        down.display(),
        up.display()
    );
    let id = h.start_rollout(&plan).await?;
    let summary = outcome(h.client(), &id).await?;
    assert_eq!(summary.outcome.as_str(), "succeeded");
    let st = status(h.client(), &id).await.expect("status");
    // The steps ran at once: they did not wait for the notifier's retries (1 + 2 + 4 + 8 s).
    let steps_took = st.steps[1].finished_at.expect("finished") - st.started_at.expect("started");
    assert!(
        steps_took < chrono::Duration::seconds(5),
        "steps took {steps_took}"
    );
    assert!(st.steps.iter().all(|s| s.state == StepState::Succeeded));
    // The notifier that is down: its first message was retried until the run ended, then
    // given up (the last message matters more); the last got its own attempts, all failed.
    let down: Vec<_> = st
        .notifications
        .iter()
        .filter(|n| n.notifier == "down")
        .collect();
    assert_eq!(down.len(), 2, "{:?}", st.notifications);
    for n in &down {
        assert_eq!(serde_json::to_value(n.state)?, "failed", "{n:?}");
        let error = n.last_error.as_deref().unwrap_or_default();
        assert!(error.contains("500"), "{n:?}");
        assert!(!error.contains(&url), "no URL in errors: {error}");
    }
    assert!(
        down[0].attempts < cutover_workflows::notify::ATTEMPTS
            && down[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("not retried: the run ended")),
        "{:?}",
        down[0]
    );
    assert_eq!(down[1].attempts, cutover_workflows::notify::FINAL_ATTEMPTS);
    // Every attempt was one request.
    assert_eq!(
        inbox.on("down").len() as u32,
        down[0].attempts + down[1].attempts
    );
    // The notifier that is up was not held back by the other: both messages, once each.
    let up: Vec<_> = st
        .notifications
        .iter()
        .filter(|n| n.notifier == "up")
        .collect();
    assert!(
        up.iter()
            .all(|n| serde_json::to_value(n.state).is_ok_and(|v| v == "sent") && n.attempts == 1),
        "{up:?}"
    );
    assert_eq!(inbox.on("up").len(), 2);
    cutover_tests::replays(h.client(), &id, "rollout-notify-down").await?;
    h.shutdown().await
}

#[tokio::test]
async fn a_trigger_rules_notifiers_join_its_plans_for_the_rollouts_it_starts() -> anyhow::Result<()>
{
    let (url, inbox) = serve().await?;
    let h = Harness::start("notify-rule").await?;
    let dir = h.dir.path();
    let team = write_file(dir, "team-url", &format!("{url}/team"));
    let ci = write_file(dir, "ci-url", &format!("{url}/ci"));
    write_file(
        dir,
        "plan.yaml",
        &format!(
            "service: ruled\nenvironment: placeholder\nversion: \"0\"\nnotify:\n  - {{ name: team, slack: {{ file: \"{}\" }}, on: [succeeded] }}\nsteps:\n  - {{ name: hello, kind: command, command: \"true\" }}\n",
            team.display()
        ),
    );
    let rules = write_file(
        dir,
        "triggers.yaml",
        &format!(
            "rules:\n  - {{ name: main, provider: github, repository: acme/hello, event: push, branch: main, plan: plan.yaml, environment: staging, notify: [{{ name: ci, slack: {{ file: \"{}\" }} }}] }}\n",
            ci.display()
        ),
    );
    let ledger = format!("sqlite://{}/.cutover/ledger.db", dir.display());
    let rx = cutover_tests::serve::Receiver::start(
        dir,
        &rules,
        &ledger,
        &h.server.address,
        &h.queue,
        &[],
    )
    .await?;
    let sha = "2f1c5a0d9e8b7c6a5f4e3d2c1b0a998877665544";
    let body = cutover_tests::serve::github_push("acme/hello", "main", sha);
    let answer = cutover_tests::serve::post_github(
        &reqwest::Client::new(),
        &rx.url,
        "push",
        "delivery-n1",
        body,
    )
    .await?;
    assert_eq!(answer.status().as_u16(), 202);
    outcome(h.client(), "rollout/ruled/staging").await?;
    let ci_events: Vec<String> = inbox
        .on("ci")
        .iter()
        .map(|r| header(r, "x-cutover-event"))
        .collect();
    assert_eq!(ci_events, ["started", "succeeded"]);
    assert_eq!(inbox.on("team").len(), 1, "the plan's own notifier too");

    // A rule's notifier may not take the name of one of its plan's.
    let clash = write_file(
        dir,
        "clash.yaml",
        "rules:\n  - { name: main, provider: github, repository: acme/hello, event: push, branch: main, plan: plan.yaml, environment: staging, notify: [{ name: team, slack: { env: X } }] }\n",
    );
    let out = cutover_tests::cutover(
        dir,
        None,
        &["triggers", "validate", clash.to_str().unwrap_or_default()],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notifier `team` is also in its plan `plan.yaml`"),
        "{err}"
    );
    h.shutdown().await
}

#[tokio::test]
async fn a_pause_is_told_with_who_why_and_the_command_that_resumes() -> anyhow::Result<()> {
    let (url, inbox) = serve().await?;
    let h = Harness::start("notify-pause").await?;
    let hook = write_file(h.dir.path(), "hook-url", &format!("{url}/ops"));
    let plan = format!(
        "service: paused\nenvironment: test\nversion: \"2\"\nnotify:\n  - {{ name: ops, slack: {{ file: \"{}\" }}, on: [paused, succeeded] }}\nsteps:\n  - {{ name: sign-off, kind: approval, required: 1 }}\n  - {{ name: after, kind: command, command: \"true\" }}\n",
        hook.display()
    );
    let id = h.start_rollout(&plan).await?;
    wait_for(Duration::from_secs(30), "the approval to wait", || async {
        let st = status(h.client(), &id).await?;
        (st.steps[0].state == StepState::Running).then_some(())
    })
    .await?;
    let address = h.server.address.clone();
    let out = cutover_tests::cutover(
        h.dir.path(),
        Some(&address),
        &[
            "rollout",
            "pause",
            &id,
            "--by",
            "bob",
            "--reason",
            "db maintenance",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paused = wait_for(Duration::from_secs(30), "the paused message", || async {
        inbox.on("ops").first().cloned()
    })
    .await?;
    assert_eq!(header(&paused, "x-cutover-event"), "paused");
    let text: Value = serde_json::from_slice(&paused.body)?;
    let text = text["text"].as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("paused at step `sign-off` — by bob: db maintenance")
            && text.contains(&format!("cutover rollout resume {id}")),
        "{text}"
    );
    let out = cutover_tests::cutover(
        h.dir.path(),
        Some(&address),
        &["rollout", "resume", &id, "--by", "bob"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    approve(h.client(), &id, "alice").await?;
    outcome(h.client(), &id).await?;
    let events: Vec<String> = inbox
        .on("ops")
        .iter()
        .map(|r| header(r, "x-cutover-event"))
        .collect();
    assert_eq!(events, ["paused", "succeeded"]);
    h.shutdown().await
}
