//! Trigger rules: which CI deliveries start which plan, where, and at which version.
//!
//! Read by `cutover serve` and checked by `cutover triggers validate`. Matching is pure (no
//! I/O), so it is tested here and behaves the same in every receiver.

use serde::{Deserialize, Serialize};

pub use super::rules_parse::parse_triggers;

/// Every rule of a rules file, in order: the first that matches a delivery wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRules {
    /// The rules.
    pub rules: Vec<TriggerRule>,
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRule {
    /// Shown in the ledger and in responses.
    pub name: String,
    /// Which endpoint the delivery came through.
    pub provider: Provider,
    /// `owner/name` (GitHub), `group/project` (GitLab), or what the generic sender says.
    pub repository: String,
    /// What happened.
    pub event: EventKind,
    /// Branch pattern (`main`, `release/*`) for push, workflow_run, pipeline and deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Tag pattern (`v*`) for tag and release events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The plan file (relative to the rules file) whose service and steps are used.
    pub plan: String,
    /// The environment released to; `{branch}` is replaced by the branch, made name-safe.
    pub environment: String,
    /// Where the version comes from.
    pub version: VersionFrom,
    /// While a rollout of the service and environment runs: refuse the delivery (409),
    /// queue its release (only the newest waits), or supersede the running rollout.
    #[serde(default)]
    pub on_busy: cutover_workflows::queue::OnBusy,
    /// Notifiers added to the plan's own for rollouts this rule starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<cutover_workflows::plan::notify::Notifier>,
}

/// A CI provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// GitHub webhooks.
    Github,
    /// GitLab webhooks.
    Gitlab,
    /// Anything that signs its JSON the generic way.
    Generic,
}

impl Provider {
    /// Every provider, for names and hints.
    pub const ALL: [Provider; 3] = [Provider::Github, Provider::Gitlab, Provider::Generic];

    /// The provider of a lowercase name (as in URLs and rules files).
    pub fn from_name(name: &str) -> Option<Provider> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Lowercase name, as in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Generic => "generic",
        }
    }
}

/// A kind of CI event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Commits pushed to a branch.
    Push,
    /// A tag pushed.
    Tag,
    /// A release published.
    Release,
    /// A GitHub Actions workflow run completed successfully.
    WorkflowRun,
    /// A GitLab pipeline succeeded.
    Pipeline,
    /// A deployment created.
    Deployment,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 6] = [
        EventKind::Push,
        EventKind::Tag,
        EventKind::Release,
        EventKind::WorkflowRun,
        EventKind::Pipeline,
        EventKind::Deployment,
    ];

    /// The kind of a lowercase name (as in rules files and generic deliveries).
    pub fn from_name(name: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Push => "push",
            EventKind::Tag => "tag",
            EventKind::Release => "release",
            EventKind::WorkflowRun => "workflow_run",
            EventKind::Pipeline => "pipeline",
            EventKind::Deployment => "deployment",
        }
    }

    /// Whether the event is about a tag (else a branch).
    pub fn is_tag(self) -> bool {
        matches!(self, EventKind::Tag | EventKind::Release)
    }
}

/// How a rule takes the version from a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionFrom {
    /// The full commit SHA.
    CommitSha,
    /// Its first 12 characters.
    ShortSha,
    /// The tag name.
    Tag,
}

/// A delivery, reduced to what rules match on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CiEvent {
    /// Which endpoint.
    pub provider: Provider,
    /// The repository.
    pub repository: String,
    /// What happened.
    pub kind: EventKind,
    /// The branch, for branch events.
    pub branch: Option<String>,
    /// The tag, for tag events.
    pub tag: Option<String>,
    /// The commit.
    pub commit: Option<String>,
    /// Who caused it (GitHub `sender.login`, GitLab `user_username`, generic `author`): the
    /// release's author, whom `separation: author` keeps from approving it.
    pub author: Option<String>,
}

/// What a matching rule decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision<'a> {
    /// The rule.
    pub rule: &'a TriggerRule,
    /// The version to release.
    pub version: String,
    /// The environment to release to.
    pub environment: String,
}

/// Why a delivery starts nothing; the text is the 202 answer's reason and the ledger's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoDecision {
    /// No rule is for this provider, event, repository and branch or tag.
    #[error("no rule matched {provider} {kind} of {repository}{at}")]
    NoRuleMatched {
        /// The provider's name.
        provider: &'static str,
        /// The event's name.
        kind: &'static str,
        /// The repository.
        repository: String,
        /// ` (branch b)` or ` (tag t)`, or nothing.
        at: String,
    },
    /// A rule matched, but the delivery lacks what the rule takes the version from.
    #[error("rule `{rule}` matched but the delivery has no usable {from} for the version")]
    NoVersion {
        /// The rule.
        rule: String,
        /// `tag` or `commit SHA`.
        from: &'static str,
    },
}

