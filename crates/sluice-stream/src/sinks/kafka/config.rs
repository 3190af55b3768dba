//! Settings of a Kafka destination.

use std::collections::BTreeMap;

use serde::Deserialize;

/// librdkafka's default `message.max.bytes`.
pub(crate) const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// A Kafka topic (`kafka:` in a pipeline file).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// The topic events go to.
    pub topic: String,
    /// librdkafka producer properties (`bootstrap.servers`, `security.protocol`, …); a
    /// preset's values are applied first, these override them.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// A fixed partition (else the key's hash, as every Kafka client does).
    #[serde(default)]
    pub partition: Option<i32>,
    /// Standby clusters to fail over to (these properties are the primary's).
    #[serde(default)]
    pub failover: Option<super::FailoverConfig>,
}

impl KafkaConfig {
    /// A configuration for `topic` on `bootstrap`.
    pub fn new(bootstrap: impl Into<String>, topic: impl Into<String>) -> KafkaConfig {
        KafkaConfig {
            topic: topic.into(),
            properties: BTreeMap::from([("bootstrap.servers".to_owned(), bootstrap.into())]),
            partition: None,
            failover: None,
        }
    }

    /// The largest record the producer will send.
    pub(crate) fn message_max_bytes(&self) -> usize {
        self.properties
            .get("message.max.bytes")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES)
    }
}
