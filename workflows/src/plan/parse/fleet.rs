//! Parsing fleets: `target.hosts`, and a deploy's `waves`, `max_unavailable` and
//! `between_waves`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Cx, Fields, join, truncate};
use crate::plan::fleet::{Between, WaveSize, Waves};
use crate::plan::kind::StepKind;
use crate::plan::types::MAX_FLEET;
use crate::plan::yaml::{Node, Value};

const WAVES_HINT: &str = "write cumulative sizes ending with the whole fleet, e.g. `waves: [1, 50%, 100%]`, or `max_unavailable: 1`";

impl Cx {
    /// `hosts: [web-1, web-2]`: agent names, unique, at most [`MAX_FLEET`].
    pub(super) fn fleet_hosts(&mut self, node: &Node) -> Option<Vec<String>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                "target.hosts",
                format!("expected a list of host names, found {}", node.shape()),
                "write `hosts: [web-1, web-2, web-3]`",
            );
            return None;
        };
        if items.is_empty() || items.len() > MAX_FLEET {
            self.report(
                node,
                "target.hosts",
                format!("a fleet of {} hosts", items.len()),
                &format!("list 1 to {MAX_FLEET} hosts"),
            );
            return None;
        }
        let mut seen = BTreeSet::new();
        let mut hosts = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("target.hosts[{i}]");
            match self.name(item, &path, "host name") {
                Some(h) if !seen.insert(h.clone()) => {
                    self.report(
                        item,
                        &path,
                        format!("host `{h}` is listed twice"),
                        "list each host once",
                    );
                    ok = false;
                }
                Some(h) => hosts.push(h),
                None => ok = false,
            }
        }
        ok.then_some(hosts)
    }

    /// A deploy's `waves`/`max_unavailable`/`between_waves`; `Some(None)` when it has none.
    pub(super) fn waves(&mut self, fields: &Fields<'_>, path: &str) -> Option<Option<Box<Waves>>> {
        let (sizes_node, max_node, between_node) = (
            fields.get("waves"),
            fields.get("max_unavailable"),
            fields.get("between_waves"),
        );
        if sizes_node.is_none() && max_node.is_none() && between_node.is_none() {
            return Some(None);
        }
        if let (Some(_), Some(n)) = (sizes_node, max_node) {
            self.report(
                n,
                &join(path, "max_unavailable"),
                "give either `waves` or `max_unavailable`, not both",
                "keep one of them",
            );
            return None;
        }
        let sizes = match sizes_node {
            Some(n) => self.wave_sizes(n, &join(path, "waves")),
            None => Some(Vec::new()),
        };
        let max_unavailable = match max_node {
            Some(n) => self
                .integer(n, &join(path, "max_unavailable"), 1, MAX_FLEET as u64)
                .map(|v| Some(v as u32)),
            None => Some(None),
        };
        let between = match between_node {
            Some(n) => self.between_waves(n, &join(path, "between_waves")),
            None => Some(Between::default()),
        };
        Some(Some(Box::new(Waves {
            sizes: sizes?,
            max_unavailable: max_unavailable?,
            between: between?,
        })))
    }

    fn wave_sizes(&mut self, node: &Node, path: &str) -> Option<Vec<WaveSize>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                path,
                format!("expected a list of wave sizes, found {}", node.shape()),
                WAVES_HINT,
            );
            return None;
        };
        if items.is_empty() || items.len() > MAX_FLEET {
            self.report(
                node,
                path,
                format!("{} waves", items.len()),
                &format!("give 1 to {MAX_FLEET} waves; {WAVES_HINT}"),
            );
            return None;
        }
        let mut sizes = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let text = self.string(item, &p)?;
            let size = match text.strip_suffix('%') {
                Some(pct) => pct
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|p| (1..=100).contains(p))
                    .map(WaveSize::Percent),
                None => text
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_FLEET as u32).contains(n))
                    .map(WaveSize::Hosts),
            };
            let Some(size) = size else {
                self.report(
                    item,
                    &p,
                    format!("`{}` is not a wave size", truncate(&text)),
                    &format!(
                        "use a number of hosts (1 to {MAX_FLEET}) or a percentage (1% to 100%)"
                    ),
                );
                return None;
            };
            sizes.push(size);
        }
        let waves = Waves {
            sizes: sizes.clone(),
            ..Waves::default()
        };
        if let Some(why) = waves.problem() {
            self.report(node, path, why, WAVES_HINT);
            return None;
        }
        Some(sizes)
    }

    fn between_waves(&mut self, node: &Node, path: &str) -> Option<Between> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(&fields, &["verify", "analysis", "bake"]);
        let verify = match fields.get("verify") {
            Some(n) => {
                let p = join(path, "verify");
                self.fields(n, &p).and_then(|f| {
                    self.unknown_keys(&f, StepKind::Verify.keys());
                    self.verify(&f, &p).map(Some)
                })
            }
            None => Some(None),
        };
        let analysis = match fields.get("analysis") {
            Some(n) => self.analysis_block(n, &join(path, "analysis")).map(Some),
            None => Some(None),
        };
        let bake = match fields.get("bake") {
            Some(n) => self.duration_or_zero(n, &join(path, "bake")),
            None => Some(Duration::ZERO),
        };
        Some(Between {
            verify: verify?,
            analysis: analysis?,
            bake: bake?,
        })
    }
}
