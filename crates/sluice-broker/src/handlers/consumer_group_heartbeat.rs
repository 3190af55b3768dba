//! ConsumerGroupHeartbeat (API key 68, v0-1): KIP-848 consumer groups, with the assignment
//! computed by the broker (see [`crate::group::consumer`]).

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use kafka_protocol::error::ResponseError;

use super::RequestContext;
use crate::auth::{Operation, ResourceType};
use crate::group::consumer::{self, ConsumerHeartbeat};
use crate::group::wire::str_bytes;
use crate::group::Now;

/// Handles a ConsumerGroupHeartbeat request.
pub async fn handle(
    ctx: &RequestContext,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let refuse = |error: ResponseError, message: String| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(message)))
    };
    // As Kafka: Read on the group to be a member, and Describe on every subscribed topic.
    if let Err(e) = ctx.authorize_group(Operation::Read, req.group_id.as_str()) {
        return refuse(
            e,
            format!("not authorized to read group {}", req.group_id.as_str()),
        );
    }
    let unauthorized: Vec<&str> = req
        .subscribed_topic_names
        .iter()
        .flatten()
        .map(|t| t.as_str())
        .filter(|t| !ctx.authorize(Operation::Describe, ResourceType::Topic, t))
        .collect();
    if !unauthorized.is_empty() {
        return refuse(
            ResponseError::TopicAuthorizationFailed,
            format!(
                "not authorized to describe the subscribed topics {}",
                unauthorized.join(", ")
            ),
        );
    }
    let owned = req.topic_partitions.as_ref().map(|tps| {
        let mut owned = consumer::Assignment::new();
        for tp in tps {
            owned
                .entry(tp.topic_id)
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
        owned
    });
    let heartbeat = ConsumerHeartbeat {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topics: req
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.to_string()).collect()),
        // An empty regex means "no regex" (librdkafka always sends one in v1).
        subscribed_regex: req
            .subscribed_topic_regex
            .as_ref()
            .filter(|r| !r.is_empty())
            .map(|s| s.to_string()),
        owned,
        client_id: ctx.client_id(),
        client_host: ctx.client_host(),
    };
    let metadata = &ctx.broker.metadata;
    // Topics the member may not describe are never assigned (nor their ids revealed), whatever
    // a regex matches.
    let lookup = |name: &str| {
        metadata
            .topic(name)
            .filter(|_| ctx.authorize(Operation::Describe, ResourceType::Topic, name))
            .map(|t| (t.id, i32::try_from(t.partitions.len()).unwrap_or(i32::MAX)))
    };
    match ctx
        .broker
        .groups
        .consumer_heartbeat(heartbeat, &lookup, Now::current())
    {
        Ok(result) => {
            let assignment = result.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(topic_id, partitions)| {
                            TopicPartitions::default()
                                .with_topic_id(topic_id)
                                .with_partitions(partitions.into_iter().collect())
                        })
                        .collect(),
                )
            });
            ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(str_bytes(result.member_id)))
                .with_member_epoch(result.member_epoch)
                .with_heartbeat_interval_ms(result.heartbeat_interval_ms)
                .with_assignment(assignment)
        }
        Err((error, message)) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(message))),
    }
}
