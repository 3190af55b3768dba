//! The broker's Prometheus metrics that are counted as things happen: requests and their
//! latency per API, connections, bytes and messages per topic, time clients were throttled.
//! What is cheaper to read when scraped (open connections, partitions, log sizes, free space,
//! group lag) is added by the server as collectors over the running broker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_metrics::{Counter, Family, FloatCounter, Histogram, Registry, LATENCY_BUCKETS};

/// Counters and histograms the request path updates.
#[derive(Debug)]
pub struct BrokerMetrics {
    registry: Registry,
    /// Request latency per API, by API key (handles made up front: no lookup per request).
    requests: HashMap<i16, Arc<Histogram>>,
    /// Requests for an API the protocol defines but the broker does not implement.
    unsupported_requests: Arc<Counter>,
    connections_total: Arc<Counter>,
    bytes_in: Arc<Family<Counter>>,
    messages_in: Arc<Family<Counter>>,
    bytes_out: Arc<Family<Counter>>,
    throttle: Arc<Family<FloatCounter>>,
}

impl BrokerMetrics {
    /// Metrics for a broker serving `apis` (`(key, name)`).
    pub fn new(apis: &[(i16, &str)]) -> Self {
        let registry = Registry::new();
        let latency = registry.histogram_family(
            "sluice_broker_request_duration_seconds",
            "Time the broker spent on a request, per Kafka API, from its decoding to its response being ready (the _count is the request count).",
            &["api"],
            LATENCY_BUCKETS,
        );
        let requests = apis
            .iter()
            .map(|(key, name)| (*key, latency.with(&[name])))
            .collect();
        BrokerMetrics {
            unsupported_requests: registry.counter(
                "sluice_broker_unsupported_api_requests_total",
                "Requests for an API the protocol defines but this broker does not implement.",
            ),
            connections_total: registry.counter(
                "sluice_broker_connections_accepted_total",
                "Client connections accepted since start.",
            ),
            bytes_in: registry.counter_family(
                "sluice_broker_topic_bytes_in_total",
                "Record bytes appended per topic (produce, before any compression is undone).",
                &["topic"],
            ),
            messages_in: registry.counter_family(
                "sluice_broker_topic_messages_in_total",
                "Records appended per topic.",
                &["topic"],
            ),
            bytes_out: registry.counter_family(
                "sluice_broker_topic_bytes_out_total",
                "Record bytes served to fetches per topic.",
                &["topic"],
            ),
            throttle: registry.float_counter_family(
                "sluice_broker_throttle_time_seconds_total",
                "Time clients were asked to wait for exceeding a quota, per quota.",
                &["quota"],
            ),
            requests,
            registry,
        }
    }

    /// The registry, for the server to add collectors and to render.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records one request of API `key` that took `took`.
    pub fn request(&self, key: i16, took: Duration) {
        match self.requests.get(&key) {
            Some(h) => h.observe_duration(took),
            None => self.unsupported_requests.inc(),
        }
    }

    /// A connection was accepted.
    pub fn connection_accepted(&self) {
        self.connections_total.inc();
    }

    /// `messages` records of `bytes` bytes were appended to `topic`.
    pub fn appended(&self, topic: &str, bytes: usize, messages: u64) {
        self.bytes_in.with(&[topic]).add(bytes as u64);
        self.messages_in.with(&[topic]).add(messages);
    }

    /// `bytes` of `topic` were served to a fetch.
    pub fn served(&self, topic: &str, bytes: usize) {
        self.bytes_out.with(&[topic]).add(bytes as u64);
    }

    /// A client was asked to wait `ms` under quota `kind` (`producer_byte_rate`, …).
    pub fn throttled(&self, kind: &str, ms: i32) {
        if ms > 0 {
            self.throttle.with(&[kind]).add(f64::from(ms) / 1000.0);
        }
    }

    /// Forgets a deleted topic's series.
    pub fn topic_deleted(&self, topic: &str) {
        for family in [&self.bytes_in, &self.messages_in, &self.bytes_out] {
            family.remove(&[topic]);
        }
    }
}
