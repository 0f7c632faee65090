//! Fleets: `target.hosts`, `waves`, `max_unavailable`, `between_waves`, and what a fleet
//! refuses.

use super::tests::problems;
use super::*;
use crate::plan::{WaveSize, Waves};

const FLEET: &str = r#"
service: hello
environment: dev
version: "1.0.0"
target: { driver: host, hosts: [web-1, web-2, web-3] }
steps:
  - name: provision
    kind: provision
    root: /srv
  - name: ship
    kind: deploy
    root: /srv
    strategy: blue-green
    start: { command: ./app }
    base_port: 18100
    listen: 18080
    waves: [1, 50%, 100%]
    between_waves:
      verify: { url: "http://127.0.0.1:18080/health" }
      bake: 30s
  - name: notify
    kind: command
    command: ./notify
"#;

/// `FLEET` with `from` replaced by `to`.
fn fleet_with(from: &str, to: &str) -> String {
    assert!(FLEET.contains(from), "{from}");
    FLEET.replace(from, to)
}

fn messages(text: &str) -> Vec<String> {
    problems(text)
        .into_iter()
        .map(|d| {
            format!(
                "{} {}: {} ({})",
                d.line,
                d.path,
                d.message,
                d.hint.unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn a_fleet_plan_parses_into_waves_and_round_trips() {
    let plan = parse_plan(FLEET, PlanLimits::default()).expect("valid plan");
    assert_eq!(plan.target.hosts, ["web-1", "web-2", "web-3"]);
    let StepAction::Deploy(spec) = &plan.steps[1].action else {
        panic!("a deploy");
    };
    let waves = spec.waves.clone().expect("waves");
    assert_eq!(
        waves.sizes,
        [
            WaveSize::Hosts(1),
            WaveSize::Percent(50),
            WaveSize::Percent(100)
        ]
    );
    assert_eq!(waves.between.bake, Duration::from_secs(30));
    assert!(waves.between.verify.is_some());
    // Provision and deploy act on every host; the command runs once, on a worker.
    assert_eq!(plan.steps[0].fleet(&plan.target).len(), 3);
    assert_eq!(plan.steps[1].fleet(&plan.target).len(), 3);
    assert!(plan.steps[2].fleet(&plan.target).is_empty());
    assert!(plan.steps.iter().all(|s| s.host(&plan.target).is_none()));
    assert!(plan.problems().is_empty(), "{:?}", plan.problems());
    let json = serde_json::to_string(&plan).expect("serializes");
    let back: Plan = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(plan, back);
}

#[test]
fn a_fleet_without_waves_rolls_one_host_at_a_time() {
    let text = fleet_with(
        "    waves: [1, 50%, 100%]\n    between_waves:\n      verify: { url: \"http://127.0.0.1:18080/health\" }\n      bake: 30s\n",
        "",
    );
    let plan = parse_plan(&text, PlanLimits::default()).expect("valid plan");
    let StepAction::Deploy(spec) = &plan.steps[1].action else {
        panic!("a deploy");
    };
    assert_eq!(spec.waves, None);
    let sizes: Vec<usize> = Waves::default()
        .plan(&plan.target.hosts)
        .iter()
        .map(|w| w.len())
        .collect();
    assert_eq!(sizes, [1, 1, 1]);
}

#[test]
fn bad_fleets_and_waves_are_refused_with_where_and_why() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "hosts: [web-1, web-2, web-3]",
            "hosts: [web-1, web-1]",
            "host `web-1` is listed twice",
        ),
        (
            "hosts: [web-1, web-2, web-3]",
            "hosts: []",
            "a fleet of 0 hosts",
        ),
        (
            "hosts: [web-1, web-2, web-3]",
            "hosts: web-1",
            "expected a list of host names",
        ),
        (
            "hosts: [web-1, web-2, web-3]",
            "hosts: [web-1, \"../etc\"]",
            "is not a valid host name",
        ),
        (
            "hosts: [web-1, web-2, web-3]",
            "host: web-9, hosts: [web-1]",
            "both `host` and `hosts`",
        ),
        ("[1, 50%, 100%]", "[1, 50%]", "the last wave must be `100%`"),
        ("[1, 50%, 100%]", "[50%, 10%, 100%]", "must grow"),
        ("[1, 50%, 100%]", "[0, 100%]", "`0` is not a wave size"),
        ("[1, 50%, 100%]", "[1, 150%]", "`150%` is not a wave size"),
        ("[1, 50%, 100%]", "[x, 100%]", "`x` is not a wave size"),
        ("[1, 50%, 100%]", "[]", "0 waves"),
        (
            "waves: [1, 50%, 100%]",
            "waves: [1, 100%]\n    max_unavailable: 2",
            "either `waves` or `max_unavailable`",
        ),
        (
            "waves: [1, 50%, 100%]",
            "max_unavailable: 0",
            "whole number from 1",
        ),
        ("      bake: 30s", "      bake: soon", "soon"),
        ("      bake: 30s", "      wait: 30s", "wait"),
        (
            "strategy: blue-green",
            "strategy: canary\n    canary: [{ weight: 10 }, { weight: 100 }]",
            "the target has no `router`",
        ),
        (
            "listen: 18080",
            "listen: 18080\n    listen_address: nowhere",
            "`nowhere` is not an IP address",
        ),
        (
            "    command: ./notify\n",
            "    command: ./notify\n    on: host\n",
            "fleet of several",
        ),
    ];
    for (from, to, expect) in cases {
        let found = messages(&fleet_with(from, to));
        assert!(
            found.iter().any(|m| m.contains(expect)),
            "{to}: expected `{expect}` in {found:#?}"
        );
    }
}

const ROUTER: &str = "hosts: [web-1, web-2, web-3], router: { host: lb, root: /srv/router, listen: 80, listen_address: 0.0.0.0, backends: { web-1: \"10.0.0.1:18080\", web-2: \"10.0.0.2:18080\", web-3: \"web-3.internal:18080\" } }";

#[test]
fn a_router_names_its_host_and_every_hosts_address() {
    let text = fleet_with("hosts: [web-1, web-2, web-3]", ROUTER);
    let plan = parse_plan(&text, PlanLimits::default()).expect("valid plan");
    let router = plan.target.router.clone().expect("router");
    assert_eq!(router.host, "lb");
    assert_eq!(router.backends["web-3"], "web-3.internal:18080");
    assert!(plan.problems().is_empty(), "{:?}", plan.problems());
    let cases: &[(&str, &str)] = &[
        ("web-2: \"10.0.0.2:18080\", ", "no address for host `web-2`"),
        ("\"10.0.0.2:18080\"", "`10.0.0.2` is not address:port"),
        ("\"10.0.0.2:18080\"", "`10.0.0.2:99999` is not address:port"),
        ("host: lb,", "name the router's agent"),
        ("listen: 80,", "give the port it listens on"),
        (
            "web-1: \"10.0.0.1:18080\"",
            "`db-1` is not a host of the fleet",
        ),
        ("0.0.0.0", "`everywhere` is not an IP address"),
    ];
    for (from, expect) in cases {
        let to = match *expect {
            e if e.contains("99999") => "\"10.0.0.2:99999\"",
            e if e.contains("is not address:port") => "\"10.0.0.2\"",
            e if e.contains("db-1") => "web-1: \"10.0.0.1:18080\", db-1: \"10.0.0.9:1\"",
            e if e.contains("everywhere") => "everywhere",
            _ => "",
        };
        let found = messages(&text.replace(from, to));
        assert!(
            found.iter().any(|m| m.contains(expect)),
            "{from} → {to}: expected `{expect}` in {found:#?}"
        );
    }
}

#[test]
fn waves_on_a_single_machine_are_refused() {
    let text = fleet_with("hosts: [web-1, web-2, web-3]", "host: web-1");
    let found = messages(&text);
    assert!(
        found
            .iter()
            .any(|m| m.contains("`waves` apply to a fleet") && m.contains("steps[1]")),
        "{found:#?}"
    );
}

#[test]
fn a_fleet_plan_from_json_is_checked_too() {
    // Plans reach the workflow from any client; `problems` guards what YAML parsing would.
    let mut plan = parse_plan(FLEET, PlanLimits::default()).expect("valid plan");
    plan.target.hosts.push("web-1".to_owned());
    plan.target.host = Some("x y".to_owned());
    let found = plan.problems().join("\n");
    assert!(found.contains("listed twice"), "{found}");
    assert!(found.contains("not both"), "{found}");
    assert!(found.contains("target host #1"), "{found}");
    let StepAction::Deploy(spec) = &mut plan.steps[1].action else {
        panic!("a deploy");
    };
    spec.waves.as_mut().expect("waves").sizes = vec![WaveSize::Hosts(2)];
    assert!(plan.problems().join("\n").contains("last wave"));
}

const REGIONS: &str =
    "regions:\n    - { name: a, hosts: [web-1, web-2] }\n    - { name: b, hosts: [web-3] }";

#[test]
fn regions_list_the_fleet_in_region_order() {
    let text = fleet_with(
        "target: { driver: host, hosts: [web-1, web-2, web-3] }",
        &format!("target:\n  driver: host\n  {REGIONS}"),
    );
    let plan = parse_plan(&text, PlanLimits::default()).expect("valid plan");
    assert_eq!(plan.target.hosts, ["web-1", "web-2", "web-3"]);
    let groups: Vec<(Option<&str>, usize)> = plan
        .target
        .groups()
        .into_iter()
        .map(|(r, h)| (r, h.len()))
        .collect();
    assert_eq!(groups, [(Some("a"), 2), (Some("b"), 1)]);
    assert!(plan.problems().is_empty(), "{:?}", plan.problems());

    let cases: &[(&str, &str, &str)] = &[
        ("[web-3] }", "[web-2] }", "repeats region `a`"),
        ("name: b,", "name: a,", "repeats region `a`"),
        (
            "{ name: a, hosts: [web-1, web-2] }",
            "{ hosts: [web-1, web-2] }",
            "name the region",
        ),
        (
            "- { name: b, hosts: [web-3] }",
            "- { name: b, hosts: [web-3], router: { host: lb, root: /r, listen: 80, backends: { web-9: \"10.0.0.9:1\" } } }",
            "no address for host `web-3`",
        ),
        (
            "driver: host\n  regions",
            "driver: host\n  hosts: [web-1]\n  regions",
            "both `hosts` and `regions`",
        ),
    ];
    for (from, to, expect) in cases {
        let found = messages(&text.replace(from, to));
        assert!(
            found.iter().any(|m| m.contains(expect)),
            "{from} → {to}: expected `{expect}` in {found:#?}"
        );
    }
}
