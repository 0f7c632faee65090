use super::*;
use crate::plan::{CanaryGate, CanaryStep};

pub(super) fn problems(text: &str) -> Vec<Diagnostic> {
    match parse_plan(text, PlanLimits::default()) {
        Ok(plan) => panic!("expected problems, got a plan: {plan:?}"),
        Err(d) => d.0,
    }
}

pub(super) const GOOD: &str = r#"
service: hello
environment: dev
version: "1.0.0"
steps:
  - name: build
    kind: build
    command: cargo
    args: [build]
    artifact: target/debug/hello
  - name: smoke
    kind: verify
    url: http://127.0.0.1:8080/health
    json: { pointer: /version, equals: "1.0.0" }
"#;

#[test]
fn a_good_plan_gets_defaults() {
    let plan = parse_plan(GOOD, PlanLimits::default()).expect("valid plan");
    assert_eq!(plan.service, "hello");
    assert_eq!(plan.target.driver, "host");
    assert_eq!(plan.steps.len(), 2);
    assert_eq!(
        plan.steps[0].timeout,
        Duration::from_secs(1800),
        "builds get 30m"
    );
    assert_eq!(plan.steps[1].timeout, Duration::from_secs(600));
    assert_eq!(plan.steps[1].retry, RetryPolicy::default());
    let StepAction::Verify(v) = &plan.steps[1].action else {
        panic!("verify expected")
    };
    assert_eq!(v.method, "GET");
    assert_eq!(v.expect_status, 200);
    assert_eq!(
        v.json.as_ref().map(|j| j.equals.clone()),
        Some(serde_json::json!("1.0.0"))
    );
}

#[test]
fn every_problem_is_reported_at_once_with_positions() {
    let text = "service: Hello World\nenvironment: dev\nsteps:\n  - name: a\n    kind: bogus\n  - name: b\n    kind: command\n    command: ls\n    timeout: -5s\n    colour: red\n";
    let found = problems(text);
    let summary: Vec<(usize, usize, &str)> = found
        .iter()
        .map(|d| (d.line, d.column, d.path.as_str()))
        .collect();
    assert!(summary.contains(&(1, 10, "service")), "{found:#?}");
    assert!(
        summary.contains(&(1, 1, "")),
        "missing version at the root: {found:#?}"
    );
    assert!(summary.contains(&(5, 11, "steps[0].kind")), "{found:#?}");
    assert!(summary.contains(&(9, 14, "steps[1].timeout")), "{found:#?}");
    assert!(summary.contains(&(10, 5, "steps[1].colour")), "{found:#?}");
    assert!(
        found
            .iter()
            .any(|d| d.message.contains("missing required key `version`"))
    );
    assert!(found.iter().any(|d| d.message.contains("negative")));
}

#[test]
fn unknown_keys_get_a_suggestion() {
    let found = problems("service: a\nenvironment: b\nversion: c\nstep: []\n");
    let unknown = found
        .iter()
        .find(|d| d.message.contains("unknown key `step`"))
        .expect("unknown key reported");
    assert_eq!(unknown.hint.as_deref(), Some("did you mean `steps`?"));
}

#[test]
fn deploy_steps_get_defaults_and_checked_ports() {
    let text = "service: a\nenvironment: b\nversion: c\nsteps:\n  - name: d\n    kind: deploy\n    root: /srv\n    strategy: blue-green\n    start: { command: ./app }\n    instances: 2\n    base_port: 18100\n    listen: 18080\n";
    let plan = parse_plan(text, PlanLimits::default()).expect("valid deploy");
    let StepAction::Deploy(d) = &plan.steps[0].action else {
        panic!("deploy expected")
    };
    assert_eq!(d.health.path, "/health");
    assert_eq!(d.rollback_window, Duration::from_secs(30));

    let clash = text.replace("listen: 18080", "listen: 18101");
    let found = problems(&clash);
    assert!(
        found[0].message.contains("inside the instance ports"),
        "{found:?}"
    );
}

#[test]
fn canary_weights_must_increase_to_100() {
    let base = "service: a\nenvironment: b\nversion: c\nsteps:\n  - name: d\n    kind: deploy\n    root: /srv\n    strategy: canary\n    start: { command: ./app }\n    base_port: 18100\n    listen: 18080\n";
    let found = problems(&format!(
        "{base}    canary: [{{ weight: 50 }}, {{ weight: 10 }}]\n"
    ));
    assert!(
        found.iter().any(|d| d.message.contains("must increase")),
        "{found:?}"
    );
    let found = problems(&format!("{base}    canary: [{{ weight: 10 }}]\n"));
    assert!(
        found.iter().any(|d| d.message.contains("100%")),
        "{found:?}"
    );
    let found = problems(base);
    assert!(
        found
            .iter()
            .any(|d| d.message.contains("needs its weights")),
        "{found:?}"
    );
}

const CANARY_BASE: &str = "service: a\nenvironment: b\nversion: c\nsteps:\n  - name: d\n    kind: deploy\n    root: /srv\n    strategy: canary\n    start: { command: ./app }\n    base_port: 18100\n    listen: 18080\n    canary:\n";

