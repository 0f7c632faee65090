//! Logging and traces, set up once per process.
//!
//! Logs: `RUST_LOG` filters (default `info`), human or JSON lines on stderr. The worker and
//! `cutover serve` both call [`init`], so their log lines look alike and a log shipper needs
//! one parser for both.
//!
//! Traces: OpenTelemetry over OTLP/gRPC, configured by the standard variables
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SDK_DISABLED`), and off when no endpoint is set. `tracing`
//! spans become OpenTelemetry spans; the Temporal SDK's OpenTelemetry plugin, which
//! [`crate::connect`] adds to every client while traces are on, carries the context through
//! Temporal headers, so one trace runs from a webhook request through the workflow to each
//! activity attempt and what it does, across worker restarts (the context is in the history).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use temporalio_sdk::opentelemetry::{WorkflowIdGenerator, WorkflowSpanProcessor};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines for a terminal (colour only when stderr is one).
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Whether this process exports traces (set by [`init`]).
static TRACES: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported: clients then carry trace context in Temporal headers.
pub fn traces_enabled() -> bool {
    TRACES.load(Ordering::SeqCst)
}

/// What [`init`] set up; [`Telemetry::shutdown`] sends the spans not yet exported.
#[must_use = "call shutdown() before exiting, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is buffered and stops the exporter.
    pub fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let flush = move || {
            if let Err(e) = provider.force_flush() {
                tracing::warn!("exporting the last spans: {e}");
            }
            let _ = provider.shutdown();
        };
        // The flush waits for the exporter, whose gRPC connection runs on this runtime: on a
        // runtime worker, hand the worker's other tasks off first, or the export waits for a
        // task queued behind the wait itself (and times out, losing the last spans).
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(flush),
            _ => flush(),
        }
    }
}

/// Installs the global subscriber, and with an OTLP endpoint configured, the trace exporter
/// (`service` names the process unless `OTEL_SERVICE_NAME` does). A second call (tests start
/// several receivers in one process) keeps the first subscriber instead of panicking.
pub fn init(format: LogFormat, service: &'static str) -> Telemetry {
    init_with_level(format, service, "info")
}

/// [`init`] with `level` as the log filter when `RUST_LOG` is unset: the CLI logs only
/// warnings by default, since what it has to say it prints.
pub fn init_with_level(format: LogFormat, service: &'static str, level: &str) -> Telemetry {
    let provider = tracer_provider(service);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Only Cutover's own spans, at info and above, become trace spans (the SDK's internal
    // `tracing` spans — polls, activations — would bury them); the plugin adds the workflow
    // and activity spans. The log filter does not apply: a CLI that logs only warnings still
    // traces its start.
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("cutover"))
            .with_tracked_inactivity(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.target().starts_with("cutover") && *meta.level() <= tracing::Level::INFO
            }))
    });
    let registry = tracing_subscriber::registry().with(traces);
    let installed = match format {
        LogFormat::Human => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(WithTraceIds(
                        tracing_subscriber::fmt::format().with_target(false),
                    ))
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(WithTraceIds(
                        tracing_subscriber::fmt::format().json().flatten_event(true),
                    ))
                    .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
    };
    if installed.is_err() {
        return Telemetry { provider: None };
    }
    if let Some(p) = &provider {
        opentelemetry::global::set_tracer_provider(p.clone());
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        TRACES.store(true, Ordering::SeqCst);
    }
    Telemetry { provider }
}

/// Log lines with the `trace_id` and `span_id` they were written under (traces on), so a log
/// line leads to its trace and back: fields of a JSON line, `trace_id=… span_id=…` at the end
/// of a human one.
struct WithTraceIds<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for WithTraceIds<F>
where
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        // Without a trace in force the line is written as it is, with no copy on the way.
        let Some((trace_id, span_id)) = traces_enabled().then(current_ids).flatten() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        if !line.starts_with('{') {
            return writeln!(
                writer,
                "{} trace_id={trace_id} span_id={span_id}",
                line.trim_end()
            );
        }
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line.trim_end()) {
            Ok(mut map) => {
                map.insert("trace_id".to_owned(), trace_id.into());
                map.insert("span_id".to_owned(), span_id.into());
                writeln!(writer, "{}", serde_json::Value::Object(map))
            }
            Err(_) => writer.write_str(&line),
        }
    }
}

/// The trace and span IDs in force: the current `tracing` span's, else the OpenTelemetry
/// context's (an activity attempt's span, which the SDK's plugin makes current).
fn current_ids() -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let from_span = tracing::Span::current().context();
    let mut sc = from_span.span().span_context().clone();
    if !sc.is_valid() {
        sc = opentelemetry::Context::current()
            .span()
            .span_context()
            .clone();
    }
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

/// The OTLP/gRPC exporter and its provider, when an endpoint is configured and the SDK is not
/// disabled. A bad endpoint is logged and traces stay off: telemetry never stops the process.
fn tracer_provider(service: &'static str) -> Option<SdkTracerProvider> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let wanted = set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.eq_ignore_ascii_case("none"));
    if !wanted || disabled {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("traces are off: the OTLP exporter could not be set up: {e}");
            return None;
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name(service);
    }
    // The SDK's processor wrapper keeps workflow spans from being exported again on replay;
    // its ID generator gives them the same IDs at every replay.
    let processor = WorkflowSpanProcessor::new(BatchSpanProcessor::builder(exporter).build());
    Some(
        SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_id_generator(WorkflowIdGenerator::default())
            .with_resource(resource.build())
            .build(),
    )
}

/// The Temporal header that carries the caller's trace context into a workflow started with
/// a raw `StartWorkflowExecution` request (which the SDK's client interceptor does not see):
/// the same `_tracer-data` field, W3C `traceparent` inside, that the plugin writes and reads.
/// `None` with traces off or no span current.
pub fn trace_header() -> Option<temporalio_common::protos::temporal::api::common::v1::Header> {
    if !traces_enabled() {
        return None;
    }
    let mut carrier = std::collections::HashMap::<String, String>::new();
    let cx = opentelemetry::Context::current();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    if carrier.is_empty() {
        return None;
    }
    let payload = crate::rollout::json_payload(&serde_json::json!(carrier));
    Some(
        temporalio_common::protos::temporal::api::common::v1::Header {
            fields: [(
                temporalio_sdk::opentelemetry::TRACE_HEADER_KEY.to_owned(),
                payload,
            )]
            .into(),
        },
    )
}