impl TriggerRules {
    /// The first rule that matches `event`, with the version and environment it gives.
    ///
    /// # Errors
    ///
    /// [`NoDecision`]: no rule matched, or why a matching rule could not be applied.
    pub fn decide(&self, event: &CiEvent) -> Result<Decision<'_>, NoDecision> {
        for rule in &self.rules {
            if rule.provider != event.provider
                || rule.event != event.kind
                || !rule.repository.eq_ignore_ascii_case(&event.repository)
            {
                continue;
            }
            let (pattern, value) = if event.kind.is_tag() {
                (&rule.tag, &event.tag)
            } else {
                (&rule.branch, &event.branch)
            };
            let matches = match (pattern, value) {
                (None, _) => true,
                (Some(p), Some(v)) => glob(p).is_some_and(|g| g.is_match(v)),
                (Some(_), None) => false,
            };
            if !matches {
                continue;
            }
            let version = match rule.version {
                VersionFrom::CommitSha => event.commit.clone(),
                VersionFrom::ShortSha => {
                    event.commit.as_ref().map(|c| c.chars().take(12).collect())
                }
                VersionFrom::Tag => event.tag.clone(),
            }
            .filter(|v| valid_version(v))
            .ok_or_else(|| NoDecision::NoVersion {
                rule: rule.name.clone(),
                from: match rule.version {
                    VersionFrom::Tag => "tag",
                    _ => "commit SHA",
                },
            })?;
            let branch = event.branch.as_deref().map(name_safe).unwrap_or_default();
            let environment = rule.environment.replace("{branch}", &branch);
            return Ok(Decision {
                rule,
                version,
                environment,
            });
        }
        Err(NoDecision::NoRuleMatched {
            provider: event.provider.as_str(),
            kind: event.kind.as_str(),
            repository: event.repository.clone(),
            at: match (&event.branch, &event.tag) {
                (_, Some(t)) if event.kind.is_tag() => format!(" (tag {t})"),
                (Some(b), _) => format!(" (branch {b})"),
                _ => String::new(),
            },
        })
    }
}

/// A branch or tag pattern: `*` and `?` wildcards, `[...]` classes (globset syntax).
pub fn glob(pattern: &str) -> Option<globset::GlobMatcher> {
    globset::Glob::new(pattern)
        .ok()
        .map(|g| g.compile_matcher())
}

/// Versions end up in paths and search attributes: printable, no spaces, at most 128 bytes.
fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
}

/// A branch made fit for an environment name: lowercase, other characters as `-`, at most 40.
fn name_safe(branch: &str) -> String {
    branch
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect::<String>()
        .trim_matches('-')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> TriggerRules {
        let rule =
            |name: &str, event, branch: Option<&str>, tag: Option<&str>, version| TriggerRule {
                name: name.into(),
                provider: Provider::Github,
                repository: "acme/hello".into(),
                event,
                branch: branch.map(Into::into),
                tag: tag.map(Into::into),
                plan: "hello.yaml".into(),
                environment: "staging".into(),
                version,
                on_busy: Default::default(),
                notify: Vec::new(),
            };
        TriggerRules {
            rules: vec![
                rule(
                    "main",
                    EventKind::Push,
                    Some("main"),
                    None,
                    VersionFrom::ShortSha,
                ),
                rule("tags", EventKind::Tag, None, Some("v*"), VersionFrom::Tag),
                TriggerRule {
                    environment: "preview-{branch}".into(),
                    ..rule(
                        "previews",
                        EventKind::Push,
                        Some("feature/*"),
                        None,
                        VersionFrom::CommitSha,
                    )
                },
            ],
        }
    }

    fn push(branch: &str) -> CiEvent {
        CiEvent {
            provider: Provider::Github,
            repository: "Acme/Hello".into(),
            kind: EventKind::Push,
            branch: Some(branch.into()),
            tag: None,
            commit: Some("0123456789abcdef0123".into()),
            author: None,
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let rules = rules();
        let d = rules.decide(&push("main")).expect("main matches");
        assert_eq!(
            (
                d.rule.name.as_str(),
                d.version.as_str(),
                d.environment.as_str()
            ),
            ("main", "0123456789ab", "staging")
        );
        let d = rules
            .decide(&push("feature/Login_Page"))
            .expect("feature matches");
        assert_eq!(d.environment, "preview-feature-login-page");
        assert_eq!(d.version, "0123456789abcdef0123");
        let tag = CiEvent {
            kind: EventKind::Tag,
            branch: None,
            tag: Some("v1.2.3".into()),
            ..push("main")
        };
        assert_eq!(rules.decide(&tag).expect("tag").version, "v1.2.3");
    }

    #[test]
    fn no_match_and_unusable_versions_say_why() {
        let rules = rules();
        assert_eq!(
            rules
                .decide(&push("develop"))
                .expect_err("no rule")
                .to_string(),
            "no rule matched github push of Acme/Hello (branch develop)"
        );
        let hostile = CiEvent {
            commit: Some("abc; rm -rf /".into()),
            author: None,
            ..push("main")
        };
        assert_eq!(
            rules.decide(&hostile).expect_err("bad sha").to_string(),
            "rule `main` matched but the delivery has no usable commit SHA for the version"
        );
    }
}
