//! The `cutover` binary as a user runs it: exit codes, messages, and positions.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_tests::{DevServer, WorkerProcess, cutover, free_port, unique_queue, write_file};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/plans")
        .join(name)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `plan validate` on a broken plan: exit 2, and each expected `line:column: path: message`.
fn assert_invalid(file: &str, expected: &[&str]) {
    let path = fixture(file);
    let out = cutover(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        None,
        &["plan", "validate", path.to_str().unwrap_or_default()],
    );
    assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
    let err = stderr(&out);
    for want in expected {
        assert!(
            err.contains(&format!("{}:{want}", path.display())),
            "{file}: expected `{want}` in:\n{err}"
        );
    }
    assert!(err.contains("nothing was started"), "{err}");
}

#[test]
fn validate_reports_malformed_yaml_at_its_position() {
    assert_invalid("malformed-yaml.yaml", &["8:4: invalid YAML"]);
}

#[test]
fn validate_reports_an_unknown_kind_with_the_kinds_there_are() {
    assert_invalid(
        "unknown-kind.yaml",
        &["6:11: steps[0].kind: unknown step kind `teleport`"],
    );
    let out = cutover(
        Path::new("."),
        None,
        &[
            "plan",
            "validate",
            fixture("unknown-kind.yaml").to_str().unwrap_or_default(),
        ],
    );
    assert!(stderr(&out).contains("hint: choose one of: command, build, verify"));
}

#[test]
fn validate_reports_a_negative_timeout() {
    assert_invalid(
        "negative-timeout.yaml",
        &["8:14: steps[0].timeout: `-5m` is negative"],
    );
}

#[test]
fn validate_reports_every_missing_field_at_once() {
    assert_invalid(
        "missing-field.yaml",
        &[
            "1:1: missing required key `environment`",
            "4:5: steps[0]: missing required key `name`",
        ],
    );
}

#[test]
fn validate_reports_an_unknown_key() {
    assert_invalid(
        "unknown-key.yaml",
        &["8:5: steps[0].retries: unknown key `retries`"],
    );
}

