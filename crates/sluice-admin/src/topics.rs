//! Creating and deleting topics and adding partitions: CreateTopics, DeleteTopics and
//! CreatePartitions, for platform-as-code (`sluice apply`), which converges a cluster to a file.
//!
//! Send them to the controller ([`crate::ClusterMetadata::controller_broker`]): KRaft brokers
//! forward them from anywhere, but ZooKeeper-mode Kafka answers `NOT_CONTROLLER` elsewhere.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::connection::AdminConnection;
use crate::error::check;
use crate::AdminError;

/// CreateTopics v5: the first flexible version, and -1 asks for the broker's defaults (v4+).
const CREATE_TOPICS_VERSION: i16 = 5;
/// DeleteTopics v4: the first flexible version; names, not topic ids (v6+).
const DELETE_TOPICS_VERSION: i16 = 4;
/// CreatePartitions v2: the first flexible version.
const CREATE_PARTITIONS_VERSION: i16 = 2;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Its name.
    pub name: String,
    /// Partitions; `None` for the broker's `num.partitions`.
    pub partitions: Option<i32>,
    /// Replication factor; `None` for the broker's `default.replication.factor`.
    pub replication_factor: Option<i16>,
    /// Topic configs set at creation.
    pub configs: Vec<(String, String)>,
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// Creates `topics` (CreateTopics), waiting up to `timeout_ms` for the controller.
pub async fn create_topics(
    conn: &mut AdminConnection,
    topics: &[NewTopic],
    timeout_ms: i32,
) -> Result<(), AdminError> {
    if topics.is_empty() {
        return Ok(());
    }
    let creatable = topics
        .iter()
        .map(|t| {
            CreatableTopic::default()
                .with_name(topic_name(&t.name))
                .with_num_partitions(t.partitions.unwrap_or(-1))
                .with_replication_factor(t.replication_factor.unwrap_or(-1))
                .with_configs(
                    t.configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.clone()))
                                .with_value(Some(StrBytes::from_string(v.clone())))
                        })
                        .collect(),
                )
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_topics(creatable)
        .with_timeout_ms(timeout_ms);
    let response = conn.request(&request, CREATE_TOPICS_VERSION).await?;
    for t in &response.topics {
        check(t.error_code, t.error_message.as_ref(), || {
            format!("CreateTopics of {}", t.name.0.as_str())
        })?;
    }
    Ok(())
}

/// Deletes the topics `names` and their data (DeleteTopics).
pub async fn delete_topics(
    conn: &mut AdminConnection,
    names: &[String],
    timeout_ms: i32,
) -> Result<(), AdminError> {
    if names.is_empty() {
        return Ok(());
    }
    let request = DeleteTopicsRequest::default()
        .with_topic_names(names.iter().map(|n| topic_name(n)).collect())
        .with_timeout_ms(timeout_ms);
    let response = conn.request(&request, DELETE_TOPICS_VERSION).await?;
    for r in &response.responses {
        let name = r.name.as_ref().map_or("?", |n| n.0.as_str());
        check(r.error_code, r.error_message.as_ref(), || {
            format!("DeleteTopics of {name}")
        })?;
    }
    Ok(())
}

/// Raises the partition count of each `(topic, new total)` (CreatePartitions); Kafka cannot
/// lower it.
pub async fn create_partitions(
    conn: &mut AdminConnection,
    totals: &[(String, i32)],
    timeout_ms: i32,
) -> Result<(), AdminError> {
    if totals.is_empty() {
        return Ok(());
    }
    let request = CreatePartitionsRequest::default()
        .with_topics(
            totals
                .iter()
                .map(|(name, count)| {
                    CreatePartitionsTopic::default()
                        .with_name(topic_name(name))
                        .with_count(*count)
                        // Null lets the controller place the new partitions; an empty
                        // list would be an assignment of the wrong size.
                        .with_assignments(None)
                })
                .collect(),
        )
        .with_timeout_ms(timeout_ms);
    let response = conn.request(&request, CREATE_PARTITIONS_VERSION).await?;
    for r in &response.results {
        check(r.error_code, r.error_message.as_ref(), || {
            format!("CreatePartitions of {}", r.name.0.as_str())
        })?;
    }
    Ok(())
}
