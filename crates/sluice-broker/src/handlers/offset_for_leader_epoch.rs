//! OffsetForLeaderEpoch: a single-node broker has exactly one leader epoch, 0.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::RequestContext;
use crate::auth::Operation;

/// The only leader epoch this broker has.
const LEADER_EPOCH: i32 = 0;

/// Answers OffsetForLeaderEpoch (v2-4).
pub async fn handle(
    ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            // Describe on the topic, as Kafka asks of clients; without it the topic's existence
            // and size stay hidden.
            let access = ctx.topic_access(Operation::Describe, topic.topic.0.as_str());
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let partition = match access.partition(p.partition) {
                        Ok(partition) => partition,
                        Err(error) => return result.with_error_code(error.code()),
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
