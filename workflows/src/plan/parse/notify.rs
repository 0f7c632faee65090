//! Parsing `notify:` (plans, drill plans and trigger rules alike).

use super::{Cx, join, truncate};
use crate::plan::notify::{Destination, MAX_NOTIFIERS, Notifier, NotifyEvent};
use crate::plan::yaml::{Node, Value};

const HINT: &str = "e.g. `- { slack: { env: SLACK_WEBHOOK_URL }, on: [approval, failed] }` or `- { webhook: { url: { env: HOOK_URL }, secret: { env: HOOK_SECRET } } }`";

impl Cx {
    /// `notify: [{ name?, slack: SECRET_REF | webhook: { url, secret }, on? }]`, each event in
    /// `on` one of `allowed` (a rollout's or a drill's).
    pub fn notify(
        &mut self,
        node: &Node,
        path: &str,
        allowed: &[NotifyEvent],
    ) -> Option<Vec<Notifier>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                path,
                format!("expected a list of notifiers, found {}", node.shape()),
                HINT,
            );
            return None;
        };
        if items.len() > MAX_NOTIFIERS {
            self.report(
                node,
                path,
                format!(
                    "{} notifiers; at most {MAX_NOTIFIERS} are allowed",
                    items.len()
                ),
                "send to one channel that fans out instead",
            );
            return None;
        }
        let mut out: Vec<Notifier> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("{path}[{i}]");
            match self.notifier(item, &path, allowed) {
                Some(n) if out.iter().any(|o| o.name == n.name) => {
                    self.report(
                        item,
                        &join(&path, "name"),
                        format!("notifier `{}` is named twice", n.name),
                        "give each notifier its own `name:`",
                    );
                    ok = false;
                }
                Some(n) => out.push(n),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn notifier(&mut self, node: &Node, path: &str, allowed: &[NotifyEvent]) -> Option<Notifier> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(&fields, &["name", "slack", "webhook", "on"]);
        let to = match (fields.get("slack"), fields.get("webhook")) {
            (Some(n), None) => self
                .secret_ref(n, &join(path, "slack"))
                .map(|url| Destination::Slack { url }),
            (None, Some(n)) => {
                let p = join(path, "webhook");
                let hook = self.fields(n, &p)?;
                self.unknown_keys(&hook, &["url", "secret"]);
                let url = self
                    .required(&hook, "url", "`url: { env: HOOK_URL }`")
                    .and_then(|n| self.secret_ref(n, &join(&p, "url")));
                let secret = self
                    .required(
                        &hook,
                        "secret",
                        "the HMAC key receivers verify `X-Cutover-Signature` with: `secret: { env: HOOK_SECRET }`",
                    )
                    .and_then(|n| self.secret_ref(n, &join(&p, "secret")));
                Some(Destination::Webhook {
                    url: url?,
                    secret: secret?,
                })
            }
            _ => {
                self.report(
                    node,
                    path,
                    "a notifier needs exactly one of `slack` or `webhook`",
                    HINT,
                );
                None
            }
        };
        let name = match fields.get("name") {
            Some(n) => self.name(n, &join(path, "name"), "notifier name"),
            None => to.as_ref().map(|t| t.kind().to_owned()),
        };
        let on = match fields.get("on") {
            None => Some(Vec::new()),
            Some(n) => self.events(n, &join(path, "on"), allowed),
        };
        Some(Notifier {
            name: name?,
            to: to?,
            on: on?,
        })
    }

    fn events(
        &mut self,
        node: &Node,
        path: &str,
        allowed: &[NotifyEvent],
    ) -> Option<Vec<NotifyEvent>> {
        let names = self.string_list(node, path)?;
        let known: Vec<&str> = allowed.iter().map(|e| e.as_str()).collect();
        let mut out = Vec::new();
        let mut ok = true;
        for (i, name) in names.iter().enumerate() {
            match NotifyEvent::from_name(name).filter(|e| allowed.contains(e)) {
                Some(e) if !out.contains(&e) => out.push(e),
                Some(_) => {}
                None => {
                    let hint = match super::closest(name, &known) {
                        Some(best) => {
                            format!("did you mean `{best}`? (one of {})", known.join(", "))
                        }
                        None => format!("one of {}", known.join(", ")),
                    };
                    self.report(
                        node,
                        &format!("{path}[{i}]"),
                        format!("unknown event `{}`", truncate(name)),
                        &hint,
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}
