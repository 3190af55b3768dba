//! The worker's Prometheus metrics: records and bytes each source connector wrote, snapshot
//! rows, task restarts and failures, offset commits, how far behind the source a connector is
//! (commit time of the last event and, for PostgreSQL, the slot's retained WAL), task states,
//! and the REST API's requests.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use sluice_metrics::http::HttpRequests;
use sluice_metrics::{Counter, Family, Gauge, Histogram, Registry, LATENCY_BUCKETS};

use super::state::Status;

/// The metrics one worker keeps.
pub struct ConnectMetrics {
    registry: Registry,
    pub(crate) requests: Arc<HttpRequests>,
    records: Arc<Family<Counter>>,
    bytes: Arc<Family<Counter>>,
    snapshot_rows: Arc<Family<Counter>>,
    restarts: Arc<Family<Counter>>,
    offset_commit: Arc<Family<Histogram>>,
    behind_ms: Arc<Family<Gauge>>,
    slot_lag: Arc<Family<Gauge>>,
    skipped: Arc<Family<Counter>>,
    dead_letters: Arc<Family<Counter>>,
}

impl ConnectMetrics {
    pub(crate) fn new(
        statuses: Arc<RwLock<std::collections::HashMap<String, Status>>>,
        worker_id: String,
    ) -> Self {
        let registry = Registry::new();
        let metrics = Self {
            requests: Arc::new(HttpRequests::new(
                &registry,
                "sluice_connect_requests_total",
                "sluice_connect_request_duration_seconds",
            )),
            records: registry.counter_family(
                "sluice_connect_source_records_total",
                "Records a source connector wrote to Kafka (acknowledged), per connector.",
                &["connector"],
            ),
            bytes: registry.counter_family(
                "sluice_connect_source_bytes_total",
                "Key and value bytes a source connector wrote to Kafka, per connector.",
                &["connector"],
            ),
            snapshot_rows: registry.counter_family(
                "sluice_connect_snapshot_rows_total",
                "Rows read by initial snapshots, per connector.",
                &["connector"],
            ),
            restarts: registry.counter_family(
                "sluice_connect_task_restarts_total",
                "Task failures the worker retried after a back-off, per connector.",
                &["connector"],
            ),
            offset_commit: registry.histogram_family(
                "sluice_connect_offset_commit_seconds",
                "Time to store a source offset in the offsets topic, per connector.",
                &["connector"],
                LATENCY_BUCKETS,
            ),
            behind_ms: registry.gauge_family(
                "sluice_connect_source_behind_milliseconds",
                "Time between the source's commit of the last event written and its acknowledgement by Kafka (Debezium's MilliSecondsBehindSource), per connector.",
                &["connector"],
            ),
            slot_lag: registry.gauge_family(
                "sluice_connect_postgres_slot_lag_bytes",
                "WAL the connector's replication slot holds back (current WAL position minus the slot's confirmed position), per connector.",
                &["connector"],
            ),
            skipped: registry.counter_family(
                "sluice_connect_records_skipped_total",
                "Records that failed a transform or converter and were skipped (errors.tolerance=all), per connector.",
                &["connector"],
            ),
            dead_letters: registry.counter_family(
                "sluice_connect_deadletter_records_total",
                "Skipped records written to the dead-letter topic, per connector.",
                &["connector"],
            ),
            registry,
        };
        metrics.registry.collect_with(move |enc| {
            // Task states as this worker sees the cluster (every worker reads the status topic).
            let statuses = statuses.read();
            let mut counts = std::collections::BTreeMap::<(&str, &str), usize>::new();
            for (key, status) in statuses.iter() {
                if key.starts_with("status-task-") {
                    let mine = if status.worker_id == worker_id {
                        "this"
                    } else {
                        "other"
                    };
                    *counts.entry((status.state.as_str(), mine)).or_default() += 1;
                }
            }
            enc.gauges(
                "sluice_connect_tasks",
                "Tasks of the Connect cluster by state, and whether this worker runs them.",
                counts.iter().map(|((state, worker), n)| {
                    (vec![("state", *state), ("worker", *worker)], *n as f64)
                }),
            );
        });
        metrics
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        self.registry.render()
    }

    /// The record and byte counters of `connector` (looked up once per task, not per record).
    pub(crate) fn source_counters(&self, connector: &str) -> (Arc<Counter>, Arc<Counter>) {
        (
            self.records.with(&[connector]),
            self.bytes.with(&[connector]),
        )
    }

    /// The skipped and dead-letter counters of `connector`.
    pub(crate) fn error_counters(&self, connector: &str) -> (Arc<Counter>, Arc<Counter>) {
        (
            self.skipped.with(&[connector]),
            self.dead_letters.with(&[connector]),
        )
    }

    pub(crate) fn snapshot_rows(&self, connector: &str, rows: u64) {
        self.snapshot_rows.with(&[connector]).add(rows);
    }

    pub(crate) fn restarted(&self, connector: &str) {
        self.restarts.with(&[connector]).inc();
    }

    pub(crate) fn offset_committed(&self, connector: &str, took: Duration) {
        self.offset_commit.with(&[connector]).observe_duration(took);
    }

    pub(crate) fn behind(&self, connector: &str, ms: i64) {
        self.behind_ms.with(&[connector]).set(ms.max(0));
    }

    pub(crate) fn slot_lag(&self, connector: &str, bytes: i64) {
        self.slot_lag.with(&[connector]).set(bytes);
    }

    /// Drops the series of a connector that is gone.
    pub(crate) fn forget(&self, connector: &str) {
        for family in [
            &self.records,
            &self.bytes,
            &self.snapshot_rows,
            &self.restarts,
            &self.skipped,
            &self.dead_letters,
        ] {
            family.remove(&[connector]);
        }
        self.offset_commit.remove(&[connector]);
        self.behind_ms.remove(&[connector]);
        self.slot_lag.remove(&[connector]);
    }
}
