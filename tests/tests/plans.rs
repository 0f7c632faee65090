//! What plans can say beyond steps in a row: compensations (`undo:`) that the saga runs when
//! a rollout rolls back, on a real dev server and worker.

use anyhow::Context;
use cutover_tests::{Harness, outcome, status};
use cutover_workflows::status::{RolloutState, StepState};

#[tokio::test]
async fn an_undo_reverses_its_steps_effect_when_a_later_step_fails() -> anyhow::Result<()> {
    let h = Harness::start("undo").await?;
    let d = h.dir_str();
    // `infra` makes state (a file standing in for `terraform apply`), `config` too; `smoke`
    // fails for good. The saga undoes `config` then `infra`, newest first; `note` has no undo
    // and stays.
    let id = h
        .start_rollout(&format!(
            r#"service: infra
environment: test
version: "1"
steps:
  - name: infra
    kind: command
    command: sh
    args: ["-c", "echo created >> {d}/infra; echo infra >> {d}/order"]
    undo: {{ command: sh, args: ["-c", "rm {d}/infra; echo undo-infra >> {d}/order"], timeout: 30s, attempts: 2 }}
  - name: note
    kind: command
    command: touch
    args: [{d}/note]
  - name: config
    kind: build
    command: sh
    args: ["-c", "echo config >> {d}/config; echo config >> {d}/order"]
    undo: {{ command: sh, args: ["-c", "rm {d}/config; echo undo-config >> {d}/order"] }}
  - name: smoke
    kind: command
    command: "false"
    retry: {{ maximum_attempts: 1 }}
"#
        ))
        .await?;
    let err = outcome(h.client(), &id).await.expect_err("rolled back");
    let text = format!("{err:?}");
    assert!(
        text.contains("`config` undone") && text.contains("`infra` undone"),
        "{text}"
    );
    let path = |n: &str| h.dir.path().join(n);
    assert!(
        !path("infra").exists() && !path("config").exists(),
        "both undone"
    );
    assert!(path("note").exists(), "a step without undo stays as it is");
    assert_eq!(
        std::fs::read_to_string(path("order"))?,
        "infra\nconfig\nundo-config\nundo-infra\n",
        "undone in reverse, once each"
    );
    let st = status(h.client(), &id).await.context("status")?;
    assert_eq!(st.state, RolloutState::RolledBack);
    let states: Vec<_> = st.steps.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            StepState::RolledBack,
            StepState::Succeeded,
            StepState::RolledBack,
            StepState::Failed
        ]
    );
    // `rollout list` says what `status` says, not the workflow's `failed`.
    let list = cutover_tests::cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "list", "--service", "infra", "--output", "json"],
    );
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout)
        .with_context(|| String::from_utf8_lossy(&list.stderr).to_string())?;
    assert_eq!(rows[0]["status"], "rolled_back", "{rows}");
    cutover_tests::replays(h.client(), &id, "rollout-undo-commands").await?;
    Ok(())
}

#[tokio::test]
async fn past_a_point_of_no_return_an_undo_is_not_run_and_the_rollout_says_so() -> anyhow::Result<()>
{
    let h = Harness::start("undo-ponr").await?;
    let d = h.dir_str();
    let id = h
        .start_rollout(&format!(
            "service: infra\nenvironment: test\nversion: \"1\"\nsteps:\n  - {{ name: infra, kind: command, command: touch, args: [{d}/infra], undo: {{ command: rm, args: [{d}/infra] }} }}\n  - {{ name: cutover, kind: command, command: \"true\", point_of_no_return: true }}\n  - {{ name: smoke, kind: command, command: \"false\", retry: {{ maximum_attempts: 1 }} }}\n"
        ))
        .await?;
    let err = outcome(h.client(), &id).await.expect_err("failed");
    assert!(
        format!("{err:?}")
            .contains("`infra` was not undone: step `cutover` is a point of no return"),
        "{err:?}"
    );
    assert!(h.dir.path().join("infra").exists());
    Ok(())
}

