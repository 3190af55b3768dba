//! Request counts and latencies of an axum service, per route and status: one middleware every
//! HTTP component of the platform installs the same way.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

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
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(&route, response.status().as_u16(), started);
    response
}
