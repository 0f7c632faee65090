//! Parsing `freeze:`: the windows in which the plan's rollouts do not start.

use super::{Cx, join, truncate};
use crate::plan::freeze::{FreezeAction, FreezeWindow};
use crate::plan::yaml::{Node, Value};

impl Cx {
    /// `freeze: [{ name, cron, duration, timezone, during } | { name, from, until, during }]`.
    pub(super) fn freeze(&mut self, node: &Node) -> Option<Vec<FreezeWindow>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                "freeze",
                format!("expected a list of windows, found {}", node.shape()),
                "write `- { name: weekend, cron: \"0 18 * * 5\", duration: 62h }` per window",
            );
            return None;
        };
        let mut windows = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.freeze_window(item, &format!("freeze[{i}]")) {
                Some(w) if windows.iter().any(|o: &FreezeWindow| o.name == w.name) => {
                    self.report(
                        item,
                        &format!("freeze[{i}].name"),
                        format!("window `{}` is named twice", w.name),
                        "give each window its own name",
                    );
                    ok = false;
                }
                Some(w) => windows.push(w),
                None => ok = false,
            }
        }
        ok.then_some(windows)
    }

    fn freeze_window(&mut self, node: &Node, path: &str) -> Option<FreezeWindow> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(
            &fields,
            &[
                "name", "cron", "duration", "timezone", "from", "until", "during",
            ],
        );
        let name = self
            .required(&fields, "name", "name the window, e.g. `name: weekend`")
            .and_then(|n| self.name(n, &join(path, "name"), "window name"));
        let text = |cx: &mut Self, key: &str| match fields.get(key) {
            Some(n) => cx.string(n, &join(path, key)).map(Some),
            None => Some(None),
        };
        let cron = text(self, "cron");
        let timezone = text(self, "timezone");
        let duration = match fields.get("duration") {
            Some(n) => self.duration(n, &join(path, "duration")).map(Some),
            None => Some(None),
        };
        let time = |cx: &mut Self, key: &str| match fields.get(key) {
            Some(n) => {
                let p = join(path, key);
                let text = cx.string(n, &p)?;
                match chrono::DateTime::parse_from_rfc3339(&text) {
                    Ok(t) => Some(Some(t.with_timezone(&chrono::Utc))),
                    Err(e) => {
                        cx.report(
                            n,
                            &p,
                            format!("`{}` is not a date and time: {e}", truncate(&text)),
                            "write RFC 3339 with its offset, e.g. `2026-12-20T00:00:00Z`",
                        );
                        None
                    }
                }
            }
            None => Some(None),
        };
        let from = time(self, "from");
        let until = time(self, "until");
        let during = match fields.get("during") {
            None => Some(FreezeAction::Refuse),
            Some(n) => match self.string(n, &join(path, "during")).as_deref() {
                Some("refuse") => Some(FreezeAction::Refuse),
                Some("wait") => Some(FreezeAction::Wait),
                Some(other) => {
                    self.report(
                        n,
                        &join(path, "during"),
                        format!("unknown `during: {}`", truncate(other)),
                        "use `refuse` (the start fails) or `wait` (it waits for the window's end)",
                    );
                    None
                }
                None => None,
            },
        };
        let window = FreezeWindow {
            name: name?,
            cron: cron?,
            duration: duration?,
            timezone: timezone?,
            from: from?,
            until: until?,
            during: during?,
        };
        if let Some(why) = window.problem() {
            self.report(
                node,
                path,
                why,
                "e.g. `{ name: weekend, cron: \"0 18 * * 5\", duration: 62h, timezone: Europe/Berlin }` or `{ name: holidays, from: 2026-12-20T00:00:00Z, until: 2027-01-02T00:00:00Z }`",
            );
            return None;
        }
        Some(window)
    }
}
