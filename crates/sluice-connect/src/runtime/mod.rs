//! The connector runtime: a worker keeps connector configurations, source offsets and
//! statuses in compacted Kafka topics laid out as Kafka Connect lays them out, runs the tasks
//! of the connectors it is given, and serves Kafka Connect's REST API.

mod errors;
mod kafka;
mod membership;
mod metrics;
mod offsets;
mod pipeline;
pub(crate) mod record;
mod rest;
mod source;
mod state;
mod topic_log;
mod worker;

pub use kafka::KafkaSettings;
pub use metrics::ConnectMetrics;
pub(crate) use offsets::OffsetStore;
pub(crate) use pipeline::PipelineConfig;
pub(crate) use record::SourceRecord;
pub(crate) use source::{channel as source_channel, Acks, RecordSender, TopicCreation};
pub use worker::{Worker, WorkerConfig};

use std::sync::Arc;

use tokio::sync::watch;

/// What a running task gets from the runtime.
pub struct TaskContext {
    /// The connector's name.
    pub(crate) connector: String,
    /// The task's number.
    pub(crate) task: u32,
    /// How to reach Kafka.
    pub(crate) kafka: KafkaSettings,
    /// Source offsets.
    pub(crate) offsets: OffsetStore,
    /// Becomes `true` when the task must stop.
    pub(crate) stop: watch::Receiver<bool>,
    /// The worker's metrics.
    pub(crate) metrics: Arc<ConnectMetrics>,
}

impl TaskContext {
    /// Waits until the task is asked to stop.
    pub(crate) async fn stopped(&mut self) {
        while !*self.stop.borrow() {
            if self.stop.changed().await.is_err() {
                return;
            }
        }
    }
}
