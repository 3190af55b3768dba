//! DescribeTopicPartitions (API key 75, v0; KIP-966): topics and their partitions, paged by a
//! cursor so that topics with many partitions can be described in bounded responses. Newer
//! admin clients use it instead of Metadata for `describeTopics`.
//!
//! Topics come sorted by name; at most `response_partition_limit` partitions per response
//! (capped at 2000, as Kafka's `max.request.partition.size.limit`), and `next_cursor` names
//! the first partition left out. No topic names means every topic the caller may describe.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::{Operation, ResourceType, TOPIC_OPERATIONS};

/// Most partitions one response carries.
const MAX_PARTITIONS: i32 = 2000;

/// Handles a DescribeTopicPartitions request.
pub async fn handle(
    ctx: &RequestContext,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let broker = &ctx.broker;
    let node = BrokerId(broker.config.node_id);
    let mut names: Vec<String> = if req.topics.is_empty() {
        broker
            .metadata
            .topics()
            .iter()
            .filter(|t| ctx.authorize(Operation::Describe, ResourceType::Topic, &t.name))
            .map(|t| t.name.clone())
            .collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) = match &req.cursor {
        Some(cursor) => (
            cursor.topic_name.0.to_string(),
            cursor.partition_index.max(0),
        ),
        None => (String::new(), 0),
    };
    let mut budget = req.response_partition_limit.clamp(1, MAX_PARTITIONS);
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names.into_iter().filter(|n| *n >= start_topic) {
        let first = if name == start_topic {
            start_partition
        } else {
            0
        };
        let described = DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.clone()))));
        if !ctx.authorize(Operation::Describe, ResourceType::Topic, &name) {
            response
                .topics
                .push(described.with_error_code(ResponseError::TopicAuthorizationFailed.code()));
            continue;
        }
        let Some(topic) = broker.metadata.topic(&name) else {
            response
                .topics
                .push(described.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
            continue;
        };
        if budget == 0 {
            // The next response starts here.
            response.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(StrBytes::from_string(name)))
                    .with_partition_index(first),
            );
            break;
        }
        let mut partitions = Vec::new();
        for p in topic.partitions.iter().filter(|p| p.index >= first) {
            if budget == 0 {
                response.next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(TopicName(StrBytes::from_string(name.clone())))
                        .with_partition_index(p.index),
                );
                break;
            }
            budget -= 1;
            partitions.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p.index)
                    .with_leader_id(node)
                    .with_leader_epoch(0)
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![node])
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new())),
            );
        }
        response.topics.push(
            described
                .with_topic_id(topic.id)
                .with_is_internal(topic.internal)
                .with_partitions(partitions)
                .with_topic_authorized_operations(ctx.authorized_operations(
                    ResourceType::Topic,
                    &topic.name,
                    TOPIC_OPERATIONS,
                )),
        );
        if response.next_cursor.is_some() {
            break;
        }
    }
    response
}
