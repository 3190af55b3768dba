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
    let group_denied = ctx.authorize_group(Operation::Read, &req.group_id).err();
    let (checked, to_commit) = vet(
        ctx,
        group_denied,
        req.topics.iter().enumerate().flat_map(|(t, topic)| {
            topic.partitions.iter().map(move |p| Proposed {
                topic_index: t,
                topic: topic.name.as_str(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_deref(),
            })
        }),
    );
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

/// One partition's offset as a commit request carries it.
pub(super) struct Proposed<'a> {
    /// Position of its topic in the request.
    pub(super) topic_index: usize,
    /// Topic name.
    pub(super) topic: &'a str,
    /// Partition number.
    pub(super) partition: i32,
    /// Offset to commit.
    pub(super) offset: i64,
    /// Leader epoch, or -1.
    pub(super) leader_epoch: i32,
    /// Client metadata.
    pub(super) metadata: Option<&'a str>,
}

/// A partition of a commit request: `(topic index, partition, refusal)`.
pub(super) type Vetted = (usize, i32, Option<ResponseError>);

/// The checks OffsetCommit and TxnOffsetCommit make per partition before the group's: the
/// group and topic ACLs, that the partition exists, the metadata size. Returns
/// `(topic index, partition, refusal)` for every partition and the offsets that passed.
pub(super) fn vet<'a>(
    ctx: &RequestContext,
    group_denied: Option<ResponseError>,
    proposed: impl Iterator<Item = Proposed<'a>>,
) -> (Vec<Vetted>, Vec<OffsetToCommit>) {
    let max_metadata = ctx.broker.groups.config().offset_metadata_max_bytes;
    let mut checked = Vec::new();
    let mut to_commit = Vec::new();
    for p in proposed {
        let metadata = p.metadata.unwrap_or_default();
        let refusal = if group_denied.is_some() {
            group_denied
        } else if !ctx.authorize(Operation::Read, ResourceType::Topic, p.topic) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else if ctx
            .broker
            .metadata
            .partition(p.topic, p.partition)
            .is_none()
        {
            Some(ResponseError::UnknownTopicOrPartition)
        } else if metadata.len() > max_metadata {
            Some(ResponseError::OffsetMetadataTooLarge)
        } else {
            to_commit.push(OffsetToCommit {
                topic: p.topic.to_owned(),
                partition: p.partition,
                offset: p.offset,
                leader_epoch: p.leader_epoch,
                metadata: metadata.to_owned(),
            });
            None
        };
        checked.push((p.topic_index, p.partition, refusal));
    }
    (checked, to_commit)
}
