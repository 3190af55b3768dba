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
use crate::state_log::Durable;

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
        durable_commit(
            &req.group_id,
            groups.commit(who, &to_commit, Now::current()),
        )
        .await
    };
    let group_code = outcome.err().map_or(0, |e| e.code());
    let codes = per_topic_codes(req.topics.len(), checked, group_code);
    let topics = req
        .topics
        .iter()
        .zip(codes)
        .map(|(t, codes)| {
            let partitions = codes
                .into_iter()
                .map(|(p, code)| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Waits until a commit the group coordinator accepted is durable; a failed fsync is
/// COORDINATOR_NOT_AVAILABLE, which clients retry.
pub(super) async fn durable_commit(
    group_id: &str,
    accepted: Result<Durable, ResponseError>,
) -> Result<(), ResponseError> {
    accepted?.wait().await.map_err(|e| {
        tracing::warn!(group = group_id, error = %e, "committed offsets not durable");
        ResponseError::CoordinatorNotAvailable
    })
}

/// Each topic's `(partition, error code)` in request order: a partition's own refusal, or
/// `group_code` (the outcome of the commit as a whole).
pub(super) fn per_topic_codes(
    topics: usize,
    checked: Vec<Vetted>,
    group_code: i16,
) -> Vec<Vec<(i32, i16)>> {
    let mut codes = vec![Vec::new(); topics];
    for (t, partition, refusal) in checked {
        if let Some(topic) = codes.get_mut(t) {
            topic.push((partition, refusal.map_or(group_code, |e| e.code())));
        }
    }
    codes
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
