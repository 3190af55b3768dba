//! Metadata: this broker, the cluster id, and the topics with their (single-node) partitions.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::{Operation, ResourceType, CLUSTER_NAME};
use crate::auth::{CLUSTER_OPERATIONS, TOPIC_OPERATIONS};
use crate::meta::Topic;

/// Describes one existing topic; with `include_ops`, what the caller may do with it.
fn describe(
    ctx: &RequestContext,
    topic: &Topic,
    node: i32,
    include_ops: bool,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(BrokerId(node))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(node)])
                .with_isr_nodes(vec![BrokerId(node)])
        })
        .collect();
    let mut out = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.internal)
        .with_partitions(partitions);
    if include_ops {
        out.topic_authorized_operations =
            ctx.authorized_operations(ResourceType::Topic, &topic.name, TOPIC_OPERATIONS);
    }
    out
}

/// TOPIC_AUTHORIZATION_FAILED unless the caller may Describe the topic.
fn authorize_topic(ctx: &RequestContext, name: &str) -> Result<(), ResponseError> {
    if ctx.authorize(Operation::Describe, ResourceType::Topic, name) {
        Ok(())
    } else {
        Err(ResponseError::TopicAuthorizationFailed)
    }
}

/// Answers Metadata (v0-12).
pub async fn handle(ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    let broker = &ctx.broker;
    let node = broker.config.node_id;
    let (host, port) = ctx.advertised();
    // v0 has no null topic list: an empty list means all topics. Before v4 requests could not
    // opt out of auto-creation.
    let version = ctx.version();
    let allow_auto_create = version < 4 || req.allow_auto_topic_creation;
    let include_ops = req.include_topic_authorized_operations;
    let requested = match req.topics {
        Some(t) if !(version == 0 && t.is_empty()) => Some(t),
        _ => None,
    };
    let topics = match requested {
        None => broker
            .metadata
            .topics()
            .iter()
            // Topics the caller may not Describe are left out, not reported as errors.
            .filter(|t| ctx.authorize(Operation::Describe, ResourceType::Topic, &t.name))
            .map(|t| describe(ctx, t, node, include_ops))
            .collect(),
        Some(requested) => requested
            .into_iter()
            .map(|r| {
                let found: Result<Arc<Topic>, ResponseError> = match &r.name {
                    Some(name) => authorize_topic(ctx, name.0.as_str()).and_then(|()| {
                        let may_create = allow_auto_create && ctx.may_create_topic(name.0.as_str());
                        broker.topic_or_auto_create(name.0.as_str(), may_create)
                    }),
                    None => broker
                        .metadata
                        .topic_by_id(r.topic_id)
                        .ok_or(ResponseError::UnknownTopicId)
                        .and_then(|t| authorize_topic(ctx, &t.name).map(|()| t)),
                };
                match found {
                    Ok(topic) => describe(ctx, &topic, node, include_ops),
                    Err(e) => MetadataResponseTopic::default()
                        .with_error_code(e.code())
                        .with_name(r.name)
                        .with_topic_id(r.topic_id),
                }
            })
            .collect(),
    };
    let mut response = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(node))
            .with_host(StrBytes::from_string(host))
            .with_port(i32::from(port))])
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(node))
        .with_topics(topics);
    if req.include_cluster_authorized_operations {
        response.cluster_authorized_operations =
            ctx.authorized_operations(ResourceType::Cluster, CLUSTER_NAME, CLUSTER_OPERATIONS);
    }
    response
}
