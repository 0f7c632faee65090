//! `analysis.measure`: one measurement of every metric of an analysis.
//!
//! A source that cannot be reached, a query that errors or returns nothing — each makes its
//! metric *inconclusive*, never failed: only a value that breaks its condition fails a
//! release. The activity itself fails only when it is cancelled.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cutover_workflows::analysis::{Condition, Measurement, MetricResult, Values, Verdict};
use cutover_workflows::plan::{HttpProbe, MetricSource, MetricSpec, PrometheusQuery, SqlQuery};
use serde::Deserialize;
use sqlx::Connection;

use crate::postgres::db_message;
use crate::secrets::Secrets;

/// Longest Prometheus answer read.
const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// How long a SQL metric's query may run.
const SQL_TIMEOUT: Duration = Duration::from_secs(10);

/// Measures every metric once, concurrently, and judges each.
pub(crate) async fn measure(
    http: &reqwest::Client,
    number: u32,
    metrics: &[MetricSpec],
) -> Measurement {
    let results = futures::future::join_all(metrics.iter().map(|m| measure_one(http, m))).await;
    Measurement {
        number,
        at: None,
        verdict: Verdict::combine(results.iter().map(|r| r.verdict)),
        metrics: results,
    }
}

async fn measure_one(http: &reqwest::Client, metric: &MetricSpec) -> MetricResult {
    let names = metric.source.names();
    let condition = &metric.success_condition;
    let judged = match Condition::parse(condition, names) {
        Err(e) => Err(format!("the condition cannot be read: {e}")),
        Ok(parsed) => {
            let values = match &metric.source {
                MetricSource::Http(probe) => Ok(probe_http(http, probe).await),
                MetricSource::Prometheus(q) => prometheus(http, q).await,
                MetricSource::Sql(q) => sql(q).await,
            };
            values.map(|v| {
                let holds = parsed.holds(&v).map_err(|e| e.to_string());
                (v, holds)
            })
        }
    };
    let (verdict, value, detail) = match judged {
        Err(why) => (Verdict::Inconclusive, "not measured".to_owned(), why),
        Ok((v, Err(why))) => (Verdict::Inconclusive, v.to_string(), why),
        Ok((v, Ok(true))) => (
            Verdict::Successful,
            v.to_string(),
            format!("`{condition}` holds"),
        ),
        Ok((v, Ok(false))) => (
            Verdict::Failed,
            v.to_string(),
            format!("`{condition}` does not hold"),
        ),
    };
    tracing::info!(metric = %metric.name, verdict = verdict.as_str(), %value, "measured");
    MetricResult {
        name: metric.name.clone(),
        verdict,
        value,
        detail,
    }
}

