//! Kafka (any cluster: Sluice, Apache Kafka, MSK, Redpanda) through librdkafka, which batches,
//! compresses and retries below this layer; the driver above adds the delivery timeout,
//! dead-lettering and fan-out every destination shares.

mod config;
mod failover;
mod request_builder;
mod service;

pub use config::KafkaConfig;
pub use failover::{ClusterConfig, Failover, FailoverConfig, Switch};
pub use service::KafkaService;

pub(crate) use request_builder::record;
pub(crate) use service::{failure, send_record};
