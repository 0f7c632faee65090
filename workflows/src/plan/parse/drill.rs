//! Parsing DR drill plans, with the same positions, hints and limits as rollout plans.

use std::time::Duration;

use super::{Cx, Diagnostics, Document, Fields, join, parse_document, truncate};
use crate::drill::{
    AppCheck, DatabaseNode, DatabasePair, DrillMode, DrillPlan, Failback, Objectives, Traffic,
    WriteCheck,
};
use crate::plan::yaml::{Node, Value};

/// Largest drill plan accepted.
const MAX_BYTES: usize = 64 * 1024;

/// Parses and validates a drill plan.
///
/// # Errors
///
/// [`Diagnostics`] listing each problem with its line, column, path, message and hint.
pub fn parse_drill(text: &str) -> Result<DrillPlan, Diagnostics> {
    parse_document(
        text,
        Document {
            what: "drill plan",
            max_bytes: MAX_BYTES,
            hint: "split it into one plan per drill",
        },
        |cx, root| cx.drill(root),
    )
}

impl Cx {
    fn drill(&mut self, root: &Node) -> Option<DrillPlan> {
        let f = self.fields(root, "")?;
        self.unknown_keys(
            &f,
            &[
                "drill",
                "service",
                "environment",
                "mode",
                "database",
                "traffic",
                "checks",
                "write_check",
                "objectives",
                "max_lag",
                "promote_within",
                "failback",
                "region",
                "notify",
            ],
        );
        let name = |cx: &mut Self, key: &str, what: &str, hint: &str| {
            cx.required(&f, key, hint)
                .and_then(|n| cx.name(n, key, what))
        };
        let drill = name(
            self,
            "drill",
            "drill name",
            "name the drill, e.g. `drill: hello-db`",
        );
        let service = name(
            self,
            "service",
            "service name",
            "name the service, e.g. `service: hello`",
        );
        let environment = name(
            self,
            "environment",
            "environment name",
            "e.g. `environment: staging`",
        );
        let mode = self
            .required(
                &f,
                "mode",
                "choose `failover` (inject a fault) or `switchover` (planned)",
            )
            .and_then(|n| match self.string(n, "mode")?.as_str() {
                "failover" => Some(DrillMode::Failover),
                "switchover" => Some(DrillMode::Switchover),
                other => {
                    self.report(
                        n,
                        "mode",
                        format!("unknown mode `{}`", truncate(other)),
                        "choose `failover` or `switchover`",
                    );
                    None
                }
            });
        let database = self
            .required(
                &f,
                "database",
                "describe the pair: `database: { primary: {...}, standby: {...} }`",
            )
            .and_then(|n| self.database_pair(n, "database"));
        let traffic = self
            .required(&f, "traffic", "say how the app reaches the primary, e.g. `traffic: { endpoint_file: /srv/hello/shared/database_url }`")
            .and_then(|n| self.traffic(n, "traffic"));
        let checks = match f.get("checks") {
            Some(n) => self.app_checks(n, "checks"),
            None => Some(Vec::new()),
        };
        let write_check = match f.get("write_check") {
            Some(n) => self.fields(n, "write_check").and_then(|wf| {
                self.unknown_keys(&wf, &["url"]);
                self.required(
                    &wf,
                    "url",
                    "give the URL to POST a marker to and read it back from",
                )
                .and_then(|u| self.http_url(u, "write_check.url"))
                .map(|url| Some(WriteCheck { url }))
            }),
            None => Some(None),
        };
        if let (Some(c), Some(None)) = (&checks, &write_check)
            && c.is_empty()
        {
            self.report(
                root,
                "checks",
                "the drill has no way to prove the service works",
                "add `checks:` (HTTP) and/or `write_check:`",
            );
            return None;
        }
        let objectives = self
            .required(
                &f,
                "objectives",
                "give the objectives, e.g. `objectives: { rto: 30s, rpo: 0 }`",
            )
            .and_then(|n| self.objectives(n, "objectives"));
        let max_lag_bytes = match f.get("max_lag") {
            Some(n) => self.bytes(n, "max_lag"),
            None => Some(16 * 1024 * 1024),
        };
        let promote_within = match f.get("promote_within") {
            Some(n) => self.duration(n, "promote_within").and_then(|d| {
                if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
                    self.report(
                        n,
                        "promote_within",
                        "the promotion must be given between 1s and 1h",
                        "write e.g. `promote_within: 60s`",
                    );
                    return None;
                }
                Some(d)
            }),
            None => Some(crate::drill::DEFAULT_PROMOTE_WITHIN),
        };
        let failback = match f.get("failback") {
            Some(n) => self.failback(n, "failback"),
            None => Some(Failback {
                rebuild: true,
                switch_back: false,
            }),
        };
        let region = match f.get("region") {
            Some(n) => self.region_move(n).map(Some),
            None => Some(None),
        };
        let notify = match f.get("notify") {
            Some(n) => self.notify(n, "notify", crate::plan::notify::DRILL_EVENTS),
            None => Some(Vec::new()),
        };
        Some(DrillPlan {
            notify: notify?,
            region: region?,
            drill: drill?,
            service: service?,
            environment: environment?,
            mode: mode?,
            database: database?,
            traffic: traffic?,
            checks: checks?,
            write_check: write_check?,
            objectives: objectives?,
            max_lag_bytes: max_lag_bytes?,
            promote_within: promote_within?,
            failback: failback?,
        })
    }

    fn database_pair(&mut self, node: &Node, path: &str) -> Option<DatabasePair> {
        let f = self.fields(node, path)?;
        self.unknown_keys(&f, &["primary", "standby", "os_user", "bin_dir"]);
        let primary = self
            .required(
                &f,
                "primary",
                "describe the primary: `{ url: { env: PRIMARY_URL }, data_dir: ... }`",
            )
            .and_then(|n| self.database_node(n, &join(path, "primary")));
        let standby = self
            .required(
                &f,
                "standby",
                "describe the standby: `{ url: { env: STANDBY_URL }, data_dir: ... }`",
            )
            .and_then(|n| self.database_node(n, &join(path, "standby")));
        let os_user = match f.get("os_user") {
            Some(n) => self.sql_identifier(n, &join(path, "os_user")).map(Some),
            None => Some(None),
        };
        let bin_dir = match f.get("bin_dir") {
            Some(n) => self.absolute_path(n, &join(path, "bin_dir")).map(Some),
            None => Some(None),
        };
        if let (Some(p), Some(s)) = (&primary, &standby)
            && p.data_dir == s.data_dir
        {
            self.report(
                node,
                &join(path, "standby.data_dir"),
                "the primary and the standby have the same data directory",
                "give each server its own data_dir",
            );
            return None;
        }
        Some(DatabasePair {
            primary: primary?,
            standby: standby?,
            os_user: os_user?,
            bin_dir: bin_dir?,
        })
    }

    fn database_node(&mut self, node: &Node, path: &str) -> Option<DatabaseNode> {
        let f = self.fields(node, path)?;
        self.unknown_keys(&f, &["url", "data_dir", "application_name", "host"]);
        let url = self
            .required(
                &f,
                "url",
                "reference a superuser connection string, e.g. `url: { env: PRIMARY_URL }`",
            )
            .and_then(|n| self.secret_ref(n, &join(path, "url")));
        let data_dir = self
            .required(
                &f,
                "data_dir",
                "give the data directory, e.g. `data_dir: /var/lib/postgresql/15/main`",
            )
            .and_then(|n| self.absolute_path(n, &join(path, "data_dir")));
        let application_name = match f.get("application_name") {
            Some(n) => self
                .name(n, &join(path, "application_name"), "application name")
                .map(Some),
            None => Some(None),
        };
        let host = self.host(&f, path);
        Some(DatabaseNode {
            url: url?,
            data_dir: data_dir?,
            application_name: application_name?,
            host: host?,
        })
    }

    fn absolute_path(&mut self, node: &Node, path: &str) -> Option<String> {
        self.checked_path(node, path, false)
    }

    /// The endpoint file: absolute, or relative to the worker's (or agent's) directory like a
    /// rollout plan's `root`, so that a drill and the plans that deploy the app name the same
    /// file (`.cutover/releases/hello/shared/database_url`).
    fn endpoint_path(&mut self, node: &Node, path: &str) -> Option<String> {
        self.checked_path(node, path, true)
    }

    /// A path of at most 4096 bytes, never through `..`; absolute unless `relative` is allowed.
    fn checked_path(&mut self, node: &Node, path: &str, relative: bool) -> Option<String> {
        let text = self.string(node, path)?;
        let placed = if relative {
            !text.trim().is_empty()
        } else {
            text.starts_with('/')
        };
        if !placed || text.len() > 4096 || text.contains('\0') || text.split('/').any(|c| c == "..")
        {
            let (what, hint) = if relative {
                (
                    "is not a usable path",
                    "write a path from `/`, or one relative to the worker's directory, without `..`",
                )
            } else {
                (
                    "is not an absolute path",
                    "write a path from `/`, without `..`",
                )
            };
            self.report(node, path, format!("`{}` {what}", truncate(&text)), hint);
            return None;
        }
        Some(text)
    }

    fn traffic(&mut self, node: &Node, path: &str) -> Option<Traffic> {
        let f = self.fields(node, path)?;
        if let Some(k) = f.get("kubernetes") {
            self.unknown_keys(&f, &["kubernetes"]);
            return self.kube_traffic(k, &join(path, "kubernetes"));
        }
        self.unknown_keys(&f, &["endpoint_file", "host", "kubernetes"]);
        let file = self.required(&f, "endpoint_file", "the host driver switches traffic by rewriting the file the app reads its database URL from")
            .and_then(|n| self.endpoint_path(n, &join(path, "endpoint_file")));
        let host = self.host(&f, path);
        Some(Traffic::EndpointFile {
            path: file?,
            host: host?,
        })
    }

    /// `kubernetes: { namespace, context, secret, key, restart, rollout_within }`: the Secret
    /// key the app's pods read their database URL from, and the Deployment to restart.
    fn kube_traffic(&mut self, node: &Node, path: &str) -> Option<Traffic> {
        let f = self.fields(node, path)?;
        self.unknown_keys(
            &f,
            &[
                "namespace",
                "context",
                "secret",
                "key",
                "restart",
                "rollout_within",
            ],
        );
        let target = self.kube_target(&f);
        let label = |cx: &mut Self, key: &str, hint: &str| -> Option<String> {
            let n = cx.required(&f, key, hint)?;
            cx.kube_name(n, &join(path, key))
        };
        let secret = label(
            self,
            "secret",
            "name the Secret the app reads its database URL from, e.g. `secret: shop-db`",
        );
        let key = self
            .required(
                &f,
                "key",
                "name the Secret's key holding the URL, e.g. `key: DATABASE_URL`",
            )
            .and_then(|n| {
                let text = self.string(n, &join(path, "key"))?;
                let ok = !text.is_empty()
                    && text.len() <= 253
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if !ok {
                    self.report(
                        n,
                        &join(path, "key"),
                        format!("`{}` is not a valid Secret key", truncate(&text)),
                        "use letters, digits, `-`, `_` and `.`",
                    );
                    return None;
                }
                Some(text)
            });
        let restart = match f.get("restart") {
            Some(_) => label(self, "restart", "").map(Some),
            None => Some(None),
        };
        let rollout_within = match f.get("rollout_within") {
            Some(n) => self.duration(n, &join(path, "rollout_within")),
            None => Some(Duration::from_secs(300)),
        };
        Some(Traffic::Kubernetes(crate::drill::contracts::KubeEndpoint {
            root: target?.location(),
            secret: secret?,
            key: key?,
            restart: restart?,
            rollout_within: rollout_within?,
        }))
    }

    /// An optional `host:`, the name of the agent that acts there.
    fn host(&mut self, f: &Fields<'_>, path: &str) -> Option<Option<String>> {
        match f.get("host") {
            Some(n) => self.name(n, &join(path, "host"), "host name").map(Some),
            None => Some(None),
        }
    }

    /// `region: { router: {...}, from: a, to: b, secondary_checks: [...] }`.
    fn region_move(&mut self, node: &Node) -> Option<crate::drill::RegionMove> {
        let path = "region";
        let f = self.fields(node, path)?;
        self.unknown_keys(&f, &["router", "from", "to", "secondary_checks"]);
        let from = self
            .required(&f, "from", "name the region serving now, e.g. `from: eu`")
            .and_then(|n| self.name(n, "region.from", "region name"));
        let to = self
            .required(&f, "to", "name the region to move to, e.g. `to: us`")
            .and_then(|n| self.name(n, "region.to", "region name"));
        let secondary_checks = self
            .required(
                &f,
                "secondary_checks",
                "check the secondary region's stack directly, e.g. `secondary_checks: [{ url: \"http://10.1.0.5:8080/health\" }]`",
            )
            .and_then(|n| self.app_checks(n, "region.secondary_checks"));
        let (from, to) = (from?, to?);
        if from == to {
            self.report(
                node,
                path,
                "`from` and `to` are the same region",
                "move traffic to another region",
            );
            return None;
        }
        let router = self
            .required(&f, "router", "give the router in front of the regions")
            .and_then(|n| self.router(n, &[from.clone(), to.clone()]));
        Some(crate::drill::RegionMove {
            router: router?,
            from,
            to,
            secondary_checks: secondary_checks?,
        })
    }

    fn app_checks(&mut self, node: &Node, path: &str) -> Option<Vec<AppCheck>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                path,
                format!("expected a list of checks, found {}", node.shape()),
                "write `- { url: http://127.0.0.1:8080/health }` per check",
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let check = self.fields(item, &p).and_then(|f| self.app_check(&f, &p));
            match check {
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn app_check(&mut self, f: &Fields<'_>, path: &str) -> Option<AppCheck> {
        self.unknown_keys(f, &["url", "expect_status"]);
        let url = self
            .required(f, "url", "give the URL to check")
            .and_then(|n| self.http_url(n, &join(path, "url")));
        let expect_status = match f.get("expect_status") {
            Some(n) => self
                .integer(n, &join(path, "expect_status"), 100, 599)
                .map(|v| v as u16),
            None => Some(200),
        };
        Some(AppCheck {
            url: url?,
            expect_status: expect_status?,
        })
    }

    fn objectives(&mut self, node: &Node, path: &str) -> Option<Objectives> {
        let f = self.fields(node, path)?;
        self.unknown_keys(&f, &["rto", "rpo"]);
        let rto = self
            .required(
                &f,
                "rto",
                "give the recovery time objective, e.g. `rto: 30s`",
            )
            .and_then(|n| self.duration(n, &join(path, "rto")));
        let rpo_markers = self
            .required(
                &f,
                "rpo",
                "give the most marker transactions that may be lost, e.g. `rpo: 0`",
            )
            .and_then(|n| self.integer(n, &join(path, "rpo"), 0, 1_000_000_000));
        Some(Objectives {
            rto: rto?,
            rpo_markers: rpo_markers?,
        })
    }

    fn bytes(&mut self, node: &Node, path: &str) -> Option<u64> {
        let text = self.string(node, path)?;
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let factor: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1024,
            "MiB" => 1024 * 1024,
            "GiB" => 1024 * 1024 * 1024,
            _ => 0,
        };
        match digits.parse::<u64>() {
            Ok(n) if factor > 0 => Some(n.saturating_mul(factor)),
            _ => {
                self.report(
                    node,
                    path,
                    format!("`{}` is not a size", truncate(&text)),
                    "write e.g. `16MiB`, `512KiB` or a number of bytes",
                );
                None
            }
        }
    }

    fn failback(&mut self, node: &Node, path: &str) -> Option<Failback> {
        let f = self.fields(node, path)?;
        self.unknown_keys(&f, &["rebuild", "switch_back"]);
        let rebuild = match f.get("rebuild") {
            Some(n) => self.boolean(n, &join(path, "rebuild")),
            None => Some(true),
        };
        let switch_back = match f.get("switch_back") {
            Some(n) => self.boolean(n, &join(path, "switch_back")),
            None => Some(false),
        };
        if let (Some(false), Some(true)) = (rebuild, switch_back) {
            self.report(
                node,
                &join(path, "switch_back"),
                "switching back needs the old primary rebuilt as a standby first",
                "set `rebuild: true`",
            );
            return None;
        }
        Some(Failback {
            rebuild: rebuild?,
            switch_back: switch_back?,
        })
    }
}
