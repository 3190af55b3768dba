//! Request counts and latencies of an axum service, per route and status, and a trace span per
//! request: one middleware every HTTP component of the platform installs the same way.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::{Counter, Family, Histogram, Registry, LATENCY_BUCKETS};

/// The two families a service's requests are counted in.
#[derive(Debug)]
pub struct HttpRequests {
    requests: Arc<Family<Counter>>,
    latency: Arc<Family<Histogram>>,
}

impl HttpRequests {
    /// Families `requests` (counter: route, code) and `latency` (histogram: route) in `registry`.
    pub fn new(registry: &Registry, requests: &'static str, latency: &'static str) -> Self {
        HttpRequests {
            requests: registry.counter_family(
                requests,
                "HTTP requests answered, per route and status code.",
                &["route", "code"],
            ),
            latency: registry.histogram_family(
                latency,
                "Time to answer a request, per route, until the response head was ready.",
                &["route"],
                LATENCY_BUCKETS,
            ),
        }
    }

    /// Counts one answered request.
    pub fn observe(&self, route: &str, code: u16, started: Instant) {
        self.latency
            .with(&[route])
            .observe_duration(started.elapsed());
        self.requests.with(&[route, &code.to_string()]).inc();
    }
}

/// Sets a request span's parent from the request's headers (W3C `traceparent`), so a caller's
/// trace continues in the service. The process installs one when it exports traces; this
/// crate stays free of any tracing backend.
pub type TraceParent = fn(&axum::http::HeaderMap, &tracing::Span);

static TRACE_PARENT: OnceLock<TraceParent> = OnceLock::new();

/// Installs the [`TraceParent`] hook for every service of the process (the first call wins).
pub fn set_trace_parent(hook: TraceParent) {
    let _ = TRACE_PARENT.set(hook);
}

/// Middleware (install with `route_layer`, so the matched route is known): times and counts
/// each request under its route pattern, never its raw path, so label values stay few.
pub async fn track(
    State(metrics): State<Arc<HttpRequests>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_owned(), |p| p.as_str().to_owned());
    // A span per request for traces (DEBUG, so free unless tracing is on).
    let span = tracing::debug_span!(
        // Only the tracing layer takes this target (the binary's log lines leave it out).
        target: "sluice_trace",
        "http.request",
        otel.name = format_args!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(parent) = TRACE_PARENT.get() {
        parent(request.headers(), &span);
    }
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let code = response.status().as_u16();
    span.record("http.response.status_code", i64::from(code));
    if code >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    metrics.observe(&route, code, started);
    response
}
