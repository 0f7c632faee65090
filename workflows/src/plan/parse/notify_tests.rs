//! `notify:`: good blocks parse with their defaults; every mistake is reported where it is,
//! with what to write instead, and nothing is half-accepted.

use super::tests::problems;
use super::*;
use crate::plan::notify::{Destination, NotifyEvent};
use crate::plan::types::SecretRef;

const BASE: &str = "service: a\nenvironment: b\nversion: c\nsteps:\n  - { name: x, kind: command, command: \"true\" }\nnotify:\n";

fn with(block: &str) -> String {
    format!("{BASE}{block}")
}

/// The (path, message) of each problem.
fn said(block: &str) -> Vec<(String, String)> {
    problems(&with(block))
        .into_iter()
        .map(|d| (d.path, d.message))
        .collect()
}

#[test]
fn slack_and_signed_webhooks_parse_with_names_and_events() {
    let plan = parse_plan(
        &with("  - { slack: { env: SLACK_URL }, on: [approval, failed, failed] }\n  - name: bot\n    webhook: { url: { file: /etc/hook-url }, secret: { env: HOOK_KEY } }\n"),
        PlanLimits::default(),
    )
    .expect("valid");
    assert_eq!(plan.notify.len(), 2);
    assert_eq!(plan.notify[0].name, "slack", "named after its kind");
    assert_eq!(
        plan.notify[0].to,
        Destination::Slack {
            url: SecretRef::Env("SLACK_URL".into())
        }
    );
    assert_eq!(
        plan.notify[0].on,
        [NotifyEvent::Approval, NotifyEvent::Failed],
        "a repeated event counts once"
    );
    assert!(plan.notify[0].wants(NotifyEvent::Failed));
    assert!(!plan.notify[0].wants(NotifyEvent::Started));
    assert_eq!(plan.notify[1].name, "bot");
    assert!(plan.notify[1].on.is_empty());
    assert!(
        NotifyEvent::ALL.iter().all(|e| plan.notify[1].wants(*e)),
        "no `on` means every event"
    );
    // No secret value is in the plan: only where to read it.
    let json = serde_json::to_string(&plan).expect("json");
    assert!(json.contains("HOOK_KEY") && json.contains("/etc/hook-url"));
}

#[test]
fn malformed_notifiers_are_refused_with_where_and_what_to_write() {
    let cases: &[(&str, &str, &str)] = &[
        ("  slack: x\n", "notify", "expected a list of notifiers"),
        (
            "  - { on: [failed] }\n",
            "notify[0]",
            "exactly one of `slack` or `webhook`",
        ),
        (
            "  - { slack: { env: A }, webhook: { url: { env: B }, secret: { env: C } } }\n",
            "notify[0]",
            "exactly one of `slack` or `webhook`",
        ),
        (
            "  - { slack: \"https://hooks.example/T000\" }\n",
            "notify[0].slack",
            "expected a mapping",
        ),
        (
            "  - { webhook: { url: { env: B } } }\n",
            "notify[0].webhook",
            "missing required key `secret`",
        ),
        (
            "  - { slack: { env: A, file: b } }\n",
            "notify[0].slack",
            "exactly one of `env` or `file`",
        ),
        (
            "  - { slack: { env: A }, on: [finished] }\n",
            "notify[0].on[0]",
            "unknown event `finished`",
        ),
        (
            "  - { slack: { env: A }, on: [passed] }\n",
            "notify[0].on[0]",
            "unknown event `passed`",
        ),
        (
            "  - { slack: { env: A }, on: failed }\n",
            "notify[0].on",
            "expected a list",
        ),
        (
            "  - { slack: { env: A }, colour: red }\n",
            "notify[0].colour",
            "unknown key `colour`",
        ),
        (
            "  - { name: \"../../etc\", slack: { env: A } }\n",
            "notify[0].name",
            "is not a valid notifier name",
        ),
        (
            "  - { slack: { env: A } }\n  - { slack: { env: B } }\n",
            "notify[1].name",
            "notifier `slack` is named twice",
        ),
    ];
    for (block, path, message) in cases {
        let found = said(block);
        assert!(
            found.iter().any(|(p, m)| p == path && m.contains(message)),
            "{block}: expected `{message}` at {path}, got {found:?}"
        );
    }
}

#[test]
fn too_many_notifiers_are_refused() {
    let block: String = (0..crate::plan::notify::MAX_NOTIFIERS + 1)
        .map(|i| format!("  - {{ name: n{i}, slack: {{ env: A }} }}\n"))
        .collect();
    let found = said(&block);
    assert!(
        found
            .iter()
            .any(|(p, m)| p == "notify" && m.contains("at most 8")),
        "{found:?}"
    );
}

#[test]
fn an_unknown_event_suggests_the_closest() {
    let found = problems(&with("  - { slack: { env: A }, on: [aproval] }\n"));
    assert_eq!(
        found[0]
            .hint
            .as_deref()
            .map(|h| h.contains("did you mean `approval`?")),
        Some(true),
        "{found:?}"
    );
}
