//! OffsetDelete (API key 47, v0): deletes a group's committed offsets of topics it no longer
//! subscribes to.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::auth::Operation;
use crate::group::wire::{code, str_bytes};
use crate::group::Now;

/// Handles an OffsetDelete request.
pub async fn handle(ctx: &RequestContext, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    if let Err(e) = ctx.authorize_group(Operation::Delete, &req.group_id) {
        return OffsetDeleteResponse::default().with_error_code(e.code());
    }
    let mut unknown = Vec::new();
    let mut known: Vec<(String, Vec<i32>)> = Vec::new();
    for topic in &req.topics {
        let mut partitions = Vec::new();
        for p in &topic.partitions {
            if ctx
                .broker
                .metadata
                .partition(&topic.name, p.partition_index)
                .is_some()
            {
                partitions.push(p.partition_index);
            } else {
                unknown.push((topic.name.to_string(), p.partition_index));
            }
        }
        known.push((topic.name.to_string(), partitions));
    }
    let results = match ctx
        .broker
        .groups
        .delete_offsets(&req.group_id, &known, Now::current())
    {
        Ok(results) => results,
        Err(e) => return OffsetDeleteResponse::default().with_error_code(e.code()),
    };
    let topics = results
        .into_iter()
        .map(|(topic, partitions)| {
            let mut partitions: Vec<OffsetDeleteResponsePartition> = partitions
                .into_iter()
                .map(|(index, result)| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(index)
                        .with_error_code(code(&result))
                })
                .collect();
            partitions.extend(
                unknown
                    .iter()
                    .filter(|(t, _)| *t == topic)
                    .map(|(_, index)| {
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(*index)
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    }),
            );
            OffsetDeleteResponseTopic::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