#[test]
fn a_canary_script_has_gates_between_weights() {
    let text = format!(
        "{CANARY_BASE}      - weight: 10\n      - bake: 10m\n      - approval: {{ required: 2, approvers: [ana, bob, group:sre] }}\n      - pause\n      - pause: {{}}\n      - {{ weight: 50, bake: 1m }}\n      - analysis:\n          interval: 1m\n          duration: 5m\n          metrics:\n            - {{ name: up, http: {{ url: \"http://127.0.0.1:1/\" }}, success_condition: \"success_rate >= 0.9\" }}\n      - weight: 100\n"
    );
    let plan = parse_plan(&text, PlanLimits::default()).expect("a valid script");
    let StepAction::Deploy(d) = &plan.steps[0].action else {
        panic!("deploy expected")
    };
    let described: Vec<String> = d.canary.iter().map(CanaryStep::describe).collect();
    assert_eq!(
        described,
        [
            "weight 10",
            "bake 10m",
            "approval (2)",
            "pause",
            "pause",
            "weight 50 for 1m",
            "analysis",
            "weight 100"
        ]
    );
    // A gate holds the weight reached before it.
    assert_eq!(d.canary[2].weight, 10);
    assert_eq!(d.canary[6].weight, 50);
    let Some(CanaryGate::Approval(a)) = &d.canary[2].gate else {
        panic!("an approval gate")
    };
    assert_eq!(a.approvers, ["ana", "bob", "group:sre"]);
    let json = serde_json::to_string(&plan).expect("serializes");
    let back: Plan = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, plan);
}

#[test]
fn a_weights_only_canary_serializes_as_before() {
    let text = format!("{CANARY_BASE}      - {{ weight: 10, bake: 1m }}\n      - weight: 100\n");
    let plan = parse_plan(&text, PlanLimits::default()).expect("valid");
    let json = serde_json::to_value(&plan).expect("serializes");
    assert_eq!(
        json["steps"][0]["canary"],
        serde_json::json!([{"weight": 10, "bake": "1m"}, {"weight": 100, "bake": "0s"}]),
        "recorded rollouts' inputs must keep their shape"
    );
}

#[test]
fn bad_canary_scripts_are_refused_with_positions() {
    let cases = [
        (
            "      - { weight: 10, approval: {} }\n      - weight: 100\n",
            "canary[0]",
            "weight and approval",
        ),
        (
            "      - wait\n      - weight: 100\n",
            "canary[0]",
            "unknown canary entry `wait`",
        ),
        (
            "      - pause: 10m\n      - weight: 100\n",
            "canary[0].pause",
            "takes no settings",
        ),
        (
            "      - weight: 50\n      - approval: {}\n      - weight: 20\n      - weight: 100\n",
            "canary[2].weight",
            "must increase",
        ),
        (
            "      - weight: 10\n      - approval: { required: 2 }\n",
            "canary",
            "100%",
        ),
        (
            "      - weight: 10\n      - approval: { required: 0 }\n      - weight: 100\n",
            "canary[1].approval.required",
            "",
        ),
        (
            "      - weight: 10\n      - approval: { quorum: 2 }\n      - weight: 100\n",
            "canary[1].approval.quorum",
            "unknown key",
        ),
        (
            "      - bake: soon\n      - weight: 100\n",
            "canary[0].bake",
            "",
        ),
        (
            "      - {}\n      - weight: 100\n",
            "canary[0]",
            "empty canary entry",
        ),
    ];
    for (script, path, message) in cases {
        let found = problems(&format!("{CANARY_BASE}{script}"));
        assert!(
            found
                .iter()
                .any(|d| d.path.ends_with(path) && d.message.contains(message) && d.line > 0),
            "{script}: expected `{message}` at {path}: {found:#?}"
        );
    }
}

#[test]
fn malformed_yaml_points_at_the_error() {
    let found = problems("service: a\nsteps: [\n  - x\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].message.starts_with("invalid YAML"), "{found:?}");
    assert!(found[0].line >= 2);
}

#[test]
fn oversized_plans_are_refused_before_parsing() {
    let text = format!("service: a\n# {}\n", "x".repeat(300 * 1024));
    let found = problems(&text);
    assert!(found[0].message.contains("limited to"), "{found:?}");
}

#[test]
fn duplicate_step_names_and_keys_are_reported() {
    let text = "service: a\nservice: b\nenvironment: c\nversion: d\nsteps:\n  - {name: x, kind: command, command: ls}\n  - {name: x, kind: command, command: ls}\n";
    let found = problems(text);
    assert!(
        found.iter().any(|d| d.message.contains("given twice")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|d| d.message.contains("already named")),
        "{found:?}"
    );
}

#[test]
fn hostile_values_are_refused() {
    let text = "service: \"../../etc\"\nenvironment: \"a/b\"\nversion: \"1 0\"\nsteps:\n  - name: x\n    kind: verify\n    url: \"file:///etc/passwd\"\n    method: TRACE\n    expect_status: 99999\n";
    let found = problems(text);
    for path in [
        "service",
        "environment",
        "version",
        "steps[0].url",
        "steps[0].method",
        "steps[0].expect_status",
    ] {
        assert!(
            found.iter().any(|d| d.path == path),
            "no problem at {path}: {found:#?}"
        );
    }
}

#[test]
fn secret_references_need_exactly_one_source() {
    let text = "service: a\nenvironment: b\nversion: c\nsteps:\n  - name: x\n    kind: command\n    command: ls\n    secret_env:\n      TOKEN: { env: A, file: /b }\n      OK: { env: GH_TOKEN }\n";
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].path, "steps[0].secret_env.TOKEN");
}

