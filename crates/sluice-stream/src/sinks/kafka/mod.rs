//! Kafka (any cluster: Sluice, Apache Kafka, MSK, Redpanda) through librdkafka, which batches,
//! compresses and retries below this layer; the driver above adds the delivery timeout,
//! dead-lettering and fan-out every destination shares.

mod config;
mod request_builder;
mod service;

pub use config::KafkaConfig;
pub use service::KafkaService;
