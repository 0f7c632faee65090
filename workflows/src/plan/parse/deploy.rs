//! Parsing `deploy` steps (strategy, start command, health check, canary weights, the
//! rollback window, an analysis between weights) and `rollback` steps.

use std::time::Duration;

use super::{Cx, Fields, join, truncate};
use crate::plan::types::{CanaryGate, CanaryStep, DeploySpec, HealthCheck, RollbackSpec, Strategy};
use crate::plan::yaml::{Node, Value};

impl Cx {
    pub(super) fn deploy(&mut self, fields: &Fields<'_>, path: &str) -> Option<DeploySpec> {
        let root = self.path_value(
            fields,
            "root",
            path,
            "give the release root, e.g. `root: /srv/releases`",
        );
        let strategy = self.strategy(fields, path);
        let start = self
            .required(
                fields,
                "start",
                "say how to start an instance, e.g. `start: { command: target/release/app }`",
            )
            .and_then(|n| {
                let p = join(path, "start");
                let start = self.fields(n, &p)?;
                self.unknown_keys(&start, crate::plan::kind::PROCESS_KEYS);
                self.command(&start, &p)
            });
        let instances = match fields.get("instances") {
            Some(n) => self
                .integer(n, &join(path, "instances"), 1, 32)
                .map(|v| v as u32),
            None => Some(1),
        };
        let base_port = self
            .required(
                fields,
                "base_port",
                "give the first instance port, e.g. `base_port: 18100`",
            )
            .and_then(|n| {
                self.integer(n, &join(path, "base_port"), 1024, 65_000)
                    .map(|v| v as u16)
            });
        let listen = self
            .required(
                fields,
                "listen",
                "give the port nginx listens on, e.g. `listen: 18080`",
            )
            .and_then(|n| {
                self.integer(n, &join(path, "listen"), 1024, 65_535)
                    .map(|v| v as u16)
            });
        let listen_address = match fields.get("listen_address") {
            Some(n) => self.ip_address(n, &join(path, "listen_address")).map(Some),
            None => Some(None),
        };
        let health = match fields.get("health") {
            Some(n) => self.health(n, &join(path, "health")),
            None => Some(HealthCheck {
                path: "/health".to_owned(),
                expect_status: 200,
                timeout: Duration::from_secs(30),
                interval: Duration::from_millis(200),
                request_timeout: None,
            }),
        };
        let rollback_window = match fields.get("rollback_window") {
            Some(n) => self.duration_or_zero(n, &join(path, "rollback_window")),
            None => Some(Duration::from_secs(30)),
        };
        let canary = match fields.get("canary") {
            Some(n) => self.canary(n, &join(path, "canary")),
            None => Some(Vec::new()),
        };
        let analysis = match fields.get("analysis") {
            Some(n) => self.analysis_block(n, &join(path, "analysis")).map(Some),
            None => Some(None),
        };
        let waves = self.waves(fields, path);
        if let Some(strategy) = strategy {
            let canary_ok = self.canary_fits(fields, path, strategy, canary.as_deref());
            let analysis_ok = self.analysis_fits(fields, path, strategy, analysis.as_ref());
            if !canary_ok || !analysis_ok {
                return None;
            }
        }
        if let (Some(base), Some(listen), Some(n)) = (base_port, listen, instances) {
            let last = u32::from(base) + 2 * n - 1;
            if last > 65_535 {
                self.report(
                    fields.node,
                    &join(path, "base_port"),
                    format!("instances need ports {base}..={last}, past 65535"),
                    "lower base_port",
                );
                return None;
            }
            if (u32::from(base)..=last).contains(&u32::from(listen)) {
                self.report(
                    fields.get("listen").unwrap_or(fields.node),
                    &join(path, "listen"),
                    format!("port {listen} is inside the instance ports {base}..={last}"),
                    "pick a listen port outside base_port .. base_port + 2 × instances",
                );
                return None;
            }
        }
        Some(DeploySpec {
            root: root?,
            strategy: strategy?,
            start: start?,
            instances: instances?,
            base_port: base_port?,
            listen: listen?,
            listen_address: listen_address?,
            health: health?,
            rollback_window: rollback_window?,
            canary: canary?,
            analysis: analysis?,
            waves: waves?,
            kubernetes: None,
        })
    }