#[test]
fn normalized_plans_round_trip_through_json() {
    let plan = parse_plan(GOOD, PlanLimits::default()).expect("valid plan");
    let json = serde_json::to_string(&plan).expect("serializes");
    let back: Plan = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(plan, back);
}

#[test]
fn urls_with_credentials_are_refused() {
    let text = "service: a\nenvironment: b\nversion: c\nsteps:\n  - { name: x, kind: verify, url: \"http://admin:hunter2@127.0.0.1/\" }\n";
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].message.contains("carries credentials"));
    assert!(
        !found[0].message.contains("hunter2"),
        "the secret must not be echoed"
    );
}

const ANALYSIS: &str = r#"
service: hello
environment: dev
version: "1.0.0"
steps:
  - name: check
    kind: analysis
    interval: 5s
    duration: 1m
    failure_limit: 1
    consecutive_successes: 3
    metrics:
      - name: errors
        prometheus: { address: "http://127.0.0.1:9090", query: "sum(rate(x[1m]))" }
        success_condition: "result[0] < 0.01"
      - name: probe
        http: { url: "http://127.0.0.1:8080/health", probes: 20 }
        success_condition: "success_rate >= 0.99 && p95_ms < 300"
      - name: orders
        sql: { database_url: { env: DATABASE_URL }, query: "SELECT count(*) FROM orders" }
        success_condition: "result > 0"
"#;

#[test]
fn an_analysis_step_parses_and_round_trips() {
    let plan = parse_plan(ANALYSIS, PlanLimits::default()).expect("valid plan");
    let StepAction::Analysis(a) = &plan.steps[0].action else {
        panic!("analysis expected")
    };
    assert_eq!(a.measurements(), 12);
    assert_eq!(
        (
            a.failure_limit,
            a.inconclusive_limit,
            a.consecutive_successes
        ),
        (1, 0, 3)
    );
    assert_eq!(a.metrics.len(), 3);
    // `plan show` prints JSON that is itself a valid plan.
    let json = serde_json::to_string(&plan).expect("serializes");
    let again = parse_plan(&json, PlanLimits::default()).expect("the JSON is a valid plan");
    assert_eq!(again, plan);
}

#[test]
fn bad_analyses_are_refused_with_positions_and_reasons() {
    for (from, to, expect) in [
        (
            "\"result[0] < 0.01\"",
            "\"latency < 3\"",
            "unknown value `latency` in `latency < 3`",
        ),
        (
            "\"result > 0\"",
            "\"result >\"",
            "`` in `result >` is not a number",
        ),
        (
            "success_rate >= 0.99 && p95_ms < 300",
            "success_rate",
            "`success_rate` compares nothing",
        ),
        ("probes: 20", "probes: 0", "0 is out of range"),
        (
            "http: { url: \"http://127.0.0.1:8080/health\"",
            "http: { url: \"http://u:pw@127.0.0.1:8080/health\"",
            "the URL carries credentials",
        ),
        (
            "duration: 1m",
            "duration: 1s",
            "the duration (1s) is shorter than the interval (5s)",
        ),
        (
            "name: orders",
            "name: errors",
            "metric `errors` is named twice",
        ),
        (
            "        sql: { database_url",
            "        http: { url: \"http://x\" }\n        sql: { database_url",
            "the metric has 2 sources: http, sql",
        ),
        (
            "query: \"SELECT count(*) FROM orders\"",
            "query: \"\"",
            "the query is 0 bytes",
        ),
        (
            "failure_limit: 1",
            "failure_limit: -1",
            "-1 is out of range",
        ),
    ] {
        assert!(ANALYSIS.contains(from), "{from}");
        let text = ANALYSIS.replacen(from, to, 1);
        let found = problems(&text);
        assert!(
            found
                .iter()
                .any(|d| d.message.contains(expect) && d.path.starts_with("steps[0]")),
            "{to}: expected `{expect}` in {found:#?}"
        );
    }
    let no_metrics = ANALYSIS.split("    metrics:").next().unwrap_or_default();
    let found = problems(no_metrics);
    assert!(
        found
            .iter()
            .any(|d| d.message == "missing required key `metrics`"),
        "{found:#?}"
    );
}

#[test]
fn a_deploy_analysis_needs_a_canary() {
    let text = "service: s\nenvironment: e\nversion: v\nsteps:\n  - name: d\n    kind: deploy\n    root: /srv\n    strategy: blue-green\n    start: { command: app }\n    base_port: 20000\n    listen: 20100\n    analysis: { metrics: [{ name: m, http: { url: \"http://127.0.0.1:20100/\" }, success_condition: \"success_rate > 0.9\" }] }\n";
    let found = problems(text);
    assert!(
        found
            .iter()
            .any(|d| d.path == "steps[0].analysis" && d.message.contains("not a canary")),
        "{found:#?}"
    );
    let canary = text.replace("blue-green", "canary").replace(
        "    analysis:",
        "    canary: [{ weight: 20, bake: 1m }, { weight: 100 }]\n    analysis:",
    );
    let plan = parse_plan(&canary, PlanLimits::default()).expect("a canary with analysis");
    let StepAction::Deploy(d) = &plan.steps[0].action else {
        panic!("deploy")
    };
    assert_eq!(d.analysis.as_ref().map(|a| a.measurements()), Some(6));
}

