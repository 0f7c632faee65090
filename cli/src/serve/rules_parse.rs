//! Parsing trigger rules files, with the same positions, hints and limits as plans.

use cutover_workflows::plan::Diagnostics;
use cutover_workflows::plan::syntax::{Cx, Document, Node, Value, join, parse_document, truncate};

use super::rules::{EventKind, Provider, TriggerRule, TriggerRules, VersionFrom};

/// Largest rules file accepted.
const MAX_BYTES: usize = 256 * 1024;
/// Most rules in a file.
const MAX_RULES: usize = 500;

/// Parses and validates a trigger rules file. Plan paths are not opened here (no I/O): the
/// caller loads and validates each plan.
///
/// # Errors
///
/// [`Diagnostics`] listing each problem with its line, column, path, message and hint.
pub fn parse_triggers(text: &str) -> Result<TriggerRules, Diagnostics> {
    parse_document(
        text,
        Document {
            what: "rules file",
            max_bytes: MAX_BYTES,
            hint: "split the rules across receivers",
        },
        trigger_rules,
    )
}

fn trigger_rules(cx: &mut Cx, root: &Node) -> Option<TriggerRules> {
    let fields = cx.fields(root, "")?;
    cx.unknown_keys(&fields, &["rules"]);
    let node = cx.required(
        &fields,
        "rules",
        "list the rules: `rules: [{ name: ..., provider: github, ... }]`",
    )?;
    let Value::Sequence(items) = &node.value else {
        cx.report(
            node,
            "rules",
            format!("expected a list of rules, found {}", node.shape()),
            "write one `- name: ...` per rule",
        );
        return None;
    };
    if items.is_empty() || items.len() > MAX_RULES {
        cx.report(
            node,
            "rules",
            format!("{} rules", items.len()),
            &format!("give 1 to {MAX_RULES} rules"),
        );
        return None;
    }
    let mut rules: Vec<TriggerRule> = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let path = format!("rules[{i}]");
        match trigger_rule(cx, item, &path) {
            Some(rule) if rules.iter().any(|r| r.name == rule.name) => {
                cx.report(
                    item,
                    &join(&path, "name"),
                    format!("rule `{}` is named twice", rule.name),
                    "give each rule its own name",
                );
                ok = false;
            }
            Some(rule) => rules.push(rule),
            None => ok = false,
        }
    }
    ok.then_some(TriggerRules { rules })
}

