//! Traces with OpenTelemetry: spans (a Kafka request in the broker, an HTTP request in the
//! registry, KSS and REST proxy) exported over OTLP/HTTP with protobuf bodies.
//!
//! Off unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and
//! configured only through the standard OpenTelemetry environment variables
//! (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_BSP_SCHEDULE_DELAY`, …), so any collector, Jaeger or Tempo receives them. An HTTP
//! request carrying W3C `traceparent` continues the caller's trace. Spans are
//! DEBUG-level: with tracing off no layer asks for them, so the broker's hot path pays only a
//! disabled-callsite check.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::{Level, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{filter_fn, FilterFn, LevelFilter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The environment variables that turn tracing on.
const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Keeps the exporter alive; dropping it sends the spans still buffered.
pub(crate) struct Traces {
    provider: SdkTracerProvider,
}

impl Drop for Traces {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            // The logger may already be gone at exit; stderr is not.
            eprintln!("sluice: could not send the last traces: {e}");
        }
    }
}

/// The target of the spans made for traces: the log lines leave them out (see
/// `logging::init`), so raising a log level to DEBUG adds no per-request span to the logs.
pub(crate) const TRACE_TARGET: &str = "sluice_trace";

/// True when the environment asks for traces: an OTLP endpoint, the SDK not disabled, and no
/// other exporter chosen.
pub(crate) fn enabled() -> bool {
    let set = |v: &str| std::env::var(v).is_ok_and(|s| !s.trim().is_empty());
    ENDPOINT_VARS.iter().any(|v| set(v))
        && !std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        && std::env::var("OTEL_TRACES_EXPORTER").map_or(true, |e| e == "otlp")
}

/// What the OpenTelemetry layer records: Sluice's spans (DEBUG and up) and its INFO-and-up
/// events inside them; nothing from dependencies.
fn exported() -> FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool> {
    filter_fn(|meta| {
        let wanted = if meta.is_span() {
            Level::DEBUG
        } else {
            Level::INFO
        };
        meta.target().starts_with("sluice") && *meta.level() <= wanted
    })
    // Without a hint the global level would become TRACE, and every dependency's trace!
    // (and librdkafka's bridged log records) would reach the filters.
    .with_max_level_hint(LevelFilter::DEBUG)
}

/// A request's headers as OpenTelemetry's propagators read them.
struct Headers<'a>(&'a axum::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Continues the caller's trace (W3C `traceparent`/`tracestate`) in an HTTP request's span.
fn continue_trace(headers: &axum::http::HeaderMap, span: &tracing::Span) {
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    // A span the layer does not record (filtered out) has no parent to set: nothing to do.
    let _ = span.set_parent(parent);
}

/// The OpenTelemetry layer and the guard that flushes it, for a process named `service`
/// (unless `OTEL_SERVICE_NAME` names it).
pub(crate) fn layer<S>(service: &str) -> anyhow::Result<(impl Layer<S>, Traces)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL") {
        if protocol != "http/protobuf" {
            anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: Sluice exports \
                 http/protobuf (an OTLP/HTTP endpoint, usually port 4318)"
            );
        }
    }
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot export traces over OTLP: {e}"))?;
    let mut resource = Resource::builder();
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    if !named {
        resource = resource.with_service_name(service.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("sluice");
    sluice_metrics::http::set_trace_parent(continue_trace);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(exported());
    Ok((layer, Traces { provider }))
}