const DRILL: &str = r#"
drill: hello-db
service: hello
environment: staging
mode: failover
database:
  primary: { url: { env: PRIMARY_URL }, data_dir: /var/lib/postgresql/15/a }
  standby: { url: { env: STANDBY_URL }, data_dir: /var/lib/postgresql/15/b }
  os_user: postgres
traffic: { endpoint_file: /srv/hello/shared/database_url }
checks:
  - { url: "http://127.0.0.1:18080/health" }
write_check: { url: "http://127.0.0.1:18080/items" }
objectives: { rto: 30s, rpo: 0 }
max_lag: 8MiB
"#;

#[test]
fn a_drill_plan_parses_with_defaults_and_round_trips() {
    let plan = parse_drill(DRILL).expect("valid drill");
    assert_eq!(plan.workflow_id(), "drill/hello/staging/hello-db");
    assert_eq!(plan.max_lag_bytes, 8 * 1024 * 1024);
    assert!(plan.failback.rebuild && !plan.failback.switch_back);
    assert_eq!(plan.promote_within, crate::drill::DEFAULT_PROMOTE_WITHIN);
    assert_eq!(plan.database.standby.application_name, None);
    assert_eq!(plan.checks[0].expect_status, 200);
    let named = parse_drill(&DRILL.replace(
        "data_dir: /var/lib/postgresql/15/b }",
        "data_dir: /var/lib/postgresql/15/b, application_name: pg_b }",
    ))
    .expect("valid drill");
    assert_eq!(
        named.database.standby.application_name.as_deref(),
        Some("pg_b")
    );
    let json = serde_json::to_string(&plan).expect("json");
    assert!(!json.contains("\"host\""), "no host, no key: {json}");
    let back: crate::drill::DrillPlan = serde_json::from_str(&json).expect("back");
    assert_eq!(back, plan);
}

#[test]
fn a_drill_on_kubernetes_switches_a_secret_key_and_restarts_a_deployment() {
    let text = DRILL.replace(
        "traffic: { endpoint_file: /srv/hello/shared/database_url }",
        "traffic: { kubernetes: { namespace: shop, context: prod, secret: shop-db, key: DATABASE_URL, restart: shop } }",
    );
    let plan = parse_drill(&text).expect("valid drill");
    let crate::drill::Traffic::Kubernetes(k) = &plan.traffic else {
        panic!("{:?}", plan.traffic);
    };
    assert_eq!(k.root, "kubernetes://prod/shop");
    assert_eq!(
        (k.secret.as_str(), k.key.as_str()),
        ("shop-db", "DATABASE_URL")
    );
    assert_eq!(k.restart.as_deref(), Some("shop"));
    assert_eq!(k.rollout_within, std::time::Duration::from_secs(300));
    assert_eq!(plan.traffic.host(), None);
    let input = plan.traffic.switch_to(&plan.database.standby.url);
    assert_eq!(input.kubernetes.as_ref(), Some(k));
    assert!(input.endpoint_file.is_empty());
    let back: crate::drill::DrillPlan =
        serde_json::from_str(&serde_json::to_string(&plan).expect("json")).expect("back");
    assert_eq!(back, plan);
}

#[test]
fn a_drill_places_each_node_and_the_endpoint_on_its_host() {
    let text = DRILL
        .replace("15/a }", "15/a, host: db-1 }")
        .replace("15/b }", "15/b, host: db-2 }")
        .replace("database_url }", "database_url, host: app-1 }");
    let plan = parse_drill(&text).expect("valid drill");
    assert_eq!(plan.database.primary.host.as_deref(), Some("db-1"));
    assert_eq!(plan.database.standby.host.as_deref(), Some("db-2"));
    assert_eq!(plan.traffic.host(), Some("app-1"));
    let json = serde_json::to_string(&plan).expect("json");
    let back: crate::drill::DrillPlan = serde_json::from_str(&json).expect("back");
    assert_eq!(back, plan);
}

