//! ListOffsets: earliest, latest, max-timestamp and by-timestamp offset lookups.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::RequestContext;
use crate::auth::Operation;
use crate::partition::{log_error_code, Partition};

/// `timestamp` value asking for the log end offset.
const LATEST: i64 = -1;
/// `timestamp` value asking for the log start offset.
const EARLIEST: i64 = -2;
/// `timestamp` value asking for the record with the largest timestamp (v7+).
const MAX_TIMESTAMP: i64 = -3;
/// `timestamp` value asking for the earliest offset in local storage (v8+); no tiering here.
const EARLIEST_LOCAL: i64 = -4;

/// `isolation_level` value of READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

/// Resolves one partition's query to `(offset, timestamp)`. A `read_committed` query sees
/// the log up to the last stable offset only.
fn lookup(
    partition: &Partition,
    timestamp: i64,
    version: i16,
    read_committed: bool,
) -> Result<(i64, i64), ResponseError> {
    partition.with_log(|log| {
        let end = if read_committed {
            log.last_stable_offset()
        } else {
            log.high_watermark()
        };
        let below_end =
            |found: Option<(i64, i64)>| found.filter(|(o, _)| *o < end).unwrap_or((-1, -1));
        match timestamp {
            LATEST => Ok((end, -1)),
            EARLIEST | EARLIEST_LOCAL => Ok((log.log_start_offset(), -1)),
            MAX_TIMESTAMP if version >= 7 => Ok(below_end(log.max_timestamp())),
            ts if ts >= 0 => match log.offset_for_timestamp(ts) {
                Ok(found) => Ok(below_end(found)),
                Err(e) => Err(log_error_code(&e)),
            },
            _ => Err(ResponseError::InvalidRequest),
        }
    })
}

/// Answers ListOffsets (v1-8).
pub async fn handle(ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let version = ctx.version();
    let read_committed = req.isolation_level == READ_COMMITTED;
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let access = ctx.topic_access(Operation::Describe, topic.name.0.as_str());
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let partition = match access.partition(p.partition_index) {
                        Ok(partition) => partition,
                        Err(error) => return response.with_error_code(error.code()),
                    };
                    match lookup(partition, p.timestamp, version, read_committed) {
                        Ok((offset, timestamp)) => {
                            let response = response.with_offset(offset).with_timestamp(timestamp);
                            // The field exists from v4; earlier encoders refuse a non-default.
                            if version >= 4 {
                                response.with_leader_epoch(0)
                            } else {
                                response
                            }
                        }
                        Err(e) => response.with_error_code(e.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
