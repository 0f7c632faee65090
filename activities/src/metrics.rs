//! Cutover's own Prometheus series, recorded through the Temporal runtime's meter so that
//! they are served on the same `--metrics-listen` endpoint as the SDK's worker metrics.
//!
//! Workflows report what they see through `cutover_workflows::observe` (never on replay);
//! activities record ledger write latency here directly. Until [`install`] is called (no
//! `--metrics-listen`) every record is a no-op.
//!
//! Labels, and so the number of series, are bounded: `service`, `environment` and `drill`
//! pass the name rules and come from plans; `kind`, `outcome`, `verdict`, `record` and
//! `retry` are fixed sets. Per service and environment that is at most
//! 10 step kinds × 4 outcomes histograms, and a handful of counters and gauges
//! (README, "Metrics").

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use cutover_workflows::observe::{Event, Sink};
use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, Gauge, GaugeF64, HistogramDuration, MetricAttributes, MetricKeyValue,
    MetricParameters, NewAttributes,
};

/// Bucket boundaries (seconds) of Cutover's duration histograms, by metric name: steps run
/// from milliseconds (a command) to hours (a bake), lock waits and ledger writes are short.
pub fn bucket_overrides() -> HashMap<String, Vec<f64>> {
    HashMap::from([
        (
            "cutover_step_duration".to_owned(),
            vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                14400.0, 86400.0,
            ],
        ),
        (
            "cutover_lock_wait".to_owned(),
            vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 300.0, 3600.0],
        ),
        (
            "cutover_ledger_write".to_owned(),
            vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ],
        ),
    ])
}

/// Every series name Cutover exports on `--metrics-listen` (histograms as their base name),
/// for checking dashboards and alert rules against (tests/tests/monitoring.rs).
pub const EXPORTED: &[&str] = &[
    "cutover_rollouts_started_total",
    "cutover_rollouts_finished_total",
    "cutover_step_duration_seconds",
    "cutover_step_attempts_total",
    "cutover_approvals_waiting",
    "cutover_approval_waiting_since_timestamp_seconds",
    "cutover_step_deadline_timestamp_seconds",
    "cutover_analysis_verdicts_total",
    "cutover_drills_finished_total",
    "cutover_drill_rto_seconds",
    "cutover_drill_rto_objective_seconds",
    "cutover_drill_rpo_markers",
    "cutover_drill_rpo_objective_markers",
    "cutover_drill_objectives_met",
    "cutover_drill_last_finished_timestamp_seconds",
    "cutover_lock_wait_seconds",
    "cutover_ledger_write_seconds",
];

/// The instruments, made once from the runtime's meter.
struct Metrics {
    meter: Arc<dyn CoreMeter>,
    rollouts_started: Counter,
    rollouts_finished: Counter,
    step_duration: HistogramDuration,
    step_attempts: Counter,
    approvals_waiting: Gauge,
    approval_waiting_since: GaugeF64,
    analysis_verdicts: Counter,
    drills_finished: Counter,
    drill_rto: GaugeF64,
    drill_rto_objective: GaugeF64,
    drill_rpo: Gauge,
    drill_rpo_objective: Gauge,
    drill_objectives_met: Gauge,
    drill_finished_at: GaugeF64,
    step_deadline: GaugeF64,
    lock_wait: HistogramDuration,
    ledger_write: HistogramDuration,
    /// Approvals waiting, by workflow ID: (service, environment, since).
    waiting: Mutex<HashMap<String, (String, String, SystemTime)>>,
    /// Step attempts running, by workflow ID: (service, environment, deadline).
    running: Mutex<HashMap<String, (String, String, SystemTime)>>,
}

static METRICS: OnceLock<Arc<Metrics>> = OnceLock::new();

fn params(name: &'static str, description: &'static str) -> MetricParameters {
    MetricParameters::builder()
        .name(name)
        .description(description)
        .build()
}