    /// `strategy: blue-green | rolling | canary`.
    pub(super) fn strategy(&mut self, fields: &Fields<'_>, path: &str) -> Option<Strategy> {
        let node = self.required(
            fields,
            "strategy",
            "choose `blue-green`, `rolling` or `canary`",
        )?;
        match self.string(node, &join(path, "strategy"))?.as_str() {
            "blue-green" => Some(Strategy::BlueGreen),
            "rolling" => Some(Strategy::Rolling),
            "canary" => Some(Strategy::Canary),
            other => {
                self.report(
                    node,
                    &join(path, "strategy"),
                    format!("unknown strategy `{}`", truncate(other)),
                    "choose `blue-green`, `rolling` or `canary`",
                );
                None
            }
        }
    }

    /// A canary has weights, and only a canary has them; reports otherwise.
    pub(super) fn canary_fits(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        strategy: Strategy,
        canary: Option<&[CanaryStep]>,
    ) -> bool {
        let Some(canary) = canary else { return true };
        let node = fields
            .get("canary")
            .or(fields.get("strategy"))
            .unwrap_or(fields.node);
        if strategy == Strategy::Canary && canary.is_empty() {
            self.report(node, &join(path, "canary"), "a canary deploy needs its weights", "add e.g. `canary: [{ weight: 10, bake: 5m }, { weight: 50, bake: 5m }, { weight: 100 }]`");
            return false;
        }
        if strategy != Strategy::Canary && !canary.is_empty() {
            self.report(
                node,
                &join(path, "canary"),
                "`canary` only applies to `strategy: canary`",
                "remove it, or use `strategy: canary`",
            );
            return false;
        }
        true
    }

    /// A deploy's `analysis` runs at canary weights; reports one on another strategy.
    pub(super) fn analysis_fits(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        strategy: Strategy,
        analysis: Option<&Option<crate::plan::AnalysisSpec>>,
    ) -> bool {
        if matches!(analysis, Some(Some(_))) && strategy != Strategy::Canary {
            self.report(
                fields.get("analysis").unwrap_or(fields.node),
                &join(path, "analysis"),
                "a deploy's `analysis` runs at each canary weight; this deploy is not a canary",
                "use `strategy: canary`, or add an `analysis` step after the deploy",
            );
            return false;
        }
        true
    }

