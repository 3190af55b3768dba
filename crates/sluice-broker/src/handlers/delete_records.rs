//! DeleteRecords: move a partition's log start offset forward.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use tracing::info;

use super::RequestContext;
use crate::auth::{Operation, ResourceType};
use crate::partition::{log_error_code, Partition};

/// `offset` value meaning "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// Deletes below `offset` in one partition; returns the new low watermark.
fn delete_before(partition: &Partition, offset: i64) -> Result<i64, ResponseError> {
    partition.with_log(|log| {
        let hw = log.high_watermark();
        let target = if offset == HIGH_WATERMARK { hw } else { offset };
        if target < 0 || target > hw {
            return Err(ResponseError::OffsetOutOfRange);
        }
        log.delete_records_before(target)
            .map_err(|e| log_error_code(&e))
    })
}

/// Answers DeleteRecords (v0-2).
pub async fn handle(ctx: &RequestContext, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let metadata = &ctx.broker.metadata;
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let allowed = ctx.authorize(Operation::Delete, ResourceType::Topic, topic.name.0.as_str());
            let known = allowed.then(|| metadata.topic(topic.name.0.as_str())).flatten();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    let partition = known.as_ref().and_then(|t| {
                        usize::try_from(p.partition_index).ok().and_then(|i| t.partitions.get(i))
                    });
                    let Some(partition) = partition else {
                        let error = if allowed {
                            ResponseError::UnknownTopicOrPartition
                        } else {
                            ResponseError::TopicAuthorizationFailed
                        };
                        return result.with_error_code(error.code());
                    };
                    match delete_before(partition, p.offset) {
                        Ok(low) => {
                            info!(topic = %partition.topic, partition = p.partition_index, low_watermark = low, "records deleted");
                            result.with_low_watermark(low)
                        }
                        Err(e) => result.with_error_code(e.code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
