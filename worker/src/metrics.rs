//! `--metrics-listen`: one Prometheus endpoint for the SDK's worker metrics and Cutover's.
//!
//! The Temporal runtime's own exporter serves it (any path answers with the text format):
//! Cutover's instruments are made on the same meter (`cutover_activities::metrics`), so one
//! scrape target has both, with one set of conventions — counters end in `_total`, durations
//! are in seconds and end in `_seconds`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use temporalio_common::telemetry::metrics::CoreMeter;
use temporalio_common::telemetry::{
    HistogramBucketOverrides, PrometheusExporterOptions, TelemetryOptions,
    start_prometheus_metric_exporter,
};
use temporalio_sdk::runtime::RuntimeOptions;

/// The runtime's options: with `listen`, a Prometheus exporter bound there now (a taken port
/// fails the start, not the first scrape) and Cutover's metrics installed on its meter.
pub(crate) fn runtime_options(listen: Option<SocketAddr>) -> anyhow::Result<RuntimeOptions> {
    let Some(addr) = listen else {
        return Ok(RuntimeOptions::default());
    };
    let exporter = PrometheusExporterOptions::builder()
        .socket_addr(addr)
        .counters_total_suffix(true)
        .use_seconds_for_durations(true)
        .unit_suffix(true)
        .histogram_bucket_overrides(HistogramBucketOverrides {
            overrides: cutover_activities::metrics::bucket_overrides(),
        })
        .build();
    let started = start_prometheus_metric_exporter(exporter)
        .with_context(|| format!("cannot listen on {addr} for metrics (--metrics-listen)"))?;
    tracing::info!(address = %started.bound_addr, "serving Prometheus metrics");
    let meter: Arc<dyn CoreMeter> = started.meter;
    cutover_activities::metrics::install(meter.clone());
    let telemetry = TelemetryOptions::builder().metrics(meter).build();
    RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(anyhow::Error::msg)
}