    /// An IP address to listen on.
    pub(super) fn ip_address(&mut self, n: &Node, path: &str) -> Option<std::net::IpAddr> {
        let text = self.string(n, path)?;
        match text.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.report(
                    n,
                    path,
                    format!("`{}` is not an IP address", truncate(&text)),
                    "use e.g. `0.0.0.0` (every address) or `127.0.0.1` (this machine only)",
                );
                None
            }
        }
    }

    pub(super) fn health(&mut self, node: &Node, path: &str) -> Option<HealthCheck> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(
            &fields,
            &[
                "path",
                "expect_status",
                "timeout",
                "interval",
                "request_timeout",
            ],
        );
        let check_path = match fields.get("path") {
            Some(n) => self.string(n, &join(path, "path")).and_then(|p| {
                if p.starts_with('/') && !p.chars().any(char::is_whitespace) {
                    Some(p)
                } else {
                    self.report(
                        n,
                        &join(path, "path"),
                        format!("`{}` is not a URL path", truncate(&p)),
                        "start it with `/`, e.g. `/health`",
                    );
                    None
                }
            }),
            None => Some("/health".to_owned()),
        };
        let expect_status = match fields.get("expect_status") {
            Some(n) => self
                .integer(n, &join(path, "expect_status"), 100, 599)
                .map(|v| v as u16),
            None => Some(200),
        };
        let timeout = match fields.get("timeout") {
            Some(n) => self.duration(n, &join(path, "timeout")),
            None => Some(Duration::from_secs(30)),
        };
        let interval = match fields.get("interval") {
            Some(n) => self.duration(n, &join(path, "interval")),
            None => Some(Duration::from_millis(200)),
        };
        let request_timeout = match fields.get("request_timeout") {
            Some(n) => self.duration(n, &join(path, "request_timeout")).map(Some),
            None => Some(None),
        };
        Some(HealthCheck {
            path: check_path?,
            expect_status: expect_status?,
            timeout: timeout?,
            interval: interval?,
            request_timeout: request_timeout?,
        })
    }

    /// A canary's script: weights (`- weight: 10`, optionally with `bake`) and, between them,
    /// gates (`- bake: 10m`, `- pause`, `- analysis: {..}`, `- approval: {required: 2}`).
    /// Weights increase; the last weight is 100.
    pub(super) fn canary(&mut self, node: &Node, path: &str) -> Option<Vec<CanaryStep>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                path,
                format!("expected a list of canary steps, found {}", node.shape()),
                "write `- weight: 10`, `- bake: 5m`, `- approval: { required: 2 }`, … per entry",
            );
            return None;
        };
        let mut steps: Vec<CanaryStep> = Vec::new();
        let mut ok = true;
        let mut reached = 0u8;
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            match self.canary_entry(item, &p, reached) {
                Some(step) => {
                    if step.gate.is_none() {
                        if step.weight <= reached {
                            self.report(
                                item,
                                &join(&p, "weight"),
                                "canary weights must increase",
                                "order the weights from the smallest to 100",
                            );
                            ok = false;
                        }
                        reached = step.weight;
                    }
                    steps.push(step);
                }
                None => ok = false,
            }
        }
        let last_weight = steps.iter().rev().find(|s| s.gate.is_none());
        if ok && !steps.is_empty() && last_weight.is_none_or(|s| s.weight != 100) {
            self.report(
                node,
                path,
                "the last canary weight must send 100% of traffic",
                "end with `- weight: 100`",
            );
            ok = false;
        }
        ok.then_some(steps)
    }

    /// One entry of a canary script; `reached` is the weight in effect before it.
    fn canary_entry(&mut self, item: &Node, p: &str, reached: u8) -> Option<CanaryStep> {
        const KINDS: [&str; 5] = ["weight", "bake", "pause", "analysis", "approval"];
        const HINT: &str = "write one of `- weight: 10` (optionally with `bake: 5m`), `- bake: 5m`, `- pause`, `- analysis: {..}`, `- approval: { required: 2 }`";
        let gate = |gate, bake| CanaryStep {
            weight: reached,
            bake,
            gate: Some(gate),
        };
        // `- pause`: the bare word.
        if let Value::Scalar { text, .. } = &item.value {
            if text == "pause" {
                return Some(gate(CanaryGate::Pause, Duration::ZERO));
            }
            self.report(
                item,
                p,
                format!("unknown canary entry `{}`", truncate(text)),
                HINT,
            );
            return None;
        }
        let fields = self.fields(item, p)?;
        self.unknown_keys(&fields, &KINDS);
        let present: Vec<&str> = KINDS
            .into_iter()
            .filter(|k| fields.get(k).is_some())
            .collect();
        match present.as_slice() {
            ["weight"] | ["weight", "bake"] => {
                let weight = self
                    .integer(fields.get("weight")?, &join(p, "weight"), 1, 100)
                    .map(|v| v as u8);
                let bake = match fields.get("bake") {
                    Some(n) => self.duration_or_zero(n, &join(p, "bake")),
                    None => Some(Duration::ZERO),
                };
                Some(CanaryStep {
                    weight: weight?,
                    bake: bake?,
                    gate: None,
                })
            }
            ["bake"] => {
                let bake = self.duration(fields.get("bake")?, &join(p, "bake"))?;
                Some(gate(CanaryGate::Bake, bake))
            }
            ["pause"] => {
                let n = fields.get("pause")?;
                match &n.value {
                    Value::Mapping(entries) if entries.is_empty() => {
                        Some(gate(CanaryGate::Pause, Duration::ZERO))
                    }
                    Value::Scalar { text, .. }
                        if text.is_empty() || text == "~" || text == "null" =>
                    {
                        Some(gate(CanaryGate::Pause, Duration::ZERO))
                    }
                    _ => {
                        self.report(
                            n,
                            &join(p, "pause"),
                            "a canary pause waits until someone promotes; it takes no settings",
                            "write `- pause`, or `- bake: 10m` for a timed hold",
                        );
                        None
                    }
                }
            }
            ["analysis"] => {
                let spec = self.analysis_block(fields.get("analysis")?, &join(p, "analysis"))?;
                Some(gate(CanaryGate::Analysis(Box::new(spec)), Duration::ZERO))
            }
            ["approval"] => {
                let ap = join(p, "approval");
                let n = fields.get("approval")?;
                let inner = self.fields(n, &ap)?;
                self.unknown_keys(&inner, &["required", "approvers", "timeout", "on_timeout"]);
                let spec = self.approval(&inner, &ap)?;
                Some(gate(CanaryGate::Approval(Box::new(spec)), Duration::ZERO))
            }
            [] => {
                self.report(item, p, "an empty canary entry", HINT);
                None
            }
            more => {
                self.report(
                    item,
                    p,
                    format!("one canary entry has {}", more.join(" and ")),
                    "give each weight and each gate its own entry",
                );
                None
            }
        }
    }

    pub(super) fn rollback(&mut self, fields: &Fields<'_>, path: &str) -> Option<RollbackSpec> {
        let root = self.path_value(
            fields,
            "root",
            path,
            "give the release root used by the deploy",
        );
        Some(RollbackSpec { root: root? })
    }
}