#[test]
fn bad_drill_plans_are_refused_with_positions() {
    for (from, to, expect) in [
        ("mode: failover", "mode: chaos", "unknown mode `chaos`"),
        (
            "data_dir: /var/lib/postgresql/15/b",
            "data_dir: /var/lib/postgresql/15/a",
            "the same data directory",
        ),
        (
            "data_dir: /var/lib/postgresql/15/b",
            "data_dir: relative/b",
            "is not an absolute path",
        ),
        (
            "data_dir: /var/lib/postgresql/15/b",
            "data_dir: /var/../etc",
            "is not an absolute path",
        ),
        ("rto: 30s", "rto: -1s", "is negative"),
        ("max_lag: 8MiB", "max_lag: lots", "`lots` is not a size"),
        (
            "url: { env: PRIMARY_URL }",
            "url: \"postgres://u:p@h/d\"",
            "expected a mapping",
        ),
        (
            "write_check: { url: \"http://127.0.0.1:18080/items\" }",
            "write_check: { url: \"http://a:b@127.0.0.1/items\" }",
            "carries credentials",
        ),
        (
            "max_lag: 8MiB",
            "max_lag: 8MiB\nfailback: { rebuild: false, switch_back: true }",
            "needs the old primary rebuilt",
        ),
        (
            "drill: hello-db",
            "drill: Hello DB",
            "is not a valid drill name",
        ),
        (
            "data_dir: /var/lib/postgresql/15/b }",
            "data_dir: /var/lib/postgresql/15/b, application_name: \"b' OR 1=1\" }",
            "is not a valid application name",
        ),
        (
            "max_lag: 8MiB",
            "max_lag: 8MiB\npromote_within: 100ms",
            "between 1s and 1h",
        ),
        (
            "max_lag: 8MiB",
            "max_lag: 8MiB\npromote_within: soon",
            "is not a duration",
        ),
        (
            "data_dir: /var/lib/postgresql/15/b }",
            "data_dir: /var/lib/postgresql/15/b, host: \"../db\" }",
            "is not a valid host name",
        ),
        (
            "traffic: { endpoint_file: /srv/hello/shared/database_url }",
            "traffic: { endpoint_file: /srv/hello/shared/database_url, host: [a] }",
            "expected",
        ),
        (
            "traffic: { endpoint_file: /srv/hello/shared/database_url }",
            "traffic: { endpoint_file: ../hello/shared/database_url }",
            "is not a usable path",
        ),
        (
            "traffic: { endpoint_file: /srv/hello/shared/database_url }",
            "traffic: { kubernetes: { namespace: shop, secret: Shop_DB, key: URL } }",
            "`Shop_DB` is not a valid Kubernetes name",
        ),
        (
            "traffic: { endpoint_file: /srv/hello/shared/database_url }",
            "traffic: { kubernetes: { namespace: shop, secret: shop-db, key: \"a/b\" } }",
            "is not a valid Secret key",
        ),
        (
            "traffic: { endpoint_file: /srv/hello/shared/database_url }",
            "traffic: { kubernetes: { secret: shop-db, key: URL } }",
            "namespace",
        ),
        (
            "traffic: { endpoint_file: /srv/hello/shared/database_url }",
            "traffic: { kubernetes: { namespace: shop, key: URL } }",
            "secret",
        ),
        (
            "traffic: { endpoint_file: /srv/hello/shared/database_url }",
            "traffic: { kubernetes: { namespace: shop, secret: s, key: URL, value: x } }",
            "value",
        ),
        (
            "traffic: { endpoint_file: /srv/hello/shared/database_url }",
            "traffic: { endpoint_file: /srv/x, kubernetes: { namespace: shop, secret: s, key: URL } }",
            "endpoint_file",
        ),
    ] {
        assert!(DRILL.contains(from), "{from}");
        let text = DRILL.replacen(from, to, 1);
        let found = match parse_drill(&text) {
            Ok(p) => panic!("{to}: expected problems, got {p:?}"),
            Err(d) => d.0,
        };
        assert!(
            found
                .iter()
                .any(|d| d.message.contains(expect) && d.line > 1),
            "{to}: expected `{expect}` in {found:#?}"
        );
    }
    let no_checks = DRILL
        .replace(
            "checks:\n  - { url: \"http://127.0.0.1:18080/health\" }\n",
            "",
        )
        .replace(
            "write_check: { url: \"http://127.0.0.1:18080/items\" }\n",
            "",
        );
    let found = parse_drill(&no_checks).expect_err("no checks").0;
    assert!(
        found[0]
            .message
            .contains("no way to prove the service works"),
        "{found:#?}"
    );
}

/// Every kind of step, with every option that has a serde name of its own.
const EVERY_KIND: &str = r#"
service: hello
environment: dev
version: "2.0.0"
steps:
  - { name: prov, kind: provision, root: .cutover/releases }
  - { name: build, kind: build, command: cargo, args: [build], artifact: target/debug/hello }
  - { name: cmd, kind: command, command: "true", timeout: 5s }
  - { name: migrate, kind: migrate, database_url: { env: DB }, directory: migrations, target_version: 2 }
  - { name: gate, kind: approval, required: 2, timeout: 90s, on_timeout: continue }
  - { name: bake, kind: bake, duration: 10m }
  - name: deploy
    kind: deploy
    root: .cutover/releases
    strategy: canary
    start: { command: ./hello }
    instances: 2
    base_port: 18100
    listen: 18080
    health: { path: /health, timeout: 3s }
    rollback_window: 30s
    canary: [{ weight: 10, bake: 1m }, { weight: 100 }]
  - { name: smoke, kind: verify, url: "http://127.0.0.1:8080/health", request_timeout: 2s }
  - { name: back, kind: rollback, root: .cutover/releases }
"#;

/// What the CLI sends is what the workflow gets: a plan survives its JSON round trip
/// unchanged. (An approval's timeout used to share the `timeout` key with its step's and was
/// lost on the way: approvals started through the CLI never timed out.)
#[test]
fn every_step_kind_survives_the_json_round_trip() {
    let plan = parse_plan(EVERY_KIND, PlanLimits::default()).expect("valid plan");
    let json = serde_json::to_string(&plan).expect("serialises");
    let back: Plan = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, plan, "{json}");
    let StepAction::Approval(a) = &back.steps[4].action else {
        panic!("approval expected")
    };
    assert_eq!(a.timeout, Some(Duration::from_secs(90)));
}

