//! What a delivery says happened, reduced to a [`CiEvent`] that trigger rules match on.

use crate::serve::rules::{CiEvent, EventKind, Provider};
use serde_json::Value;

/// What a payload turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// An event rules can match.
    Event(CiEvent),
    /// Something Cutover does not act on (a ping, a deleted branch, a failed pipeline); the
    /// text says what, for the 202 answer and the ledger.
    Ignored(String),
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `refs/heads/x` → branch x; `refs/tags/y` → tag y.
fn split_ref(r: &str) -> (Option<String>, Option<String>) {
    if let Some(b) = r.strip_prefix("refs/heads/") {
        (Some(b.to_owned()), None)
    } else if let Some(t) = r.strip_prefix("refs/tags/") {
        (None, Some(t.to_owned()))
    } else {
        (Some(r.to_owned()), None)
    }
}

/// A GitHub delivery of event `event` (`X-GitHub-Event`).
pub(crate) fn github(event: &str, body: &Value) -> Parsed {
    let Some(repository) = text(body, "/repository/full_name") else {
        return Parsed::Ignored(format!("`{event}` event without repository.full_name"));
    };
    let make = |kind, branch, tag, commit| {
        Parsed::Event(CiEvent {
            provider: Provider::Github,
            repository: repository.clone(),
            kind,
            branch,
            tag,
            commit,
            author: text(body, "/sender/login").map(|a| clip(&a)),
        })
    };
    match event {
        "push" => {
            if body.pointer("/deleted").and_then(Value::as_bool) == Some(true) {
                return Parsed::Ignored("push that deleted a ref".to_owned());
            }
            let Some(r) = text(body, "/ref") else {
                return Parsed::Ignored("push without a ref".to_owned());
            };
            let (branch, tag) = split_ref(&r);
            let kind = if tag.is_some() {
                EventKind::Tag
            } else {
                EventKind::Push
            };
            make(kind, branch, tag, text(body, "/after"))
        }
        "release" => match text(body, "/action").as_deref() {
            Some("published") => make(
                EventKind::Release,
                None,
                text(body, "/release/tag_name"),
                text(body, "/release/target_commitish"),
            ),
            other => Parsed::Ignored(format!("release action `{}`", other.unwrap_or("none"))),
        },
        "workflow_run" => {
            let action = text(body, "/action");
            let conclusion = text(body, "/workflow_run/conclusion");
            if action.as_deref() != Some("completed") || conclusion.as_deref() != Some("success") {
                return Parsed::Ignored(format!(
                    "workflow_run {} with conclusion {}",
                    action.unwrap_or_default(),
                    conclusion.unwrap_or_else(|| "none".to_owned())
                ));
            }
            make(
                EventKind::WorkflowRun,
                text(body, "/workflow_run/head_branch"),
                None,
                text(body, "/workflow_run/head_sha"),
            )
        }
        "deployment" => {
            let r = text(body, "/deployment/ref").unwrap_or_default();
            let (branch, tag) = split_ref(&r);
            make(
                EventKind::Deployment,
                branch.or(tag),
                None,
                text(body, "/deployment/sha"),
            )
        }
        "ping" => Parsed::Ignored("ping".to_owned()),
        other => Parsed::Ignored(format!("unknown event `{}`", clip(other))),
    }
}

/// A GitLab delivery of event `event` (`X-Gitlab-Event`).
pub(crate) fn gitlab(event: &str, body: &Value) -> Parsed {
    let Some(repository) = text(body, "/project/path_with_namespace") else {
        return Parsed::Ignored(format!(
            "`{}` without project.path_with_namespace",
            clip(event)
        ));
    };
    let make = |kind, branch, tag, commit| {
        Parsed::Event(CiEvent {
            provider: Provider::Gitlab,
            repository: repository.clone(),
            kind,
            branch,
            tag,
            commit,
            author: text(body, "/user_username")
                .or_else(|| text(body, "/user/username"))
                .map(|a| clip(&a)),
        })
    };
    match event {
        "Push Hook" | "Tag Push Hook" => {
            let after = text(body, "/after").unwrap_or_default();
            if after.chars().all(|c| c == '0') {
                return Parsed::Ignored("push that deleted a ref".to_owned());
            }
            let r = text(body, "/ref").unwrap_or_default();
            let (branch, tag) = split_ref(&r);
            let kind = if tag.is_some() {
                EventKind::Tag
            } else {
                EventKind::Push
            };
            make(
                kind,
                branch,
                tag,
                text(body, "/checkout_sha").or(Some(after)),
            )
        }
        "Pipeline Hook" => {
            let status = text(body, "/object_attributes/status").unwrap_or_default();
            if status != "success" {
                return Parsed::Ignored(format!("pipeline with status `{}`", clip(&status)));
            }
            let r = text(body, "/object_attributes/ref");
            let is_tag = body
                .pointer("/object_attributes/tag")
                .and_then(Value::as_bool)
                == Some(true);
            let (branch, tag) = if is_tag { (None, r) } else { (r, None) };
            make(
                EventKind::Pipeline,
                branch,
                tag,
                text(body, "/object_attributes/sha"),
            )
        }
        "Release Hook" => match text(body, "/action").as_deref() {
            Some("create") => make(
                EventKind::Release,
                None,
                text(body, "/tag"),
                text(body, "/commit/id"),
            ),
            other => Parsed::Ignored(format!("release action `{}`", other.unwrap_or("none"))),
        },
        "Deployment Hook" => {
            let status = text(body, "/status").unwrap_or_default();
            if status != "success" {
                return Parsed::Ignored(format!("deployment with status `{}`", clip(&status)));
            }
            make(
                EventKind::Deployment,
                text(body, "/ref"),
                None,
                text(body, "/short_sha").or(text(body, "/sha")),
            )
        }
        other => Parsed::Ignored(format!("unknown event `{}`", clip(other))),
    }
}

