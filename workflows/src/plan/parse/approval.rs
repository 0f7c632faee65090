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
        Some(ApprovalSpec {
            required: required?,
            timeout: timeout?,
            on_timeout: on_timeout?,
        })
    }
}
