//! OffsetForLeaderEpoch: a single-node broker has exactly one leader epoch, 0.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::RequestContext;
use crate::auth::{Operation, ResourceType};

/// The only leader epoch this broker has.
const LEADER_EPOCH: i32 = 0;

/// Answers OffsetForLeaderEpoch (v2-4).
pub async fn handle(
    ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let metadata = &ctx.broker.metadata;
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            // Describe on the topic, as Kafka asks of clients; without it the topic's existence
            // and size stay hidden.
            let allowed = ctx.authorize(
                Operation::Describe,
                ResourceType::Topic,
                topic.topic.0.as_str(),
            );
            let known = allowed
                .then(|| metadata.topic(topic.topic.0.as_str()))
                .flatten();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let partition = known.as_ref().and_then(|t| {
                        usize::try_from(p.partition)
                            .ok()
                            .and_then(|i| t.partitions.get(i))
                    });
                    let Some(partition) = partition else {
                        let error = if allowed {
                            ResponseError::UnknownTopicOrPartition
                        } else {
                            ResponseError::TopicAuthorizationFailed
                        };
                        return result.with_error_code(error.code());
                    };
                    if p.current_leader_epoch > LEADER_EPOCH {
                        return result.with_error_code(ResponseError::UnknownLeaderEpoch.code());
                    }
                    if p.leader_epoch != LEADER_EPOCH {
                        // An epoch this broker never had: undefined, as Kafka answers.
                        return result;
                    }
                    result
                        .with_leader_epoch(LEADER_EPOCH)
                        .with_end_offset(partition.high_watermark())
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