#[test]
fn validate_refuses_missing_binary_and_oversized_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cutover(dir.path(), None, &["plan", "validate", "nope.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read plan `nope.yaml`"),
        "{}",
        stderr(&out)
    );

    std::fs::write(dir.path().join("bin.yaml"), [0xff, 0xfe, 0x00, 0x41]).expect("write");
    let out = cutover(dir.path(), None, &["plan", "validate", "bin.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not UTF-8 text"),
        "{}",
        stderr(&out)
    );

    let big = "# padding\n".repeat(60_000);
    write_file(dir.path(), "big.yaml", &big);
    let out = cutover(dir.path(), None, &["plan", "validate", "big.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("it is limited to 262144 bytes"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn show_prints_the_normalized_plan_which_validates_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_file(
        dir.path(),
        "plan.yaml",
        "service: demo\nenvironment: dev\nversion: \"1\"\nsteps:\n  - { name: check, kind: verify, url: \"http://127.0.0.1:1/health\" }\n",
    );
    let out = cutover(dir.path(), None, &["plan", "show", "plan.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON output");
    assert_eq!(json["steps"][0]["method"], "GET");
    assert_eq!(json["steps"][0]["expect_status"], 200);
    assert_eq!(json["steps"][0]["timeout"], "10m");
    assert_eq!(json["steps"][0]["retry"]["maximum_attempts"], 3);
    // JSON is YAML: the normalized plan is itself a valid plan.
    write_file(dir.path(), "normalized.yaml", &stdout(&out));
    let again = cutover(dir.path(), None, &["plan", "validate", "normalized.yaml"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
}

#[test]
fn an_unreachable_server_gets_one_line_naming_the_address_and_the_fix() {
    let port = free_port().expect("port");
    let address = format!("127.0.0.1:{port}");
    let out = cutover(
        Path::new("."),
        Some(&address),
        &["rollout", "status", "demo/dev"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach Temporal at {address}")),
        "{err}"
    );
    assert!(err.contains("cutover dev up"), "{err}");
}

#[test]
fn bad_rollout_ids_are_usage_errors() {
    let out = cutover(
        Path::new("."),
        Some("127.0.0.1:1"),
        &["rollout", "status", "../../etc/passwd"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not a rollout ID"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn start_wait_exits_0_on_success_1_on_failure_2_on_a_bad_plan() -> anyhow::Result<()> {
    let server = DevServer::start().await?;
    let dir = tempfile::tempdir()?;
    let queue = unique_queue("cli");
    let _worker = WorkerProcess::spawn(&server.address, &queue, dir.path())?;
    let run = |plan: &str| {
        cutover(
            dir.path(),
            Some(&server.address),
            &["--task-queue", &queue, "rollout", "start", plan, "--wait"],
        )
    };

    write_file(
        dir.path(),
        "ok.yaml",
        "service: cli\nenvironment: ok\nversion: \"1\"\nsteps:\n  - { name: hi, kind: command, command: echo, args: [hi] }\n",
    );
    let out = run("ok.yaml");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("rollout rollout/cli/ok succeeded"),
        "{}",
        stdout(&out)
    );

    write_file(
        dir.path(),
        "fail.yaml",
        "service: cli\nenvironment: fail\nversion: \"1\"\nsteps:\n  - { name: boom, kind: command, command: \"false\", retry: { maximum_attempts: 1 } }\n",
    );
    let out = run("fail.yaml");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("step `boom` failed after 1 attempt: CommandFailed"),
        "{}",
        stdout(&out)
    );

    let bad = fixture("unknown-kind.yaml");
    let out = run(bad.to_str().unwrap_or_default());
    assert_eq!(out.status.code(), Some(2));

    // With --output json: one object when it starts, one when it ends, as the rollout names
    // its state.
    let out = cutover(
        dir.path(),
        Some(&server.address),
        &[
            "--task-queue",
            &queue,
            "rollout",
            "start",
            "fail.yaml",
            "--wait",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines[0]["workflow_id"], "rollout/cli/fail");
    assert!(lines[0]["run_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(lines[1]["outcome"], "failed");
    assert!(
        lines[1]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("CommandFailed")
    );

    // A second start while one runs names the running rollout.
    write_file(
        dir.path(),
        "slow.yaml",
        "service: cli\nenvironment: slow\nversion: \"1\"\nsteps:\n  - { name: nap, kind: command, command: sleep, args: [\"30\"] }\n",
    );
    let first = cutover(
        dir.path(),
        Some(&server.address),
        &["--task-queue", &queue, "rollout", "start", "slow.yaml"],
    );
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let second = cutover(
        dir.path(),
        Some(&server.address),
        &["--task-queue", &queue, "rollout", "start", "slow.yaml"],
    );
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr(&second).contains("already running: rollout/cli/slow"),
        "{}",
        stderr(&second)
    );
    let cancel = cutover(
        dir.path(),
        Some(&server.address),
        &["rollout", "cancel", "cli/slow"],
    );
    assert_eq!(cancel.status.code(), Some(0), "{}", stderr(&cancel));
    let watched = cutover(
        dir.path(),
        Some(&server.address),
        &["rollout", "watch", "cli/slow"],
    );
    assert_eq!(watched.status.code(), Some(1));
    assert!(
        stdout(&watched).contains("was cancelled"),
        "{}",
        stdout(&watched)
    );

    let list = cutover(
        dir.path(),
        Some(&server.address),
        &["rollout", "list", "--service", "cli", "--output", "json"],
    );
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&list))?;
    let ids: Vec<&str> = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["workflow_id"].as_str())
        .collect();
    for id in ["rollout/cli/ok", "rollout/cli/fail", "rollout/cli/slow"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    server.shutdown().await
}

#[tokio::test]
async fn watch_says_so_when_no_worker_polls() -> anyhow::Result<()> {
    let server = DevServer::start().await?;
    let dir = tempfile::tempdir()?;
    write_file(
        dir.path(),
        "p.yaml",
        "service: lonely\nenvironment: dev\nversion: \"1\"\nsteps:\n  - { name: a, kind: command, command: \"true\" }\n",
    );
    let queue = unique_queue("noworker");
    let start = cutover(
        dir.path(),
        Some(&server.address),
        &["--task-queue", &queue, "rollout", "start", "p.yaml"],
    );
    assert_eq!(start.status.code(), Some(0), "{}", stderr(&start));
    // `watch` never ends on its own here; run it until it has had its say.
    let mut child = tokio::process::Command::new(cutover_tests::bin("cutover"))
        .args(["--task-queue", &queue, "rollout", "watch", "lonely/dev"])
        .env("CUTOVER_TEMPORAL_ADDRESS", &server.address)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut out = child.stdout.take().expect("piped");
    let mut text = String::new();
    let found = tokio::time::timeout(Duration::from_secs(40), async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 4096];
        loop {
            let n = out.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return false;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.contains("no worker has answered") {
                return true;
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(
        found,
        "watch should say no worker polls; it printed:\n{text}"
    );
    assert!(text.contains(&format!("task queue `{queue}`")), "{text}");
    child.kill().await?;
    server.shutdown().await
}

#[test]
fn drill_validate_accepts_the_example_and_points_at_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/drills/hello-failover.yaml");
    let out = cutover(
        dir.path(),
        None,
        &["drill", "validate", example.to_str().unwrap_or_default()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&example).expect("example");
    write_file(
        dir.path(),
        "bad.yaml",
        &text.replace("mode: failover", "mode: chaos"),
    );
    let out = cutover(dir.path(), None, &["drill", "validate", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("mode: failover"))
        .expect("the example has a mode");
    assert!(
        stderr(&out).contains(&format!("bad.yaml:{line}:7: mode: unknown mode `chaos`")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn completions_load_in_bash_and_know_the_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = cutover_tests::cutover(dir.path(), None, &["completions", "bash"]);
    assert!(script.status.success());
    let path = dir.path().join("cutover.bash");
    std::fs::write(&path, &script.stdout).expect("write");
    // Loaded by bash, the function offers `rollout` and, after it, `wait` and `approve`.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; complete -p cutover; COMP_WORDS=(cutover rollout w); COMP_CWORD=2; COMP_LINE='cutover rollout w'; COMP_POINT=${{#COMP_LINE}}; _cutover cutover w rollout; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display()
        ))
        .output()
        .expect("bash");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("-F _cutover cutover"), "{text}");
    assert!(
        text.lines().any(|l| l == "wait") && text.lines().any(|l| l == "watch"),
        "{text}"
    );
    for shell in ["zsh", "fish"] {
        let out = cutover_tests::cutover(dir.path(), None, &["completions", shell]);
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("rollout"));
    }
    let bad = cutover_tests::cutover(dir.path(), None, &["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn validate_speaks_json_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write_file(
        dir.path(),
        "good.yaml",
        "service: a\nenvironment: b\nversion: \"1\"\nsteps:\n  - { name: hi, kind: command, command: echo }\n",
    );
    let out = cutover(
        dir.path(),
        None,
        &[
            "plan",
            "validate",
            good.to_str().unwrap_or_default(),
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (v["valid"].as_bool(), v["steps"].as_u64()),
        (Some(true), Some(1))
    );
    let bad = fixture("unknown-kind.yaml");
    let out = cutover(
        dir.path(),
        None,
        &[
            "plan",
            "validate",
            bad.to_str().unwrap_or_default(),
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["valid"], false);
    let first = &v["problems"][0];
    assert!(
        first["line"].as_u64().is_some_and(|l| l > 0) && first["message"].as_str().is_some(),
        "{v}"
    );
}