fn trigger_rule(cx: &mut Cx, node: &Node, path: &str) -> Option<TriggerRule> {
    let fields = cx.fields(node, path)?;
    cx.unknown_keys(
        &fields,
        &[
            "name",
            "provider",
            "repository",
            "event",
            "branch",
            "tag",
            "plan",
            "environment",
            "version",
            "on_busy",
            "notify",
        ],
    );
    let name = cx
        .required(&fields, "name", "name the rule, e.g. `name: hello-main`")
        .and_then(|n| cx.name(n, &join(path, "name"), "rule name"));
    let provider = cx
        .required(
            &fields,
            "provider",
            "choose `github`, `gitlab` or `generic`",
        )
        .and_then(|n| {
            let p = join(path, "provider");
            let name = cx.string(n, &p)?;
            match Provider::from_name(&name) {
                Some(provider) => Some(provider),
                None => {
                    let other = name.as_str();
                    cx.report(
                        n,
                        &p,
                        format!("unknown provider `{}`", truncate(other)),
                        "choose `github`, `gitlab` or `generic`",
                    );
                    None
                }
            }
        });
    let repository = cx
        .required(
            &fields,
            "repository",
            "name the repository, e.g. `repository: acme/hello`",
        )
        .and_then(|n| {
            let p = join(path, "repository");
            let text = cx.string(n, &p)?;
            let ok = !text.is_empty()
                && text.len() <= 255
                && text.contains('/')
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
            if !ok {
                cx.report(
                    n,
                    &p,
                    format!("`{}` is not a repository path", truncate(&text)),
                    "write `owner/name`, e.g. `acme/hello`",
                );
                return None;
            }
            Some(text)
        });
    let event_node = cx.required(
        &fields,
        "event",
        "choose push, tag, release, workflow_run, pipeline or deployment",
    );
    let event = event_node.and_then(|n| {
        let p = join(path, "event");
        let name = cx.string(n, &p)?;
        let kind = match EventKind::from_name(&name) {
            Some(kind) => kind,
            None => {
                let other = name.as_str();
                cx.report(
                    n,
                    &p,
                    format!("unknown event `{}`", truncate(other)),
                    "choose push, tag, release, workflow_run, pipeline or deployment",
                );
                return None;
            }
        };
        let fits = match (provider, kind) {
            (Some(Provider::Github), EventKind::Pipeline) => {
                Some("GitHub has no pipelines: use `workflow_run`")
            }
            (Some(Provider::Gitlab), EventKind::WorkflowRun) => {
                Some("GitLab has no workflow runs: use `pipeline`")
            }
            _ => None,
        };
        if let Some(hint) = fits {
            cx.report(
                n,
                &p,
                format!("`{}` is not an event of this provider", kind.as_str()),
                hint,
            );
            return None;
        }
        Some(kind)
    });
    let pattern = |cx: &mut Cx, key: &str| match fields.get(key) {
        None => Some(None),
        Some(n) => {
            let p = join(path, key);
            let text = cx.string(n, &p)?;
            if text.is_empty()
                || text.len() > 255
                || text.chars().any(char::is_whitespace)
                || super::rules::glob(&text).is_none()
            {
                cx.report(
                    n,
                    &p,
                    format!("`{}` is not a valid pattern", truncate(&text)),
                    "write a name or a glob such as `main`, `release/*` or `v*`",
                );
                return None;
            }
            Some(Some(text))
        }
    };
    let branch = pattern(cx, "branch");
    let tag = pattern(cx, "tag");
    if let (Some(kind), Some(Some(_)), Some(n)) = (event, &branch, fields.get("branch"))
        && kind.is_tag()
    {
        cx.report(
            n,
            &join(path, "branch"),
            format!("a `{}` event has a tag, not a branch", kind.as_str()),
            "use `tag:` instead",
        );
        return None;
    }
    if let (Some(kind), Some(Some(_)), Some(n)) = (event, &tag, fields.get("tag"))
        && !kind.is_tag()
    {
        cx.report(
            n,
            &join(path, "tag"),
            format!("a `{}` event has a branch, not a tag", kind.as_str()),
            "use `branch:` instead",
        );
        return None;
    }
    let plan = cx.path_value(
        &fields,
        "plan",
        path,
        "give the plan file, e.g. `plan: plans/hello.yaml`",
    );
    let environment = cx
        .required(
            &fields,
            "environment",
            "say where to release, e.g. `environment: staging`",
        )
        .and_then(|n| {
            let p = join(path, "environment");
            let text = cx.string(n, &p)?;
            let bare = text.replace("{branch}", "b");
            let ok = !bare.is_empty()
                && text.len() <= 63
                && bare
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !ok {
                cx.report(
                    n,
                    &p,
                    format!("`{}` is not a valid environment", truncate(&text)),
                    "use lowercase letters, digits, `-_.`, and optionally `{branch}`",
                );
                return None;
            }
            Some(text)
        });
    let version = match fields.get("version") {
        None => event.map(|k| {
            if k.is_tag() {
                VersionFrom::Tag
            } else {
                VersionFrom::ShortSha
            }
        }),
        Some(n) => {
            let p = join(path, "version");
            match cx.string(n, &p)?.as_str() {
                "commit_sha" => Some(VersionFrom::CommitSha),
                "short_sha" => Some(VersionFrom::ShortSha),
                "tag" => Some(VersionFrom::Tag),
                other => {
                    cx.report(
                        n,
                        &p,
                        format!("unknown version source `{}`", truncate(other)),
                        "choose commit_sha, short_sha or tag",
                    );
                    None
                }
            }
        }
    };
    if let (Some(VersionFrom::Tag), Some(kind)) = (version, event)
        && !kind.is_tag()
    {
        cx.report(
            fields.get("version").unwrap_or(fields.node),
            &join(path, "version"),
            format!(
                "a `{}` event has no tag to take the version from",
                kind.as_str()
            ),
            "use `version: short_sha` or `commit_sha`",
        );
        return None;
    }
    let on_busy = match fields.get("on_busy") {
        None => Some(cutover_workflows::queue::OnBusy::Reject),
        Some(n) => {
            let p = join(path, "on_busy");
            let text = cx.string(n, &p)?;
            match cutover_workflows::queue::OnBusy::parse(&text) {
                Ok(o) => Some(o),
                Err(why) => {
                    cx.report(n, &p, why, "choose reject, queue_latest or supersede");
                    None
                }
            }
        }
    };
    let notify = match fields.get("notify") {
        None => Some(Vec::new()),
        Some(n) => cx.notify(
            n,
            &join(path, "notify"),
            cutover_workflows::plan::notify::ROLLOUT_EVENTS,
        ),
    };
    Some(TriggerRule {
        notify: notify?,
        name: name?,
        provider: provider?,
        repository: repository?,
        event: event?,
        branch: branch?,
        tag: tag?,
        plan: plan?,
        environment: environment?,
        version: version?,
        on_busy: on_busy?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
rules:
  - name: hello-main
    provider: github
    repository: acme/hello
    event: push
    branch: main
    plan: plans/hello.yaml
    environment: staging
  - name: hello-tags
    provider: gitlab
    repository: acme/hello
    event: tag
    tag: "v*"
    plan: plans/hello.yaml
    environment: production
"#;

    #[test]
    fn trigger_rules_parse_with_defaults() {
        let rules = parse_triggers(RULES).expect("valid rules");
        assert_eq!(rules.rules.len(), 2);
        assert_eq!(rules.rules[0].version, VersionFrom::ShortSha);
        assert_eq!(rules.rules[1].version, VersionFrom::Tag);
        assert_eq!(
            rules.rules[0].on_busy,
            cutover_workflows::queue::OnBusy::Reject
        );
        let queued = RULES.replace(
            "    environment: staging\n",
            "    environment: staging\n    on_busy: queue_latest\n",
        );
        let rules = parse_triggers(&queued).expect("valid rules");
        assert_eq!(
            rules.rules[0].on_busy,
            cutover_workflows::queue::OnBusy::QueueLatest
        );
    }

    #[test]
    fn a_rules_notifiers_parse_and_bad_ones_are_refused_where_they_are() {
        let with = RULES.replace(
            "    environment: staging\n",
            "    environment: staging\n    notify: [{ name: ci, slack: { env: CI_SLACK_URL }, on: [failed] }]\n",
        );
        let rules = parse_triggers(&with).expect("valid rules");
        assert_eq!(rules.rules[0].notify.len(), 1);
        assert_eq!(rules.rules[0].notify[0].name, "ci");
        assert!(rules.rules[1].notify.is_empty());
        let bad = RULES.replace(
            "    environment: staging\n",
            "    environment: staging\n    notify: [{ slack: { env: A }, on: [passed] }]\n",
        );
        let problems = parse_triggers(&bad).expect_err("a drill's event").0;
        assert!(
            problems
                .iter()
                .any(|d| d.path == "rules[0].notify[0].on[0]" && d.message.contains("passed")),
            "{problems:?}"
        );
    }

    #[test]
    fn bad_trigger_rules_are_refused_with_positions() {
        for (from, to, expect) in [
            (
                "provider: github",
                "provider: bitbucket",
                "unknown provider `bitbucket`",
            ),
            (
                "event: push",
                "event: pipeline",
                "`pipeline` is not an event of this provider",
            ),
            ("event: push", "event: pushed", "unknown event `pushed`"),
            (
                "environment: staging",
                "environment: staging\n    on_busy: later",
                "unknown on_busy `later`",
            ),
            (
                "branch: main",
                "tag: main",
                "a `push` event has a branch, not a tag",
            ),
            (
                "repository: acme/hello",
                "repository: \"acme hello\"",
                "is not a repository path",
            ),
            (
                "environment: staging",
                "environment: Staging!",
                "is not a valid environment",
            ),
            (
                "branch: main",
                "branch: \"[main\"",
                "is not a valid pattern",
            ),
            (
                "name: hello-tags",
                "name: hello-main",
                "rule `hello-main` is named twice",
            ),
            (
                "    environment: staging\n",
                "    environment: staging\n    version: tag\n",
                "has no tag to take the version from",
            ),
            (
                "    plan: plans/hello.yaml\n    environment: staging",
                "    environment: staging",
                "missing required key `plan`",
            ),
            (
                "    environment: staging\n",
                "    environment: staging\n    colour: red\n",
                "unknown key `colour`",
            ),
        ] {
            assert!(RULES.contains(from), "{from}");
            let text = RULES.replacen(from, to, 1);
            let found = match parse_triggers(&text) {
                Ok(r) => panic!("{to}: expected problems, got {r:?}"),
                Err(d) => d.0,
            };
            assert!(
                found.iter().any(|d| d.message.contains(expect)
                    && d.path.starts_with("rules[")
                    && d.line > 1),
                "{to}: expected `{expect}` in {found:#?}"
            );
        }
        let empty = parse_triggers("rules: []\n").expect_err("no rules");
        assert!(empty.0[0].message.contains("0 rules"), "{empty:?}");
        let huge = "#".repeat(300 * 1024);
        assert!(
            parse_triggers(&huge).expect_err("huge").0[0]
                .message
                .contains("limited to")
        );
    }
}
