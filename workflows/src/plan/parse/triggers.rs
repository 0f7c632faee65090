//! Parsing trigger rules files, with the same positions, hints and limits as plans.

use super::{Cx, Diagnostics, Document, join, parse_document, truncate};
use crate::plan::yaml::{Node, Value};
use crate::triggers::{EventKind, Provider, TriggerRule, TriggerRules, VersionFrom};

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
        |cx, root| cx.trigger_rules(root),
    )
}

impl Cx {
    fn trigger_rules(&mut self, root: &Node) -> Option<TriggerRules> {
        let fields = self.fields(root, "")?;
        self.unknown_keys(&fields, &["rules"]);
        let node = self.required(
            &fields,
            "rules",
            "list the rules: `rules: [{ name: ..., provider: github, ... }]`",
        )?;
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                "rules",
                format!("expected a list of rules, found {}", node.shape()),
                "write one `- name: ...` per rule",
            );
            return None;
        };
        if items.is_empty() || items.len() > MAX_RULES {
            self.report(
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
            match self.trigger_rule(item, &path) {
                Some(rule) if rules.iter().any(|r| r.name == rule.name) => {
                    self.report(
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

    fn trigger_rule(&mut self, node: &Node, path: &str) -> Option<TriggerRule> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(
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
            ],
        );
        let name = self
            .required(&fields, "name", "name the rule, e.g. `name: hello-main`")
            .and_then(|n| self.name(n, &join(path, "name"), "rule name"));
        let provider = self
            .required(
                &fields,
                "provider",
                "choose `github`, `gitlab` or `generic`",
            )
            .and_then(|n| {
                let p = join(path, "provider");
                let name = self.string(n, &p)?;
                match Provider::from_name(&name) {
                    Some(provider) => Some(provider),
                    None => {
                        let other = name.as_str();
                        self.report(
                            n,
                            &p,
                            format!("unknown provider `{}`", truncate(other)),
                            "choose `github`, `gitlab` or `generic`",
                        );
                        None
                    }
                }
            });
        let repository = self
            .required(
                &fields,
                "repository",
                "name the repository, e.g. `repository: acme/hello`",
            )
            .and_then(|n| {
                let p = join(path, "repository");
                let text = self.string(n, &p)?;
                let ok = !text.is_empty()
                    && text.len() <= 255
                    && text.contains('/')
                    && text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
                if !ok {
                    self.report(
                        n,
                        &p,
                        format!("`{}` is not a repository path", truncate(&text)),
                        "write `owner/name`, e.g. `acme/hello`",
                    );
                    return None;
                }
                Some(text)
            });
        let event_node = self.required(
            &fields,
            "event",
            "choose push, tag, release, workflow_run, pipeline or deployment",
        );
        let event = event_node.and_then(|n| {
            let p = join(path, "event");
            let name = self.string(n, &p)?;
            let kind = match EventKind::from_name(&name) {
                Some(kind) => kind,
                None => {
                    let other = name.as_str();
                    self.report(
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
                self.report(
                    n,
                    &p,
                    format!("`{}` is not an event of this provider", kind.as_str()),
                    hint,
                );
                return None;
            }
            Some(kind)
        });
        let pattern = |cx: &mut Self, key: &str| match fields.get(key) {
            None => Some(None),
            Some(n) => {
                let p = join(path, key);
                let text = cx.string(n, &p)?;
                if text.is_empty()
                    || text.len() > 255
                    || text.chars().any(char::is_whitespace)
                    || crate::triggers::glob(&text).is_none()
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
        let branch = pattern(self, "branch");
        let tag = pattern(self, "tag");
        if let (Some(kind), Some(Some(_)), Some(n)) = (event, &branch, fields.get("branch"))
            && kind.is_tag()
        {
            self.report(
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
            self.report(
                n,
                &join(path, "tag"),
                format!("a `{}` event has a branch, not a tag", kind.as_str()),
                "use `branch:` instead",
            );
            return None;
        }
        let plan = self.path_value(
            &fields,
            "plan",
            path,
            "give the plan file, e.g. `plan: plans/hello.yaml`",
        );
        let environment = self
            .required(
                &fields,
                "environment",
                "say where to release, e.g. `environment: staging`",
            )
            .and_then(|n| {
                let p = join(path, "environment");
                let text = self.string(n, &p)?;
                let bare = text.replace("{branch}", "b");
                let ok = !bare.is_empty()
                    && text.len() <= 63
                    && bare
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
                if !ok {
                    self.report(
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
                match self.string(n, &p)?.as_str() {
                    "commit_sha" => Some(VersionFrom::CommitSha),
                    "short_sha" => Some(VersionFrom::ShortSha),
                    "tag" => Some(VersionFrom::Tag),
                    other => {
                        self.report(
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
            self.report(
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
        Some(TriggerRule {
            name: name?,
            provider: provider?,
            repository: repository?,
            event: event?,
            branch: branch?,
            tag: tag?,
            plan: plan?,
            environment: environment?,
            version: version?,
        })
    }
}
