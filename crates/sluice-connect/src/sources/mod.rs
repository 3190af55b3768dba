//! Source connectors: systems whose changes flow into Kafka.

pub(crate) mod postgres;