/// Makes Cutover's instruments on `meter` and routes workflows' events to them. The first
/// call wins (tests run several workers in one process).
pub fn install(meter: Arc<dyn CoreMeter>) {
    let m = Arc::new(Metrics {
        rollouts_started: meter.counter(params(
            "cutover_rollouts_started",
            "Rollouts that began their steps.",
        )),
        rollouts_finished: meter.counter(params(
            "cutover_rollouts_finished",
            "Rollouts that reached a final state, by outcome.",
        )),
        step_duration: meter.histogram_duration(params(
            "cutover_step_duration",
            "Steps from first attempt to end (retries and holds included), by kind and outcome.",
        )),
        step_attempts: meter.counter(params(
            "cutover_step_attempts",
            "Step attempts by kind and outcome; retry=true for any attempt after the first.",
        )),
        approvals_waiting: meter.gauge(params(
            "cutover_approvals_waiting",
            "Approval gates waiting for people, as seen by this worker.",
        )),
        approval_waiting_since: meter.gauge_f64(params(
            "cutover_approval_waiting_since_timestamp_seconds",
            "When the oldest approval still waiting began (Unix seconds); 0 when none waits.",
        )),
        analysis_verdicts: meter.counter(params(
            "cutover_analysis_verdicts",
            "Analysis verdicts: successful, failed or inconclusive.",
        )),
        drills_finished: meter.counter(params(
            "cutover_drills_finished",
            "DR drills that ended, by outcome: passed, missed (objectives) or failed.",
        )),
        drill_rto: meter.gauge_f64(params(
            "cutover_drill_rto_seconds",
            "The last drill's measured RTO.",
        )),
        drill_rto_objective: meter.gauge_f64(params(
            "cutover_drill_rto_objective_seconds",
            "The last drill's RTO objective.",
        )),
        drill_rpo: meter.gauge(params(
            "cutover_drill_rpo_markers",
            "The last drill's measured RPO: acknowledged writes lost.",
        )),
        drill_rpo_objective: meter.gauge(params(
            "cutover_drill_rpo_objective_markers",
            "The last drill's RPO objective (writes it may lose).",
        )),
        drill_objectives_met: meter.gauge(params(
            "cutover_drill_objectives_met",
            "1 when the last drill met both objectives, else 0.",
        )),
        drill_finished_at: meter.gauge_f64(params(
            "cutover_drill_last_finished_timestamp_seconds",
            "When the last drill ended (Unix seconds).",
        )),
        lock_wait: meter.histogram_duration(params(
            "cutover_lock_wait",
            "Time a rollout or drill waited for its service's lock.",
        )),
        ledger_write: meter.histogram_duration(params(
            "cutover_ledger_write",
            "Ledger writes (release, drill and audit records), by record and outcome.",
        )),
        step_deadline: meter.gauge_f64(params(
            "cutover_step_deadline_timestamp_seconds",
            "When the earliest running step attempt of a service reaches its timeout (Unix seconds); 0 when none runs. Steps that hold (deploys, analyses, approvals, bakes) are left out.",
        )),
        waiting: Mutex::new(HashMap::new()),
        running: Mutex::new(HashMap::new()),
        meter,
    });
    if METRICS.set(m.clone()).is_ok() {
        cutover_workflows::observe::set_sink(Box::new(WorkflowSink(m)));
    }
}

/// Times a ledger write of `record` (`release`, `drill`, `audit`).
pub(crate) async fn ledger_write<T, E>(
    record: &'static str,
    write: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let start = std::time::Instant::now();
    let result = write.await;
    if let Some(m) = METRICS.get() {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        let attrs = m.attrs(&[("record", record), ("outcome", outcome)]);
        m.ledger_write.record(start.elapsed(), &attrs);
    }
    result
}