#[test]
fn non_retryable_names_known_error_kinds_only() {
    let plan = |kinds: &str| {
        format!(
            "service: a\nenvironment: b\nversion: \"1\"\nsteps:\n  - {{ name: x, kind: command, command: \"true\", retry: {{ non_retryable: [{kinds}] }} }}\n"
        )
    };
    let ok = parse_plan(&plan("CommandFailed, Timeout"), PlanLimits::default()).expect("valid");
    assert_eq!(
        ok.steps[0].retry.non_retryable,
        vec![
            crate::contracts::error_kind::ErrorKind::CommandFailed,
            crate::contracts::error_kind::ErrorKind::Timeout
        ]
    );
    let found = problems(&plan("CommandFaild"));
    assert!(
        found
            .iter()
            .any(|d| d.message == "unknown error kind `CommandFaild`"
                && d.path == "steps[0].retry.non_retryable"
                && d.hint
                    .as_deref()
                    .is_some_and(|h| h.contains("did you mean `CommandFailed`"))),
        "{found:?}"
    );
}

/// A plan recorded before the approval's timeout got its own wire name has `timeout` twice in
/// an approval step. It must still be a valid workflow input, read as it ran (no approval
/// timeout), or in-flight rollouts of that time would fail on replay.
#[test]
fn a_plan_recorded_with_the_duplicate_timeout_key_is_still_a_valid_input() {
    let old = r#"{"service":"a","environment":"test","version":"2","target":{"driver":"host"},"steps":[{"name":"gate","timeout":"1s","heartbeat_timeout":"1s","retry":{"initial_interval":"1s","backoff_coefficient":2.0,"maximum_interval":"1m","maximum_attempts":3,"non_retryable":[]},"kind":"approval","required":1,"timeout":"1s","on_timeout":"abort"}],"on_failure":"rollback"}"#;
    let input: crate::input::Input<Plan> = serde_json::from_str(old).expect("any JSON is an input");
    let plan = input.into_result().expect("the old wire format is valid");
    let StepAction::Approval(a) = &plan.steps[0].action else {
        panic!("approval expected")
    };
    assert_eq!(a.timeout, None);
    assert_eq!(plan.steps[0].timeout, Duration::from_secs(1));
}

const REGION: &str = "region:\n  from: a\n  to: b\n  secondary_checks: [{ url: \"http://10.1.0.5:8080/health\" }]\n  router: { host: lb, root: /srv/router, listen: 80, backends: { a: \"10.0.0.5:8080\", b: \"10.1.0.5:8080\" } }\n";

#[test]
fn a_region_drill_names_the_router_and_both_regions() {
    let plan = parse_drill(&format!("{DRILL}{REGION}")).expect("valid drill");
    let region = plan.region.clone().expect("region");
    assert_eq!((region.from.as_str(), region.to.as_str()), ("a", "b"));
    assert_eq!(region.router.backends["b"], "10.1.0.5:8080");
    let json = serde_json::to_string(&plan).expect("json");
    let back: crate::drill::DrillPlan = serde_json::from_str(&json).expect("back");
    assert_eq!(back, plan);
    for (from, to, expect) in [
        ("to: b", "to: a", "`from` and `to` are the same region"),
        (
            "  secondary_checks: [{ url: \"http://10.1.0.5:8080/health\" }]\n",
            "",
            "missing required key `secondary_checks`",
        ),
        (
            "b: \"10.1.0.5:8080\"",
            "c: \"10.1.0.5:8080\"",
            "no address for host `b`",
        ),
        ("host: lb,", "", "missing required key `host`"),
        ("to: b", "to: \"../b\"", "is not a valid region name"),
    ] {
        let text = format!("{DRILL}{}", REGION.replace(from, to));
        let problems = match parse_drill(&text) {
            Ok(_) => panic!("{to}: expected problems"),
            Err(d) => d.render("drill.yaml"),
        };
        assert!(
            problems.contains(expect),
            "{to}: expected `{expect}` in {problems}"
        );
    }
}

