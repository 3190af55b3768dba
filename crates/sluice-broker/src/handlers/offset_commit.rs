//! OffsetCommit (API key 8, v2-9): validates each partition, writes the offsets to
//! `__consumer_offsets` and answers once they are durable.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::auth::{Operation, ResourceType};
use crate::group::{MemberRef, Now, OffsetToCommit};

/// Handles an OffsetCommit request.
pub async fn handle(ctx: &RequestContext, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let groups = &ctx.broker.groups;
    let max_metadata = groups.config().offset_metadata_max_bytes;
    // Partition-specific refusals first; the rest share the group-level outcome.
    let mut checked: Vec<(usize, i32, Option<ResponseError>)> = Vec::new();
    let mut to_commit = Vec::new();
    let group_denied = ctx.authorize_group(Operation::Read, &req.group_id).err();
    for (t, topic) in req.topics.iter().enumerate() {
        for p in &topic.partitions {
            let metadata = p.committed_metadata.as_deref().unwrap_or_default();
            let refusal = if group_denied.is_some() {
                group_denied
            } else if !ctx.authorize(Operation::Read, ResourceType::Topic, &topic.name) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if ctx
                .broker
                .metadata
                .partition(&topic.name, p.partition_index)
                .is_none()
            {
                Some(ResponseError::UnknownTopicOrPartition)
            } else if metadata.len() > max_metadata {
                Some(ResponseError::OffsetMetadataTooLarge)
            } else {
                to_commit.push(OffsetToCommit {
                    topic: topic.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: metadata.to_owned(),
                });
                None
            };
            checked.push((t, p.partition_index, refusal));
        }
    }
    let instance_id = req.group_instance_id.as_ref().map(|s| s.to_string());
    let who = MemberRef {
        group_id: &req.group_id,
        generation_id: req.generation_id_or_member_epoch,
        member_id: &req.member_id,
        group_instance_id: instance_id.as_deref(),
    };
    let outcome = if to_commit.is_empty() {
        Ok(())
    } else {
        match groups.commit(who, &to_commit, Now::current()) {
            Ok(durable) => durable.wait().await.map_err(|e| {
                tracing::warn!(group = %req.group_id.as_str(), error = %e, "committed offsets not durable");
                ResponseError::CoordinatorNotAvailable
            }),
            Err(e) => Err(e),
        }
    };
    let group_code = outcome.err().map_or(0, |e| e.code());
    let mut topics: Vec<OffsetCommitResponseTopic> = req
        .topics
        .iter()
        .map(|t| OffsetCommitResponseTopic::default().with_name(t.name.clone()))
        .collect();
    for (t, partition, refusal) in checked {
        if let Some(topic) = topics.get_mut(t) {
            topic.partitions.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(partition)
                    .with_error_code(refusal.map_or(group_code, |e| e.code())),
            );
        }
    }
    OffsetCommitResponse::default().with_topics(topics)
}
