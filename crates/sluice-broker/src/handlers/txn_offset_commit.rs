//! TxnOffsetCommit: a transactional producer commits a group's offsets inside its transaction
//! (`send_offsets_to_transaction`). They become the group's offsets only if the transaction
//! commits; KIP-447 group metadata (generation, member id) fences zombie consumers.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::offset_commit::{durable_commit, per_topic_codes, vet, Proposed};
use super::{transactions, RequestContext};
use crate::auth::Operation;
use crate::group::{MemberRef, Now, OFFSETS_TOPIC};

/// Answers TxnOffsetCommit (v0-4).
pub async fn handle(ctx: &RequestContext, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let broker = &ctx.broker;
    let id = req.transactional_id.as_str();
    let group_denied = transactions::authorize_writer(ctx, id)
        .and_then(|()| ctx.authorize_group(Operation::Read, &req.group_id))
        .err();
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
        generation_id: req.generation_id,
        member_id: &req.member_id,
        group_instance_id: instance_id.as_deref(),
    };
    let producer = (req.producer_id.0, req.producer_epoch);
    let outcome = if to_commit.is_empty() {
        Ok(())
    } else {
        // The group's partition must be in the open transaction (AddOffsetsToTxn), or no
        // marker would ever settle these offsets.
        let offsets_partition = broker.groups.partition_for(&req.group_id);
        let accepted = broker
            .txns
            .verify(id, producer.0, producer.1, OFFSETS_TOPIC, offsets_partition)
            .and_then(|()| {
                broker
                    .groups
                    .txn_commit(who, producer, &to_commit, Now::current())
            });
        durable_commit(&req.group_id, accepted).await
    };
    let group_code = outcome
        .err()
        .map_or(0, |e| transactions::for_version(e, ctx.version(), 3).code());
    let codes = per_topic_codes(req.topics.len(), checked, group_code);
    let topics = req
        .topics
        .iter()
        .zip(codes)
        .map(|(t, codes)| {
            let partitions = codes
                .into_iter()
                .map(|(p, code)| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
