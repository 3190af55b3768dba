//! Per-destination metrics, in the platform's Prometheus registry.

use std::sync::Arc;

use sluice_metrics::{Counter, Family, Gauge, Histogram, Registry, LATENCY_BUCKETS};

/// The families every destination reports into.
#[derive(Debug, Clone)]
pub struct StreamMetrics {
    sent: Arc<Family<Counter>>,
    failed: Arc<Family<Counter>>,
    retried: Arc<Family<Counter>>,
    dead_lettered: Arc<Family<Counter>>,
    buffered: Arc<Family<Gauge>>,
    buffered_bytes: Arc<Family<Gauge>>,
    latency: Arc<Family<Histogram>>,
    requests: Arc<Family<Counter>>,
    switches: Arc<Family<Counter>>,
    active: Arc<Family<Gauge>>,
}

impl StreamMetrics {
    /// Registers the families in `registry`.
    pub fn new(registry: &Registry) -> StreamMetrics {
        let d = &["destination"];
        StreamMetrics {
            sent: registry.counter_family(
                "sluice_stream_sent_total",
                "Events a destination acknowledged.",
                d,
            ),
            failed: registry.counter_family(
                "sluice_stream_failed_total",
                "Events a destination refused for good (after retries), per error code.",
                &["destination", "code"],
            ),
            retried: registry.counter_family(
                "sluice_stream_retried_total",
                "Event sends retried after a transient failure (whole request or one record).",
                d,
            ),
            dead_lettered: registry.counter_family(
                "sluice_stream_dead_lettered_total",
                "Events written to the dead-letter destination after this destination failed.",
                d,
            ),
            buffered: registry.gauge_family(
                "sluice_stream_in_flight",
                "Events accepted by a destination and not yet acknowledged or failed.",
                d,
            ),
            buffered_bytes: registry.gauge_family(
                "sluice_stream_in_flight_bytes",
                "Bytes of those events (bounded by the destination's buffer).",
                d,
            ),
            latency: registry.histogram_family(
                "sluice_stream_request_seconds",
                "Time of one request to a destination.",
                d,
                LATENCY_BUCKETS,
            ),
            requests: registry.counter_family(
                "sluice_stream_requests_total",
                "Requests sent to a destination.",
                d,
            ),
            switches: registry.counter_family(
                "sluice_stream_failover_switches_total",
                "Kafka failover switches, per destination and the cluster switched to.",
                &["destination", "to"],
            ),
            active: registry.gauge_family(
                "sluice_stream_failover_active",
                "1 for the cluster a failover destination sends to, 0 for its others.",
                &["destination", "cluster"],
            ),
        }
    }

    /// The failover series of one destination.
    pub(crate) fn failover(&self, destination: &str) -> FailoverMetrics {
        FailoverMetrics {
            destination: destination.to_owned(),
            switches: Arc::clone(&self.switches),
            active: Arc::clone(&self.active),
        }
    }

    /// The series of one destination.
    pub(crate) fn destination(&self, name: &str) -> DestinationMetrics {
        DestinationMetrics {
            sent: self.sent.with(&[name]),
            failed: Arc::clone(&self.failed),
            name: name.to_owned(),
            retried: self.retried.with(&[name]),
            dead_lettered: self.dead_lettered.with(&[name]),
            buffered: self.buffered.with(&[name]),
            buffered_bytes: self.buffered_bytes.with(&[name]),
            latency: self.latency.with(&[name]),
            requests: self.requests.with(&[name]),
        }
    }
}

impl Default for StreamMetrics {
    fn default() -> Self {
        StreamMetrics::new(&Registry::new())
    }
}

/// One destination's series.
#[derive(Debug, Clone)]
pub(crate) struct DestinationMetrics {
    name: String,
    failed: Arc<Family<Counter>>,
    pub(crate) sent: Arc<Counter>,
    pub(crate) retried: Arc<Counter>,
    pub(crate) dead_lettered: Arc<Counter>,
    pub(crate) buffered: Arc<Gauge>,
    pub(crate) buffered_bytes: Arc<Gauge>,
    pub(crate) latency: Arc<Histogram>,
    pub(crate) requests: Arc<Counter>,
}

impl DestinationMetrics {
    /// Counts one event failed for good with `code`.
    pub(crate) fn failed(&self, code: &str) {
        self.failed.with(&[&self.name, code]).inc();
    }
}

/// A failover destination's series.
#[derive(Debug)]
pub(crate) struct FailoverMetrics {
    destination: String,
    switches: Arc<Family<Counter>>,
    active: Arc<Family<Gauge>>,
}

impl FailoverMetrics {
    /// Marks `active` as the cluster in use among `clusters`.
    pub(crate) fn set_active(&self, active: &str, clusters: &[&str]) {
        for c in clusters {
            self.active
                .with(&[&self.destination, c])
                .set(i64::from(*c == active));
        }
    }

    /// Counts a switch to `to`.
    pub(crate) fn switched(&self, to: &str, clusters: &[&str]) {
        self.switches.with(&[&self.destination, to]).inc();
        self.set_active(to, clusters);
    }
}
