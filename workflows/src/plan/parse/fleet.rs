//! Parsing fleets: `target.hosts`, and a deploy's `waves`, `max_unavailable` and
//! `between_waves`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Cx, Fields, join, truncate};
use crate::plan::fleet::{Between, Region, Router, WaveSize, Waves, valid_backend};
use crate::plan::kind::StepKind;
use crate::plan::types::MAX_FLEET;
use crate::plan::yaml::{Node, Value};

const WAVES_HINT: &str = "write cumulative sizes ending with the whole fleet, e.g. `waves: [1, 50%, 100%]`, or `max_unavailable: 1`";

impl Cx {
    /// `regions: [{ name: a, hosts: [...], router: {...} }, ...]`: rolled in this order;
    /// a host in one region only.
    pub(super) fn regions(&mut self, node: &Node) -> Option<Vec<Region>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                "target.regions",
                format!("expected a list of regions, found {}", node.shape()),
                "write `- { name: eu, hosts: [web-1, web-2], router: {...} }` per region",
            );
            return None;
        };
        let mut out: Vec<Region> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("target.regions[{i}]");
            let Some(fields) = self.fields(item, &path) else {
                ok = false;
                continue;
            };
            self.unknown_keys(&fields, &["name", "hosts", "router"]);
            let name = self
                .required(&fields, "name", "name the region, e.g. `name: eu-west`")
                .and_then(|n| self.name(n, &join(&path, "name"), "region name"));
            let hosts = self
                .required(&fields, "hosts", "list the region's hosts")
                .and_then(|n| self.fleet_hosts(n, &join(&path, "hosts")));
            let router = match (fields.get("router"), &hosts) {
                (Some(n), Some(h)) => self.router(n, h).map(Some),
                (Some(_), None) => None,
                (None, _) => Some(None),
            };
            let (Some(name), Some(hosts), Some(router)) = (name, hosts, router) else {
                ok = false;
                continue;
            };
            let taken = out
                .iter()
                .find(|g| g.name == name || g.hosts.iter().any(|h| hosts.contains(h)));
            if let Some(other) = taken {
                self.report(
                    item,
                    &path,
                    format!(
                        "region `{name}` repeats region `{}`'s name or hosts",
                        other.name
                    ),
                    "give each region its own name and hosts",
                );
                ok = false;
                continue;
            }
            out.push(Region {
                name,
                hosts,
                router,
            });
        }
        if ok && out.iter().map(|g| g.hosts.len()).sum::<usize>() > MAX_FLEET {
            self.report(
                node,
                "target.regions",
                format!("more than {MAX_FLEET} hosts in all"),
                &format!("list at most {MAX_FLEET} hosts"),
            );
            return None;
        }
        (ok && !out.is_empty()).then_some(out)
    }

    /// `hosts: [web-1, web-2]`: agent names, unique, at most [`MAX_FLEET`].
    pub(super) fn fleet_hosts(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                path,
                format!("expected a list of host names, found {}", node.shape()),
                "write `hosts: [web-1, web-2, web-3]`",
            );
            return None;
        };
        if items.is_empty() || items.len() > MAX_FLEET {
            self.report(
                node,
                path,
                format!("a fleet of {} hosts", items.len()),
                &format!("list 1 to {MAX_FLEET} hosts"),
            );
            return None;
        }
        let mut seen = BTreeSet::new();
        let mut hosts = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("{path}[{i}]");
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

    /// `router: { host, root, listen, listen_address, backends: { HOST: ADDRESS:PORT } }`.
    pub(super) fn router(&mut self, node: &Node, hosts: &[String]) -> Option<Router> {
        let path = "target.router";
        let fields = self.fields(node, path)?;
        self.unknown_keys(
            &fields,
            &["host", "root", "listen", "listen_address", "backends"],
        );
        let host = self
            .required(
                &fields,
                "host",
                "name the router's agent, e.g. `host: lb-1`",
            )
            .and_then(|n| self.name(n, &join(path, "host"), "host name"));
        let root = self.path_value(
            &fields,
            "root",
            path,
            "give where the router's nginx lives on its host, e.g. `root: /srv/router`",
        );
        let listen = self
            .required(
                &fields,
                "listen",
                "give the port it listens on, e.g. `listen: 80`",
            )
            .and_then(|n| {
                self.integer(n, &join(path, "listen"), 1, 65_535)
                    .map(|v| v as u16)
            });
        let listen_address = match fields.get("listen_address") {
            Some(n) => self.ip_address(n, &join(path, "listen_address")).map(Some),
            None => Some(None),
        };
        let backends = self
            .required(
                &fields,
                "backends",
                "give each host's address, e.g. `backends: { web-1: \"10.0.0.11:18080\" }`",
            )
            .and_then(|n| self.backends(n, &join(path, "backends")));
        let router = Router {
            host: host?,
            root: root?,
            listen: listen?,
            listen_address: listen_address?,
            backends: backends?,
        };
        let problems = router.problems(hosts);
        for problem in &problems {
            self.report(
                fields.get("backends").unwrap_or(node),
                path,
                problem.clone(),
                "list every host of `hosts` under `backends`, each with its address:port",
            );
        }
        problems.is_empty().then_some(router)
    }

    fn backends(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        let fields = self.fields(node, path)?;
        let mut out = std::collections::BTreeMap::new();
        let mut ok = true;
        for (key, (_, value)) in &fields.entries {
            let p = join(path, key);
            match self.string(value, &p) {
                Some(address) if valid_backend(&address) => {
                    out.insert(key.clone(), address);
                }
                Some(address) => {
                    self.report(
                        value,
                        &p,
                        format!("`{}` is not address:port", truncate(&address)),
                        "write e.g. `10.0.0.11:18080` or `web-1.internal:18080`",
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
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