#[test]
fn who_may_act_is_checked_with_positions() {
    let base = "service: s\nenvironment: e\nversion: \"1\"\n";
    let step = "steps:\n  - { name: ok, kind: approval, approvers: [ana, \"group:ops\"] }\n";
    let plan = parse_plan(
        &format!("{base}separation: author\ncontrols: {{ abort: [lead], promote: [\"group:ops\"] }}\n{step}"),
        PlanLimits::default(),
    )
    .expect("valid");
    assert_eq!(plan.separation, Some(crate::plan::Separation::Author));
    let controls = plan.controls.as_ref().expect("controls");
    assert_eq!(controls.abort.as_deref(), Some(&["lead".to_owned()][..]));
    assert!(controls.pause.is_none(), "unlisted actions stay open");
    let StepAction::Approval(a) = &plan.steps[0].action else {
        panic!("approval")
    };
    assert_eq!(a.approvers, ["ana", "group:ops"]);
    assert!(crate::guard::guarded(&plan));

    for (text, line, path, message) in [
        (
            format!("{base}separation: duties\n{step}"),
            4,
            "separation",
            "unknown separation `duties`",
        ),
        (
            format!("{base}controls: {{ deploy: [ana] }}\n{step}"),
            4,
            "controls.deploy",
            "unknown key",
        ),
        (
            format!("{base}controls: {{ abort: [] }}\n{step}"),
            4,
            "controls.abort",
            "0 entries",
        ),
        (
            format!("{base}controls: {{ abort: \"ana\" }}\n{step}"),
            4,
            "controls.abort",
            "expected a list",
        ),
        (
            format!("{base}steps:\n  - {{ name: a, kind: approval, approvers: [ana, ana] }}\n"),
            5,
            "steps[0].approvers[1]",
            "listed twice",
        ),
        (
            format!(
                "{base}steps:\n  - {{ name: a, kind: approval, approvers: [\"ana; rm -rf /\"] }}\n"
            ),
            5,
            "steps[0].approvers[0]",
            "letters, digits",
        ),
        (
            format!("{base}steps:\n  - {{ name: a, kind: approval, approvers: [\"group:\"] }}\n"),
            5,
            "steps[0].approvers[0]",
            "1 to 100 characters",
        ),
    ] {
        let found = problems(&text);
        assert!(
            found
                .iter()
                .any(|d| d.line == line && d.path == path && d.message.contains(message)),
            "{text}\nexpected {line} {path}: {message}, got {found:?}"
        );
    }
}

#[test]
fn a_migrate_down_needs_a_target() {
    let base = "service: s\nenvironment: e\nversion: \"1\"\nsteps:\n  - { name: m, kind: migrate, database_url: { env: DB }, directory: migrations";
    let plan = parse_plan(
        &format!("{base}, direction: down, target_version: 1 }}\n"),
        PlanLimits::default(),
    )
    .expect("valid");
    let StepAction::Migrate(spec) = &plan.steps[0].action else {
        panic!("migrate")
    };
    assert_eq!(
        (spec.direction, spec.target_version),
        (crate::plan::Direction::Down, Some(1))
    );
    for (text, message) in [
        (
            format!("{base}, direction: down }}\n"),
            "`direction: down` without `target_version`",
        ),
        (
            format!("{base}, direction: sideways, target_version: 1 }}\n"),
            "unknown direction `sideways`",
        ),
        (
            format!("{base}, direction: down, target_version: 1, dry_run: true }}\n"),
            "`dry_run` with `direction: down`",
        ),
    ] {
        let found = problems(&text);
        assert!(
            found
                .iter()
                .any(|d| d.line == 5 && d.message.contains(message)),
            "{text}: {found:?}"
        );
    }
}

#[test]
fn undo_is_a_command_of_command_and_build_steps() {
    let base = "service: s\nenvironment: e\nversion: \"1\"\nsteps:\n";
    let plan = parse_plan(
        &format!("{base}  - {{ name: tf, kind: command, command: terraform, args: [apply], undo: {{ command: terraform, args: [destroy], timeout: 20m, attempts: 2 }} }}\n"),
        PlanLimits::default(),
    )
    .expect("valid");
    let undo = plan.steps[0].undo.as_ref().expect("undo");
    assert_eq!(
        (undo.command.command.as_str(), undo.timeout, undo.attempts),
        ("terraform", Duration::from_secs(1200), 2)
    );
    for (text, path, message) in [
        (
            format!(
                "{base}  - {{ name: a, kind: verify, url: \"http://x\", undo: {{ command: rm }} }}\n"
            ),
            "steps[0].undo",
            "unknown key",
        ),
        (
            format!("{base}  - {{ name: a, kind: command, command: x, undo: {{ args: [y] }} }}\n"),
            "steps[0].undo",
            "missing required key `command`",
        ),
        (
            format!(
                "{base}  - {{ name: a, kind: command, command: x, undo: {{ command: y, attempts: 0 }} }}\n"
            ),
            "steps[0].undo.attempts",
            "",
        ),
        (
            format!(
                "{base}  - {{ name: a, kind: command, command: x, undo: {{ command: y, then: z }} }}\n"
            ),
            "steps[0].undo.then",
            "unknown key",
        ),
    ] {
        let found = problems(&text);
        assert!(
            found
                .iter()
                .any(|d| d.path == path && d.message.contains(message)),
            "{text}: {found:?}"
        );
    }
}

