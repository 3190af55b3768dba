//! The proxy's Prometheus metrics: requests and their latency per route and status, records
//! written or failed per topic, consumer instances open.

use std::sync::Arc;

use sluice_metrics::http::HttpRequests;
use sluice_metrics::{Counter, Family, Gauge, Registry};

/// Counters the handlers update.
pub(crate) struct HttpMetrics {
    registry: Registry,
    /// Requests per route and status (the `track` middleware's).
    pub(crate) requests: Arc<HttpRequests>,
    records: Arc<Family<Counter>>,
    record_errors: Arc<Family<Counter>>,
    /// Consumer instances open.
    pub(crate) consumers: Arc<Gauge>,
}

impl HttpMetrics {
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        HttpMetrics {
            requests: Arc::new(HttpRequests::new(
                &registry,
                "sluice_http_requests_total",
                "sluice_http_request_duration_seconds",
            )),
            records: registry.counter_family(
                "sluice_http_records_produced_total",
                "Records Kafka acknowledged, per topic.",
                &["topic"],
            ),
            record_errors: registry.counter_family(
                "sluice_http_record_errors_total",
                "Records refused or not acknowledged, per topic.",
                &["topic"],
            ),
            consumers: registry.gauge("sluice_http_consumer_instances", "Consumer instances open."),
            registry,
        }
    }

    /// Counts records delivered and failed (one family lookup per request, not per record).
    pub(crate) fn records(&self, topic: &str, delivered: usize, failed: usize) {
        if delivered > 0 {
            self.records.with(&[topic]).add(delivered as u64);
        }
        if failed > 0 {
            self.record_errors.with(&[topic]).add(failed as u64);
        }
    }

    /// The text exposition.
    pub(crate) fn render(&self) -> String {
        self.registry.render()
    }
}