#[tokio::test]
async fn a_builds_digest_and_a_variable_reach_a_later_commands_arguments() -> anyhow::Result<()> {
    let h = Harness::start("vars").await?;
    let d = h.dir_str();
    cutover_tests::write_file(
        h.dir.path(),
        "p.yaml",
        &format!(
            r#"service: shop
environment: staging
version: "2.1"
vars: {{ region: eu, literal: unused }}
steps:
  - name: build
    kind: build
    command: sh
    args: ["-c", "printf 'image bytes' > {d}/app.img"]
    artifact: {d}/app.img
  - name: tag
    kind: command
    command: sh
    args: ["-c", "echo \"$1\" > {d}/tagged", "_", "${{service}}:${{version}}@sha256:${{steps.build.artifact.sha256}} in ${{vars.region}} $${{HOME}}"]
"#
        ),
    );
    let out = cutover_tests::cutover(
        h.dir.path(),
        Some(&h.server.address),
        &[
            "--task-queue",
            &h.queue,
            "rollout",
            "start",
            "p.yaml",
            "--var",
            "region=us",
            "--wait",
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(b"image bytes"));
    assert_eq!(
        std::fs::read_to_string(h.dir.path().join("tagged"))?,
        format!("shop:2.1@sha256:{digest} in us ${{HOME}}\n")
    );
    cutover_tests::replays(
        h.client(),
        "rollout/shop/staging",
        "rollout-vars-and-outputs",
    )
    .await?;

    // An undeclared --var is refused before anything starts.
    let bad = cutover_tests::cutover(
        h.dir.path(),
        Some(&h.server.address),
        &[
            "--task-queue",
            &h.queue,
            "rollout",
            "start",
            "p.yaml",
            "--var",
            "zone=b",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("declares no such variable (it has literal, region)")
    );
    Ok(())
}

#[tokio::test]
async fn an_undo_that_fails_leaves_the_rollout_failed_saying_what_stayed() -> anyhow::Result<()> {
    let h = Harness::start("undo-fails").await?;
    let d = h.dir_str();
    let id = h
        .start_rollout(&format!(
            "service: infra\nenvironment: test\nversion: \"1\"\nsteps:\n  - {{ name: infra, kind: command, command: touch, args: [{d}/infra], undo: {{ command: \"false\", attempts: 1 }} }}\n  - {{ name: smoke, kind: command, command: \"false\", retry: {{ maximum_attempts: 1 }} }}\n"
        ))
        .await?;
    let err = outcome(h.client(), &id).await.expect_err("failed");
    assert!(
        format!("{err:?}").contains("undoing `infra` failed"),
        "{err:?}"
    );
    let st = status(h.client(), &id).await.context("status")?;
    assert_eq!(
        st.state,
        RolloutState::Failed,
        "not rolled_back: something stayed"
    );
    assert!(h.dir.path().join("infra").exists());
    Ok(())
}

#[tokio::test]
async fn history_lists_every_attempts_error_not_only_the_last() -> anyhow::Result<()> {
    let h = Harness::start("attempt-errors").await?;
    let d = h.dir_str();
    let id = h
        .start_rollout(&format!(
            "service: flaky\nenvironment: test\nversion: \"1\"\nsteps:\n  - name: flaky\n    kind: command\n    command: sh\n    args: [\"-c\", \"n=$(cat {d}/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > {d}/n; echo \\\"failure number $n\\\" >&2; exit 3\"]\n    retry: {{ maximum_attempts: 3, initial_interval: 100ms }}\n"
        ))
        .await?;
    outcome(h.client(), &id).await.expect_err("fails");
    let out = cutover_tests::cutover(
        h.dir.path(),
        Some(&h.server.address),
        &["rollout", "history", &id],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for n in 1..=2 {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("attempt {n} failed")))
            .with_context(|| format!("attempt {n} missing from:\n{text}"))?;
        assert!(
            line.contains(&format!("failure number {n}")) || line.contains("exit"),
            "{line}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.contains("failed after 3 attempts") && l.contains("CommandFailed")),
        "{text}"
    );
    let st = status(h.client(), &id).await.context("status")?;
    let attempts: Vec<u32> = st.steps[0].errors.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert!(
        st.steps[0].errors[0]
            .error
            .message
            .contains("failure number 1"),
        "{:?}",
        st.steps[0].errors
    );
    Ok(())
}
