//! Parsing analyses: the `analysis` step kind and a canary deploy's `analysis` block.

use std::time::Duration;

use super::{Cx, Fields, join, truncate};
use crate::analysis::Condition;
use crate::plan::types::{
    AnalysisSpec, HttpProbe, MetricSource, MetricSpec, PrometheusQuery, SqlQuery,
};
use crate::plan::yaml::{Node, Value};

/// Keys of an analysis, as a step's fields or as a block.
pub(crate) const ANALYSIS_KEYS: &[&str] = &[
    "interval",
    "duration",
    "failure_limit",
    "inconclusive_limit",
    "consecutive_successes",
    "metrics",
];
/// Most metrics in one analysis.
const MAX_METRICS: usize = 20;
/// Most probes per measurement.
const MAX_PROBES: u64 = 1000;
/// Longest query accepted.
const MAX_QUERY: usize = 8 * 1024;

impl Cx {
    /// An analysis block (`analysis: {...}` in a deploy).
    pub(super) fn analysis_block(&mut self, node: &Node, path: &str) -> Option<AnalysisSpec> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(&fields, ANALYSIS_KEYS);
        self.analysis(&fields, path)
    }

    /// An analysis from `fields` (a step's, or a block's).
    pub(super) fn analysis(&mut self, fields: &Fields<'_>, path: &str) -> Option<AnalysisSpec> {
        let interval = match fields.get("interval") {
            Some(n) => self.duration(n, &join(path, "interval")),
            None => Some(Duration::from_secs(10)),
        };
        let duration = match fields.get("duration") {
            Some(n) => self.duration(n, &join(path, "duration")),
            None => Some(Duration::from_secs(60)),
        };
        let count = |cx: &mut Self, key: &str, max: u64| match fields.get(key) {
            Some(n) => cx.integer(n, &join(path, key), 0, max).map(|v| v as u32),
            None => Some(0),
        };
        let failure_limit = count(self, "failure_limit", 10_000);
        let inconclusive_limit = count(self, "inconclusive_limit", 10_000);
        let consecutive_successes = count(self, "consecutive_successes", 10_000);
        let metrics = self
            .required(
                fields,
                "metrics",
                "list what to measure, e.g. `metrics: [{ name: errors, prometheus: { address: http://127.0.0.1:9090, query: ... }, success_condition: \"result[0] < 0.01\" }]`",
            )
            .and_then(|n| self.metrics(n, &join(path, "metrics")));
        if let (Some(i), Some(d)) = (interval, duration)
            && d < i
        {
            self.report(
                fields.get("duration").unwrap_or(fields.node),
                &join(path, "duration"),
                format!(
                    "the duration ({}) is shorter than the interval ({})",
                    humantime::format_duration(d),
                    humantime::format_duration(i)
                ),
                "make the duration a multiple of the interval",
            );
            return None;
        }
        Some(AnalysisSpec {
            interval: interval?,
            duration: duration?,
            failure_limit: failure_limit?,
            inconclusive_limit: inconclusive_limit?,
            consecutive_successes: consecutive_successes?,
            metrics: metrics?,
        })
    }

    fn metrics(&mut self, node: &Node, path: &str) -> Option<Vec<MetricSpec>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                path,
                format!("expected a list of metrics, found {}", node.shape()),
                "write one `- { name: ..., http|prometheus|sql: ..., success_condition: ... }` per metric",
            );
            return None;
        };
        if items.is_empty() || items.len() > MAX_METRICS {
            self.report(
                node,
                path,
                format!("{} metrics", items.len()),
                &format!("give 1 to {MAX_METRICS} metrics"),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.metric(item, &format!("{path}[{i}]")) {
                Some(m) if out.iter().any(|o: &MetricSpec| o.name == m.name) => {
                    self.report(
                        item,
                        &format!("{path}[{i}].name"),
                        format!("metric `{}` is named twice", m.name),
                        "give each metric its own name",
                    );
                    ok = false;
                }
                Some(m) => out.push(m),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn metric(&mut self, node: &Node, path: &str) -> Option<MetricSpec> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(
            &fields,
            &["name", "http", "prometheus", "sql", "success_condition"],
        );
        let name = self
            .required(&fields, "name", "name the metric, e.g. `name: error-rate`")
            .and_then(|n| self.name(n, &join(path, "name"), "metric name"));
        let sources: Vec<&str> = ["http", "prometheus", "sql"]
            .into_iter()
            .filter(|k| fields.get(k).is_some())
            .collect();
        let source = match sources.as_slice() {
            [one] => {
                let n = fields.get(one)?;
                let p = join(path, one);
                match *one {
                    "http" => self.http_probe(n, &p).map(MetricSource::Http),
                    "prometheus" => self.prometheus(n, &p).map(MetricSource::Prometheus),
                    _ => self.sql(n, &p).map(MetricSource::Sql),
                }
            }
            _ => {
                self.report(
                    node,
                    path,
                    if sources.is_empty() {
                        "the metric has no source".to_owned()
                    } else {
                        format!(
                            "the metric has {} sources: {}",
                            sources.len(),
                            sources.join(", ")
                        )
                    },
                    "give exactly one of `http`, `prometheus` or `sql`",
                );
                None
            }
        };
        let condition = self
            .required(
                &fields,
                "success_condition",
                "say when a measurement is good, e.g. `success_condition: \"result[0] < 0.01\"`",
            )
            .and_then(|n| {
                let p = join(path, "success_condition");
                let text = self.string(n, &p)?;
                let names = source.as_ref().map(MetricSource::names).unwrap_or(&[]);
                match Condition::parse(&text, names) {
                    Ok(_) => Some(text),
                    Err(e) => {
                        self.report(
                            n,
                            &p,
                            e.to_string(),
                            "write comparisons joined by `&&`, e.g. `result[0] < 0.01`",
                        );
                        None
                    }
                }
            });
        Some(MetricSpec {
            name: name?,
            source: source?,
            success_condition: condition?,
        })
    }

    fn http_probe(&mut self, node: &Node, path: &str) -> Option<HttpProbe> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(
            &fields,
            &["url", "probes", "expect_status", "request_timeout"],
        );
        let url = self
            .required(&fields, "url", "give the URL to probe")
            .and_then(|n| self.http_url(n, &join(path, "url")));
        let probes = match fields.get("probes") {
            Some(n) => self
                .integer(n, &join(path, "probes"), 1, MAX_PROBES)
                .map(|v| v as u32),
            None => Some(10),
        };
        let expect_status = match fields.get("expect_status") {
            Some(n) => self
                .integer(n, &join(path, "expect_status"), 100, 599)
                .map(|v| v as u16),
            None => Some(200),
        };
        let request_timeout = match fields.get("request_timeout") {
            Some(n) => self.duration(n, &join(path, "request_timeout")),
            None => Some(Duration::from_secs(2)),
        };
        Some(HttpProbe {
            url: url?,
            probes: probes?,
            expect_status: expect_status?,
            request_timeout: request_timeout?,
        })
    }

    fn prometheus(&mut self, node: &Node, path: &str) -> Option<PrometheusQuery> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(&fields, &["address", "query"]);
        let address = self
            .required(
                &fields,
                "address",
                "give Prometheus' URL, e.g. `address: http://127.0.0.1:9090`",
            )
            .and_then(|n| self.http_url(n, &join(path, "address")));
        let query = self
            .required(&fields, "query", "give the PromQL query")
            .and_then(|n| self.query(n, &join(path, "query")));
        Some(PrometheusQuery {
            address: address?,
            query: query?,
        })
    }

    fn sql(&mut self, node: &Node, path: &str) -> Option<SqlQuery> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(&fields, &["database_url", "query"]);
        let database_url = self
            .required(
                &fields,
                "database_url",
                "reference the connection string, e.g. `database_url: { env: DATABASE_URL }`",
            )
            .and_then(|n| self.secret_ref(n, &join(path, "database_url")));
        let query = self
            .required(
                &fields,
                "query",
                "give the SQL query; its first row's columns are the values",
            )
            .and_then(|n| self.query(n, &join(path, "query")));
        Some(SqlQuery {
            database_url: database_url?,
            query: query?,
        })
    }

    fn query(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.string(node, path)?;
        if text.trim().is_empty() || text.len() > MAX_QUERY {
            self.report(
                node,
                path,
                format!("the query is {} bytes", text.len()),
                &format!("give a query of 1 to {MAX_QUERY} bytes"),
            );
            return None;
        }
        if text.contains('\0') {
            self.report(
                node,
                path,
                format!("`{}` contains a NUL byte", truncate(&text)),
                "remove it",
            );
            return None;
        }
        Some(text)
    }
}