#[test]
fn references_are_checked_with_their_positions() {
    let base = "service: s\nenvironment: e\nversion: \"1\"\nvars: { region: eu }\nsteps:\n  - { name: build, kind: build, command: make, artifact: out }\n";
    let plan = parse_plan(
        &format!("{base}  - {{ name: tag, kind: command, command: tag, args: [\"${{steps.build.artifact.sha256}}\", \"${{vars.region}}\", \"${{version}}\"] }}\n"),
        PlanLimits::default(),
    )
    .expect("valid");
    assert_eq!(plan.vars["region"], "eu");
    for (step, message) in [
        (
            "  - { name: t, kind: command, command: tag, args: [\"${vars.zone}\"] }\n",
            "declares no variable `zone`",
        ),
        (
            "  - { name: t, kind: command, command: tag, args: [\"${steps.later.x}\"] }\n",
            "no earlier step is named `later`",
        ),
        (
            "  - { name: t, kind: command, command: tag, env: { A: \"${HOME}\" } }\n",
            "not a reference Cutover knows",
        ),
        (
            "  - { name: t, kind: command, command: tag, args: [\"${version\"] }\n",
            "without a closing",
        ),
    ] {
        let found = problems(&format!("{base}{step}"));
        assert!(
            found
                .iter()
                .any(|d| d.line == 7 && d.message.contains(message)),
            "{step}: {found:?}"
        );
    }
    let found = problems(
        "service: s\nenvironment: e\nversion: \"1\"\nvars: { 9lives: x }\nsteps:\n  - { name: a, kind: command, command: x }\n",
    );
    assert!(
        found
            .iter()
            .any(|d| d.path == "vars.9lives" && d.message.contains("not a variable name")),
        "{found:?}"
    );
}

#[test]
fn freeze_windows_parse_and_bad_ones_are_refused_with_positions() {
    let base = "service: a\nenvironment: b\nversion: c\nsteps:\n  - { name: x, kind: command, command: \"true\" }\nfreeze:\n";
    let good = format!(
        "{base}  - {{ name: weekend, cron: \"0 18 * * 5\", duration: 62h, timezone: Europe/Berlin }}\n  - {{ name: holidays, from: \"2026-12-20T00:00:00Z\", until: \"2027-01-02T00:00:00Z\", during: wait }}\n"
    );
    let plan = parse_plan(&good, PlanLimits::default()).expect("valid windows");
    assert_eq!(plan.freeze.len(), 2);
    assert_eq!(
        plan.freeze[1].during,
        crate::plan::freeze::FreezeAction::Wait
    );
    assert!(plan.problems().is_empty());
    let cases = [
        (
            "  - { name: w, cron: \"every friday\", duration: 1h }\n",
            "freeze[0]",
            "not a cron expression",
        ),
        (
            "  - { name: w, cron: \"0 18 * * 5\" }\n",
            "freeze[0]",
            "`cron` with `duration`",
        ),
        (
            "  - { name: w, cron: \"0 18 * * 5\", duration: 1h, timezone: Mars/Base }\n",
            "freeze[0]",
            "IANA",
        ),
        (
            "  - { name: w, from: \"2027-01-02T00:00:00Z\", until: \"2026-12-20T00:00:00Z\" }\n",
            "freeze[0]",
            "before `until`",
        ),
        (
            "  - { name: w, from: \"christmas\", until: \"2027-01-02T00:00:00Z\" }\n",
            "freeze[0].from",
            "not a date and time",
        ),
        (
            "  - { name: w, from: \"2026-12-20T00:00:00Z\", until: \"2027-01-02T00:00:00Z\", during: queue }\n",
            "freeze[0].during",
            "unknown `during",
        ),
        (
            "  - { name: w, cron: \"0 18 * * 5\", duration: 1h }\n  - { name: w, cron: \"0 9 * * 1\", duration: 1h }\n",
            "freeze[1].name",
            "named twice",
        ),
        (
            "  - { cron: \"0 18 * * 5\", duration: 1h }\n",
            "freeze[0]",
            "missing required key `name`",
        ),
    ];
    for (windows, path, message) in cases {
        let found = problems(&format!("{base}{windows}"));
        assert!(
            found
                .iter()
                .any(|d| d.path == path && d.message.contains(message) && d.line > 0),
            "{windows}: expected `{message}` at {path}: {found:#?}"
        );
    }
    // A plan can't override its own freeze: only a starter can.
    let found = problems(&format!("{good}freeze_override: {{ by: me, reason: x }}\n"));
    assert!(
        found
            .iter()
            .any(|d| d.message.contains("unknown key `freeze_override`")),
        "{found:#?}"
    );
}

#[test]
fn the_example_drill_switches_the_file_the_example_plans_give_the_app() {
    // Compiled in: a change to either file rebuilds and reruns this.
    let drill = include_str!("../../../../examples/drills/hello-failover.yaml");
    let drill = parse_drill(drill).expect("the example drill is valid");
    let crate::drill::Traffic::EndpointFile { path: endpoint, .. } = &drill.traffic else {
        panic!("a host endpoint file")
    };
    let plans = [
        (
            "hello-v1.yaml",
            include_str!("../../../../examples/plans/hello-v1.yaml"),
        ),
        (
            "hello-v2.yaml",
            include_str!("../../../../examples/plans/hello-v2.yaml"),
        ),
    ];
    for (v, text) in plans {
        let plan = parse_plan(text, PlanLimits::default()).expect("the example plan is valid");
        let deploy = plan
            .steps
            .iter()
            .find_map(|s| match &s.action {
                StepAction::Deploy(d) => Some(d),
                _ => None,
            })
            .expect("a deploy step");
        assert_eq!(
            deploy.start.env.get("DATABASE_URL_FILE"),
            Some(endpoint),
            "{v}: the app must read the file the drill rewrites"
        );
        assert_eq!(
            (plan.service.as_str(), plan.environment.as_str()),
            (drill.service.as_str(), drill.environment.as_str())
        );
    }
}
