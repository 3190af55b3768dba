//! OffsetFetch (API key 9, v1-9): committed offsets of one group (v1-7) or several (v8+);
//! a null topic list (v2+) means every committed partition. With `require_stable` (v7+, what
//! read_committed consumers send) a partition whose offset waits on an open transaction is
//! answered UNSTABLE_OFFSET_COMMIT, and the client retries.

use std::collections::BTreeSet;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::auth::Operation;
use crate::group::model::CommittedOffset;
use crate::group::offsets::FetchedOffsets;
use crate::group::wire::str_bytes;

/// Handles an OffsetFetch request.
pub async fn handle(ctx: &RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let groups = &ctx.broker.groups;
    if ctx.version() >= 8 {
        let results = req
            .groups
            .iter()
            .map(|g| {
                let topics: Option<Vec<(String, Vec<i32>)>> = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                if let Err(e) = ctx.authorize_group(Operation::Describe, &g.group_id) {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id.clone())
                        .with_error_code(e.code());
                }
                let fetched = groups.fetch_offsets(&g.group_id, topics.as_deref());
                let unstable = unstable(ctx, &g.group_id, req.require_stable);
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_topics(multi_group_topics(fetched, &unstable))
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(results);
    }
    let topics: Option<Vec<(String, Vec<i32>)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    if let Err(e) = ctx.authorize_group(Operation::Describe, &req.group_id) {
        return OffsetFetchResponse::default().with_error_code(e.code());
    }
    let fetched = groups.fetch_offsets(&req.group_id, topics.as_deref());
    let unstable = unstable(ctx, &req.group_id, req.require_stable);
    OffsetFetchResponse::default().with_topics(single_group_topics(fetched, &unstable))
}

/// The partitions to answer UNSTABLE_OFFSET_COMMIT for.
fn unstable(ctx: &RequestContext, group_id: &str, require_stable: bool) -> BTreeSet<(String, i32)> {
    if require_stable {
        ctx.broker.groups.pending_txn_partitions(group_id)
    } else {
        BTreeSet::new()
    }
}

/// The partition error: UNSTABLE_OFFSET_COMMIT for partitions in `unstable`.
fn error_code(unstable: &BTreeSet<(String, i32)>, topic: &str, partition: i32) -> i16 {
    if unstable.contains(&(topic.to_owned(), partition)) {
        ResponseError::UnstableOffsetCommit.code()
    } else {
        0
    }
}

/// Offset, leader epoch and metadata as reported; -1 and "" when nothing is committed.
fn reported(committed: Option<CommittedOffset>) -> (i64, i32, String) {
    committed.map_or((-1, -1, String::new()), |c| {
        (c.offset, c.leader_epoch, c.metadata)
    })
}

fn single_group_topics(
    fetched: FetchedOffsets,
    unstable: &BTreeSet<(String, i32)>,
) -> Vec<OffsetFetchResponseTopic> {
    fetched
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, committed)| {
                    let (offset, epoch, metadata) = reported(committed);
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(index)
                        .with_error_code(error_code(unstable, &topic, index))
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(Some(str_bytes(metadata)))
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partitions(partitions)
        })
        .collect()
}

fn multi_group_topics(
    fetched: FetchedOffsets,
    unstable: &BTreeSet<(String, i32)>,
) -> Vec<OffsetFetchResponseTopics> {
    fetched
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, committed)| {
                    let (offset, epoch, metadata) = reported(committed);
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(index)
                        .with_error_code(error_code(unstable, &topic, index))
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(Some(str_bytes(metadata)))
                })
                .collect();
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partitions(partitions)
        })
        .collect()
}