impl Metrics {
    fn attrs(&self, pairs: &[(&'static str, &str)]) -> MetricAttributes {
        self.meter.new_attributes(NewAttributes::from(
            pairs
                .iter()
                .map(|(k, v)| MetricKeyValue::new(*k, v.to_string())),
        ))
    }

    /// Sets the approval gauges of (service, environment) from the waiting set.
    fn approvals(&self, service: &str, environment: &str) {
        let (count, oldest) = earliest(&self.waiting, service, environment);
        let attrs = self.attrs(&[("service", service), ("environment", environment)]);
        self.approvals_waiting.record(count, &attrs);
        self.approval_waiting_since.record(unix(oldest), &attrs);
    }

    /// Sets the step deadline gauge of (service, environment) from the running set.
    fn deadlines(&self, service: &str, environment: &str) {
        let (_, earliest) = earliest(&self.running, service, environment);
        let attrs = self.attrs(&[("service", service), ("environment", environment)]);
        self.step_deadline.record(unix(earliest), &attrs);
    }
}

type Under = Mutex<HashMap<String, (String, String, SystemTime)>>;

/// How many entries of `set` are for (service, environment), and the earliest time among them.
fn earliest(set: &Under, service: &str, environment: &str) -> (u64, Option<SystemTime>) {
    let set = set.lock().unwrap_or_else(|p| p.into_inner());
    set.values()
        .filter(|(s, e, _)| s == service && e == environment)
        .fold((0, None), |(n, first), (_, _, t)| {
            (n + 1, Some(first.map_or(*t, |f: SystemTime| f.min(*t))))
        })
}

/// Adds `key` to `set` unless it is there (a replay reports it again).
fn enter(set: &Under, key: &str, service: &str, environment: &str, at: SystemTime) {
    set.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key.to_owned())
        .or_insert_with(|| (service.to_owned(), environment.to_owned(), at));
}

/// Removes `key` from `set`: its (service, environment), when it was there.
fn leave(set: &Under, key: &str) -> Option<(String, String)> {
    set.lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(key)
        .map(|(s, e, _)| (s, e))
}

/// Unix seconds, 0 for none.
fn unix(t: Option<SystemTime>) -> f64 {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

struct WorkflowSink(Arc<Metrics>);

impl Sink for WorkflowSink {
    fn record(&self, event: &Event<'_>) {
        let m = &self.0;
        match *event {
            Event::RolloutStarted {
                service,
                environment,
            } => m.rollouts_started.add(
                1,
                &m.attrs(&[("service", service), ("environment", environment)]),
            ),
            Event::RolloutFinished {
                service,
                environment,
                outcome,
            } => m.rollouts_finished.add(
                1,
                &m.attrs(&[
                    ("service", service),
                    ("environment", environment),
                    ("outcome", outcome),
                ]),
            ),
            Event::StepFinished {
                service,
                environment,
                kind,
                outcome,
                duration,
                attempts: _,
            } => m.step_duration.record(
                duration,
                &m.attrs(&[
                    ("service", service),
                    ("environment", environment),
                    ("kind", kind),
                    ("outcome", outcome),
                ]),
            ),
            Event::StepAttempt {
                service,
                kind,
                outcome,
                retry,
            } => m.step_attempts.add(
                1,
                &m.attrs(&[
                    ("service", service),
                    ("kind", kind),
                    ("outcome", outcome),
                    ("retry", if retry { "true" } else { "false" }),
                ]),
            ),
            Event::ApprovalWaiting {
                workflow_id,
                service,
                environment,
                since,
            } => {
                enter(&m.waiting, workflow_id, service, environment, since.into());
                m.approvals(service, environment);
            }
            Event::ApprovalDone { workflow_id } => {
                if let Some((service, environment)) = leave(&m.waiting, workflow_id) {
                    m.approvals(&service, &environment);
                }
            }
            Event::StepRunning {
                workflow_id,
                service,
                environment,
                deadline,
            } => {
                // A new attempt replaces the last one's deadline.
                leave(&m.running, workflow_id);
                enter(
                    &m.running,
                    workflow_id,
                    service,
                    environment,
                    deadline.into(),
                );
                m.deadlines(service, environment);
            }
            Event::StepIdle { workflow_id } => {
                if let Some((service, environment)) = leave(&m.running, workflow_id) {
                    m.deadlines(&service, &environment);
                }
            }
            Event::AnalysisVerdict {
                service,
                environment,
                verdict,
            } => m.analysis_verdicts.add(
                1,
                &m.attrs(&[
                    ("service", service),
                    ("environment", environment),
                    ("verdict", verdict),
                ]),
            ),
            Event::DrillFinished {
                service,
                environment,
                drill,
                outcome,
                rto,
                rpo_markers,
                rto_objective,
                rpo_objective_markers,
            } => {
                let attrs = m.attrs(&[
                    ("service", service),
                    ("environment", environment),
                    ("drill", drill),
                ]);
                let with_outcome = m.attrs(&[
                    ("service", service),
                    ("environment", environment),
                    ("drill", drill),
                    ("outcome", outcome),
                ]);
                m.drills_finished.add(1, &with_outcome);
                if let Some(rto) = rto {
                    m.drill_rto.record(rto.as_secs_f64(), &attrs);
                }
                if let Some(rpo) = rpo_markers {
                    m.drill_rpo.record(rpo, &attrs);
                }
                m.drill_rto_objective
                    .record(rto_objective.as_secs_f64(), &attrs);
                m.drill_rpo_objective.record(rpo_objective_markers, &attrs);
                m.drill_objectives_met
                    .record(u64::from(outcome == "passed"), &attrs);
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or(Duration::ZERO);
                m.drill_finished_at.record(now.as_secs_f64(), &attrs);
            }
            Event::LockWaited {
                kind,
                service: _,
                environment: _,
                waited,
            } => m.lock_wait.record(waited, &m.attrs(&[("kind", kind)])),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use temporalio_common::telemetry::{
        PrometheusExporterOptions, start_prometheus_metric_exporter,
    };

    /// Every event once, through the real exporter: the names served are exactly [`EXPORTED`].
    #[tokio::test]
    async fn the_exported_names_are_what_the_endpoint_serves()
    -> Result<(), Box<dyn std::error::Error>> {
        let exporter = PrometheusExporterOptions::builder()
            .socket_addr("127.0.0.1:0".parse()?)
            .counters_total_suffix(true)
            .use_seconds_for_durations(true)
            .unit_suffix(true)
            .build();
        let started = start_prometheus_metric_exporter(exporter)?;
        install(started.meter.clone());
        let sink = WorkflowSink(METRICS.get().ok_or("installed")?.clone());
        let (service, environment, workflow_id) = ("shop", "prod", "rollout/shop/prod");
        let now = chrono::Utc::now();
        for event in [
            Event::RolloutStarted {
                service,
                environment,
            },
            Event::RolloutFinished {
                service,
                environment,
                outcome: "succeeded",
            },
            Event::StepFinished {
                service,
                environment,
                kind: "command",
                outcome: "succeeded",
                duration: Duration::from_millis(30),
                attempts: 1,
            },
            Event::StepAttempt {
                service,
                kind: "command",
                outcome: "failed",
                retry: false,
            },
            Event::ApprovalWaiting {
                workflow_id,
                service,
                environment,
                since: now,
            },
            Event::StepRunning {
                workflow_id,
                service,
                environment,
                deadline: now,
            },
            Event::AnalysisVerdict {
                service,
                environment,
                verdict: "successful",
            },
            Event::DrillFinished {
                service,
                environment,
                drill: "weekly",
                outcome: "passed",
                rto: Some(Duration::from_secs(4)),
                rpo_markers: Some(0),
                rto_objective: Duration::from_secs(60),
                rpo_objective_markers: 0,
            },
            Event::LockWaited {
                kind: "rollout",
                service,
                environment,
                waited: Duration::ZERO,
            },
        ] {
            sink.record(&event);
        }
        ledger_write("release", async { Ok::<_, std::io::Error>(()) }).await?;
        let text = reqwest::get(format!("http://{}/metrics", started.bound_addr))
            .await?
            .text()
            .await?;
        let served: BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with("cutover_"))
            .collect();
        let expected: BTreeSet<&str> = EXPORTED.iter().copied().collect();
        assert_eq!(served, expected, "{text}");
        assert!(
            text.contains("cutover_approvals_waiting{environment=\"prod\",service=\"shop\"} 1")
        );
        sink.record(&Event::ApprovalDone { workflow_id });
        sink.record(&Event::StepIdle { workflow_id });
        let text = reqwest::get(format!("http://{}/metrics", started.bound_addr))
            .await?
            .text()
            .await?;
        assert!(
            text.contains("cutover_approvals_waiting{environment=\"prod\",service=\"shop\"} 0")
        );
        assert!(text.contains(
            "cutover_step_deadline_timestamp_seconds{environment=\"prod\",service=\"shop\"} 0"
        ));
        Ok(())
    }
}