/// A generic delivery: `{"repository", "event", "branch"?, "tag"?, "commit"?, "author"?}`.
pub(crate) fn generic(body: &Value) -> Result<Parsed, String> {
    let repository = text(body, "/repository").ok_or("missing string field `repository`")?;
    let event = text(body, "/event").ok_or("missing string field `event`")?;
    let Some(kind) = EventKind::from_name(&event) else {
        return Ok(Parsed::Ignored(format!("unknown event `{}`", clip(&event))));
    };
    Ok(Parsed::Event(CiEvent {
        provider: Provider::Generic,
        repository,
        kind,
        branch: text(body, "/branch"),
        tag: text(body, "/tag"),
        commit: text(body, "/commit"),
        author: text(body, "/author").map(|a| clip(&a)),
    }))
}

/// Names from the outside world, shortened and printable before they are echoed or stored.
pub(crate) fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn github_pushes_tags_and_runs() {
        let push = json!({"ref": "refs/heads/main", "after": "abc123", "repository": {"full_name": "acme/hello"}});
        let Parsed::Event(e) = github("push", &push) else {
            panic!("event")
        };
        assert_eq!(
            (e.kind, e.branch.as_deref(), e.commit.as_deref()),
            (EventKind::Push, Some("main"), Some("abc123"))
        );
        let tag = json!({"ref": "refs/tags/v1.0.0", "after": "abc123", "repository": {"full_name": "acme/hello"}});
        let Parsed::Event(e) = github("push", &tag) else {
            panic!("event")
        };
        assert_eq!((e.kind, e.tag.as_deref()), (EventKind::Tag, Some("v1.0.0")));
        let failed = json!({"action": "completed", "workflow_run": {"conclusion": "failure"}, "repository": {"full_name": "acme/hello"}});
        assert!(matches!(
            github("workflow_run", &failed),
            Parsed::Ignored(_)
        ));
        assert_eq!(
            github("star", &push),
            Parsed::Ignored("unknown event `star`".to_owned())
        );
        assert!(matches!(github("push", &json!({})), Parsed::Ignored(_)));
    }

    #[test]
    fn gitlab_pushes_and_pipelines() {
        let push = json!({"ref": "refs/heads/main", "after": "abc", "checkout_sha": "abc", "project": {"path_with_namespace": "acme/hello"}});
        let Parsed::Event(e) = gitlab("Push Hook", &push) else {
            panic!("event")
        };
        assert_eq!(
            (e.provider, e.branch.as_deref()),
            (Provider::Gitlab, Some("main"))
        );
        let pipeline = json!({"object_attributes": {"status": "success", "ref": "main", "tag": false, "sha": "def"}, "project": {"path_with_namespace": "acme/hello"}});
        let Parsed::Event(e) = gitlab("Pipeline Hook", &pipeline) else {
            panic!("event")
        };
        assert_eq!(
            (e.kind, e.commit.as_deref()),
            (EventKind::Pipeline, Some("def"))
        );
    }

    #[test]
    fn the_release_author_is_who_caused_the_event() {
        let push = json!({"ref": "refs/heads/main", "after": "a", "sender": {"login": "bob"}, "repository": {"full_name": "acme/hello"}});
        let Parsed::Event(e) = github("push", &push) else {
            panic!("event")
        };
        assert_eq!(e.author.as_deref(), Some("bob"));
        let push = json!({"ref": "refs/heads/main", "after": "a", "user_username": "carol", "project": {"path_with_namespace": "acme/hello"}});
        let Parsed::Event(e) = gitlab("Push Hook", &push) else {
            panic!("event")
        };
        assert_eq!(e.author.as_deref(), Some("carol"));
        let pipeline = json!({"object_attributes": {"status": "success", "ref": "main", "tag": false, "sha": "d"}, "user": {"username": "dan"}, "project": {"path_with_namespace": "acme/hello"}});
        let Parsed::Event(e) = gitlab("Pipeline Hook", &pipeline) else {
            panic!("event")
        };
        assert_eq!(e.author.as_deref(), Some("dan"));
        let Ok(Parsed::Event(e)) = generic(
            &json!({"repository": "r", "event": "push", "branch": "main", "author": "eve\u{7}"}),
        ) else {
            panic!("event")
        };
        assert!(
            e.author.is_some_and(|a| !a.contains('\u{7}')),
            "hostile names are clipped"
        );
    }

    #[test]
    fn generic_payloads_need_their_fields() {
        assert_eq!(
            generic(&json!({"event": "push"})),
            Err("missing string field `repository`".to_owned())
        );
        let Ok(Parsed::Event(e)) = generic(
            &json!({"repository": "acme/hello", "event": "push", "branch": "main", "commit": "abc"}),
        ) else {
            panic!("event")
        };
        assert_eq!(e.branch.as_deref(), Some("main"));
    }
}