/// Sends the probes one after another and reports the success rate and latency percentiles.
async fn probe_http(http: &reqwest::Client, probe: &HttpProbe) -> Values {
    let mut latencies = Vec::with_capacity(probe.probes as usize);
    let mut errors = 0u32;
    for _ in 0..probe.probes {
        let started = Instant::now();
        let ok = match http
            .get(&probe.url)
            .timeout(probe.request_timeout)
            .send()
            .await
        {
            Ok(resp) => {
                let good = resp.status().as_u16() == probe.expect_status;
                // Read the body so the latency covers the whole answer.
                good && resp.bytes().await.is_ok()
            }
            Err(_) => false,
        };
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        if !ok {
            errors += 1;
        }
    }
    latencies.sort_by(f64::total_cmp);
    let n = f64::from(probe.probes.max(1));
    let mut named = BTreeMap::new();
    named.insert(
        "success_rate".to_owned(),
        f64::from(probe.probes - errors) / n,
    );
    named.insert("errors".to_owned(), f64::from(errors));
    for (name, q) in [("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
        named.insert(name.to_owned(), percentile(&latencies, q));
    }
    Values {
        results: Vec::new(),
        named,
    }
}

/// The nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Deserialize)]
struct PromAnswer {
    status: String,
    #[serde(default)]
    data: Option<PromData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum PromData {
    Vector(Vec<PromSample>),
    Scalar((f64, String)),
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct PromSample {
    value: (f64, String),
}

/// An instant query; each sample's value is one `result[i]`, in the order Prometheus gives.
async fn prometheus(http: &reqwest::Client, q: &PrometheusQuery) -> Result<Values, String> {
    let url = format!("{}/api/v1/query", q.address.trim_end_matches('/'));
    let resp = http
        .get(&url)
        .query(&[("query", q.query.as_str())])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("Prometheus at {} is unreachable: {}", q.address, root(&e)))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("reading Prometheus' answer: {}", root(&e)))?;
    if body.len() > MAX_ANSWER {
        return Err(format!(
            "Prometheus answered {} bytes; the query should return a few samples",
            body.len()
        ));
    }
    let answer: PromAnswer = serde_json::from_slice(&body).map_err(|e| {
        format!("Prometheus answered {status} with something that is not its API's JSON: {e}")
    })?;
    if answer.status != "success" {
        return Err(format!(
            "Prometheus refused the query: {}",
            answer.error.unwrap_or(answer.status)
        ));
    }
    let parse = |s: &str| {
        s.parse::<f64>()
            .map_err(|_| format!("Prometheus returned `{s}`, not a number"))
    };
    let results = match answer.data {
        Some(PromData::Vector(samples)) => samples
            .iter()
            .map(|s| parse(&s.value.1))
            .collect::<Result<Vec<_>, _>>()?,
        Some(PromData::Scalar((_, v))) => vec![parse(&v)?],
        Some(PromData::Matrix(_) | PromData::String(_)) | None => {
            return Err("the query must return an instant vector or a scalar".to_owned());
        }
    };
    Ok(Values {
        results,
        named: BTreeMap::new(),
    })
}

/// Runs the query in a read-only transaction with a statement timeout; the first row's
/// columns, in order, are `result[0]`, `result[1]`, …
async fn sql(q: &SqlQuery) -> Result<Values, String> {
    let secrets = Secrets::single("database_url", &q.database_url)
        .map_err(|e| e.to_string())?
        .with_url_password("database_url");
    let url = secrets.get("database_url").unwrap_or_default().to_owned();
    let run = async {
        let mut conn = sqlx::PgConnection::connect(&url).await.map_err(|e| {
            format!(
                "cannot connect to the database: {}",
                secrets.redact(&db_message(&e))
            )
        })?;
        let mut tx = conn.begin().await.map_err(|e| db_message(&e))?;
        sqlx::query("SET TRANSACTION READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(|e| db_message(&e))?;
        sqlx::query(&format!(
            "SET LOCAL statement_timeout = {}",
            SQL_TIMEOUT.as_millis()
        ))
        .execute(&mut *tx)
        .await
        .map_err(|e| db_message(&e))?;
        // The plan's query becomes a subquery, so its first row's columns can be read in
        // order as text whatever their types.
        let query = q.query.trim().trim_end_matches(';');
        let wrapped = format!(
            "SELECT e.value FROM (SELECT to_json(q) AS j FROM ({query}) q LIMIT 1) r, \
             json_each_text(r.j) WITH ORDINALITY e(key, value, n) ORDER BY e.n"
        );
        let cells: Vec<Option<String>> = sqlx::query_scalar(&wrapped)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| format!("the query failed: {}", secrets.redact(&db_message(&e))))?;
        tx.rollback().await.ok();
        Ok::<_, String>(cells)
    };
    let cells = tokio::time::timeout(SQL_TIMEOUT + Duration::from_secs(5), run)
        .await
        .map_err(|_| "the query did not answer in time".to_owned())??;
    let results = cells
        .into_iter()
        .enumerate()
        .map(|(i, cell)| match cell.as_deref() {
            None => Err(format!("result[{i}] is NULL")),
            Some("true") => Ok(1.0),
            Some("false") => Ok(0.0),
            Some(text) => text
                .parse::<f64>()
                .map_err(|_| format!("result[{i}] is `{text}`, not a number")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Values {
        results,
        named: BTreeMap::new(),
    })
}

/// The innermost cause of a reqwest error ("connection refused"), not its wrapping.
fn root(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.50), 50.0);
        assert_eq!(percentile(&samples, 0.95), 95.0);
        assert_eq!(percentile(&samples, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn prometheus_answers_parse() {
        let v: PromAnswer = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"0.25"]}]}}"#,
        )
        .expect("vector");
        assert!(matches!(v.data, Some(PromData::Vector(ref s)) if s[0].value.1 == "0.25"));
        let s: PromAnswer = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.1,"3"]}}"#,
        )
        .expect("scalar");
        assert!(matches!(s.data, Some(PromData::Scalar((_, ref v))) if v == "3"));
    }
}
