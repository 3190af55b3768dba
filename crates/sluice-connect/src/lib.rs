//! Sluice Connect: a connector runtime that speaks Kafka Connect's REST API and keeps
//! connector configurations, source offsets and statuses in compacted Kafka topics laid out
//! as Kafka Connect lays them out, plus change data capture from PostgreSQL that emits
//! Debezium-compatible change events. Everything reaches Kafka through the Kafka protocol
//! only, so it runs against any Kafka cluster. See `docs/connect.md`.

mod convert;
mod data;
mod error;
mod pg;
mod plugin;
mod runtime;
mod sources;
mod transforms;

pub use error::ConnectError;
pub use plugin::{PluginKind, TaskError};
pub use runtime::{ConnectMetrics, KafkaSettings, TaskContext, Worker, WorkerConfig};
