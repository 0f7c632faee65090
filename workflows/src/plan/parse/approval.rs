//! Parsing `approval` steps: how many people, how long, and what a timeout does.

use super::{Cx, Fields, join, truncate};
use crate::plan::types::{ApprovalSpec, OnTimeout};

impl Cx {
    /// An approval's `timeout` is how long to wait for people (absent: forever), not an
    /// activity timeout, so it is read here rather than as the step's.
    pub(super) fn approval(&mut self, fields: &Fields<'_>, path: &str) -> Option<ApprovalSpec> {
        let required = match fields.get("required") {
            Some(n) => self
                .integer(n, &join(path, "required"), 1, 20)
                .map(|v| v as u32),
            None => Some(1),
        };
        let timeout = match fields.get("timeout") {
            Some(n) => self.duration(n, &join(path, "timeout")).map(Some),
            None => Some(None),
        };
        let on_timeout = match fields.get("on_timeout") {
            Some(n) => match self.string(n, &join(path, "on_timeout")).as_deref() {
                Some("abort") => Some(OnTimeout::Abort),
                Some("continue") => Some(OnTimeout::Continue),
                Some(other) => {
                    self.report(
                        n,
                        &join(path, "on_timeout"),
                        format!("unknown on_timeout `{}`", truncate(other)),
                        "use `abort` or `continue`",
                    );
                    None
                }
                None => None,
            },
            None => Some(OnTimeout::Abort),
        };
        let approvers = match fields.get("approvers") {
            Some(n) => self.approvers(n, &join(path, "approvers")),
            None => Some(Vec::new()),
        };
        Some(ApprovalSpec {
            approvers: approvers?,
            required: required?,
            timeout: timeout?,
            on_timeout: on_timeout?,
        })
    }
}

impl Cx {
    /// A list of people (`ana`) and groups (`group:release-managers`): names by the name rules,
    /// at most 100, none twice.
    pub(super) fn approvers(&mut self, node: &super::Node, path: &str) -> Option<Vec<String>> {
        let list = self.string_list(node, path)?;
        let mut ok = true;
        if list.is_empty() || list.len() > 100 {
            self.report(
                node,
                path,
                format!("{} entries", list.len()),
                "name between 1 and 100 people or `group:NAME` entries (leave the key out to let anyone act)",
            );
            ok = false;
        }
        for (i, entry) in list.iter().enumerate() {
            if let Err(why) = crate::guard::check_principal(entry) {
                self.report(
                    node,
                    &format!("{path}[{i}]"),
                    why,
                    "write a person's name (`ana`) or a group (`group:release-managers`)",
                );
                ok = false;
            } else if list[..i].contains(entry) {
                self.report(
                    node,
                    &format!("{path}[{i}]"),
                    format!("`{}` is listed twice", truncate(entry)),
                    "list each person or group once",
                );
                ok = false;
            }
        }
        ok.then_some(list)
    }

    /// `controls: {promote: [..], pause: [..], resume: [..], abort: [..], retry: [..]}`.
    pub(super) fn controls(&mut self, node: &super::Node) -> Option<crate::plan::Controls> {
        let fields = self.fields(node, "controls")?;
        let known = ["promote", "pause", "resume", "abort", "retry"];
        self.unknown_keys(&fields, &known);
        let mut c = crate::plan::Controls::default();
        let mut ok = true;
        for key in known {
            let Some(n) = fields.get(key) else { continue };
            let list = self.approvers(n, &join("controls", key));
            ok &= list.is_some();
            let slot = match key {
                "promote" => &mut c.promote,
                "pause" => &mut c.pause,
                "resume" => &mut c.resume,
                "abort" => &mut c.abort,
                _ => &mut c.retry,
            };
            *slot = list;
        }
        ok.then_some(c)
    }

    /// `separation: author`.
    pub(super) fn separation(&mut self, node: &super::Node) -> Option<crate::plan::Separation> {
        match self.string(node, "separation").as_deref() {
            Some("author") => Some(crate::plan::Separation::Author),
            Some(other) => {
                self.report(
                    node,
                    "separation",
                    format!("unknown separation `{}`", truncate(other)),
                    "use `separation: author` (the release's author may not approve it)",
                );
                None
            }
            None => None,
        }
    }
}
