//! Placement: `target.host`, `on` and `schedule_to_start_timeout`.

use super::tests::{GOOD, problems};
use super::*;

const ON_HOSTS: &str = r#"
service: hello
environment: dev
version: "1.0.0"
target: { driver: host, host: web-2 }
steps:
  - name: warm-cache
    kind: command
    command: ./warm
    on: host
    schedule_to_start_timeout: 30s
  - name: notify
    kind: command
    command: ./notify
  - name: ship
    kind: deploy
    root: /srv
    strategy: blue-green
    start: { command: ./app }
    base_port: 18100
    listen: 18080
"#;

#[test]
fn steps_placed_on_the_target_host_route_there_and_round_trip() {
    let plan = parse_plan(ON_HOSTS, PlanLimits::default()).expect("valid plan");
    assert_eq!(plan.target.host.as_deref(), Some("web-2"));
    let hosts: Vec<Option<&str>> = plan.steps.iter().map(|s| s.host(&plan.target)).collect();
    assert_eq!(
        hosts,
        [Some("web-2"), None, Some("web-2")],
        "deploy always acts on the host"
    );
    assert_eq!(
        plan.steps[0].schedule_to_start_timeout,
        Duration::from_secs(30)
    );
    assert_eq!(plan.steps[1].schedule_to_start_timeout, DEFAULT_HOST_WAIT);
    let json = serde_json::to_string(&plan).expect("serializes");
    let back: Plan = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(plan, back);
}

#[test]
fn a_plan_without_a_host_keeps_the_recorded_shape() {
    // Plans recorded before hosts existed carry neither `on` nor the wait: defaults must not
    // be serialized, or the workflow input (and so its history) would change shape.
    let plan = parse_plan(GOOD, PlanLimits::default()).expect("valid plan");
    let json = serde_json::to_string(&plan).expect("serializes");
    for key in ["\"on\"", "schedule_to_start_timeout", "\"host\":"] {
        assert!(!json.contains(key), "{key} in {json}");
    }
    assert!(plan.steps.iter().all(|s| s.host(&plan.target).is_none()));
}

#[test]
fn bad_placements_are_refused_with_positions() {
    let cases: [(&str, &str, &str); 7] = [
        ("target:\n  host: \"../web\"\n", "target.host", "host name"),
        ("target:\n  host: \"\"\n", "target.host", ""),
        ("target:\n  host: [a]\n", "target.host", ""),
        (
            "steps:\n  - name: x\n    kind: command\n    command: ls\n    on: host\n",
            "steps[0].on",
            "needs a host",
        ),
        (
            "target: { host: web-1 }\nsteps:\n  - name: x\n    kind: command\n    command: ls\n    on: everywhere\n",
            "steps[0].on",
            "unknown placement",
        ),
        (
            "target: { host: web-1 }\nsteps:\n  - name: x\n    kind: bake\n    duration: 1s\n    on: host\n",
            "steps[0].on",
            "runs nothing on a host",
        ),
        (
            "target: { host: web-1 }\nsteps:\n  - name: x\n    kind: command\n    command: ls\n    on: host\n    schedule_to_start_timeout: soon\n",
            "steps[0].schedule_to_start_timeout",
            "",
        ),
    ];
    for (body, path, needle) in cases {
        let mut text = String::from("service: a\nenvironment: b\nversion: c\n");
        text.push_str(body);
        if !body.contains("steps:") {
            text.push_str("steps:\n  - name: x\n    kind: command\n    command: ls\n");
        }
        let found = problems(&text);
        assert!(
            found
                .iter()
                .any(|d| d.path == path && d.message.contains(needle)),
            "no `{needle}` at {path} for {body:?}: {found:#?}"
        );
    }
}

#[test]
fn a_deploy_cannot_be_moved_off_its_host() {
    let text = "service: a\nenvironment: b\nversion: c\ntarget: { host: web-1 }\nsteps:\n  - name: ship\n    kind: deploy\n    root: /srv\n    strategy: blue-green\n    start: { command: ./app }\n    base_port: 18100\n    listen: 18080\n    on: worker\n";
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].path, "steps[0].on");
    assert!(found[0].message.contains("always runs on the target host"));
}
