//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete and retention.

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError;

use super::membership::MemberRef;
use super::model::{CommittedOffset, Group, GroupState};
use super::records::{OffsetCommitValue, OffsetsKey};
use super::{Coordinator, Now};
use crate::state_log::{Durable, KeyValue};

/// One partition's offset in an OffsetCommit.
#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// The offset to resume from.
    pub offset: i64,
    /// Leader epoch, or -1.
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: String,
}

impl OffsetToCommit {
    /// The `__consumer_offsets` record committing this offset for `group`.
    pub(super) fn record(&self, group: &str, now: Now) -> KeyValue {
        let value = OffsetCommitValue {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata.clone(),
            commit_timestamp: now.wall_ms,
        };
        (
            offset_key(group, &self.topic, self.partition),
            Some(value.encode()),
        )
    }

    /// This offset as the group holds it once committed.
    pub(super) fn committed(&self, now: Now) -> CommittedOffset {
        CommittedOffset {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata.clone(),
            commit_timestamp_ms: now.wall_ms,
        }
    }
}

/// A group's committed offsets for some topics: `(topic, [(partition, offset if committed)])`.
pub type FetchedOffsets = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

/// OffsetDelete's outcome: `(topic, [(partition, result)])`.
pub type DeletedOffsets = Vec<(String, Vec<(i32, Result<(), ResponseError>)>)>;

fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    OffsetsKey::OffsetCommit {
        group: group.to_owned(),
        topic: topic.to_owned(),
        partition,
    }
    .encode()
}

/// Tombstones for every offset of `group` in `keys`, plus the group record if `with_group`.
fn tombstones<'a>(
    group: &str,
    keys: impl Iterator<Item = &'a (String, i32)>,
    with_group: bool,
) -> Vec<KeyValue> {
    let mut records: Vec<KeyValue> = keys
        .map(|(t, p)| (offset_key(group, t, *p), None))
        .collect();
    if with_group {
        records.push((
            OffsetsKey::GroupMetadata {
                group: group.to_owned(),
            }
            .encode(),
            None,
        ));
    }
    records
}

impl Coordinator {
    /// OffsetCommit: validates the committer (a current member of the current generation, or
    /// anyone with generation -1 while the group is empty) and writes the offsets. Await the
    /// returned [`Durable`] before acknowledging.
    pub fn commit(
        &self,
        who: MemberRef<'_>,
        offsets: &[OffsetToCommit],
        now: Now,
    ) -> Result<Durable, ResponseError> {
        if who.group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let mut groups = self.groups.lock();
        let simple =
            who.generation_id < 0 && who.member_id.is_empty() && who.group_instance_id.is_none();
        if !groups.contains_key(who.group_id) {
            if !simple {
                return Err(ResponseError::IllegalGeneration);
            }
            groups.insert(
                who.group_id.to_owned(),
                Group::new(who.group_id, now.wall_ms),
            );
        }
        let Some(group) = groups.get_mut(who.group_id) else {
            return Err(ResponseError::CoordinatorNotAvailable);
        };
        match group.state {
            GroupState::Dead => return Err(ResponseError::CoordinatorNotAvailable),
            GroupState::Empty if simple => {}
            _ if group.has_consumer_members() => {
                let member = group
                    .consumer
                    .as_mut()
                    .and_then(|c| c.members.get_mut(who.member_id))
                    .ok_or(ResponseError::UnknownMemberId)?;
                if who.generation_id != member.epoch && who.generation_id != member.previous_epoch {
                    return Err(ResponseError::StaleMemberEpoch);
                }
                member.last_heartbeat = now.instant;
            }
            _ => {
                if let Some(iid) = who.group_instance_id {
                    if group
                        .static_members
                        .get(iid)
                        .is_some_and(|m| m != who.member_id)
                    {
                        return Err(ResponseError::FencedInstanceId);
                    }
                }
                if !group.members.contains_key(who.member_id) {
                    return Err(ResponseError::UnknownMemberId);
                }
                if who.generation_id != group.generation {
                    return Err(ResponseError::IllegalGeneration);
                }
                if group.state == GroupState::CompletingRebalance {
                    return Err(ResponseError::RebalanceInProgress);
                }
                if let Some(member) = group.members.get_mut(who.member_id) {
                    member.last_heartbeat = now.instant;
                }
            }
        }
        let records: Vec<KeyValue> = offsets
            .iter()
            .map(|o| o.record(who.group_id, now))
            .collect();
        let durable = self.write(who.group_id, &records, now)?;
        for o in offsets {
            group
                .offsets
                .insert((o.topic.clone(), o.partition), o.committed(now));
        }
        Ok(durable)
    }

    /// OffsetFetch: the committed offsets of `topics` (`None` = every committed partition).
    /// An unknown group has no offsets.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> FetchedOffsets {
        let groups = self.groups.lock();
        let group = groups.get(group_id);
        match topics {
            Some(topics) => topics
                .iter()
                .map(|(topic, partitions)| {
                    let found = partitions
                        .iter()
                        .map(|p| {
                            let committed =
                                group.and_then(|g| g.offsets.get(&(topic.clone(), *p)).cloned());
                            (*p, committed)
                        })
                        .collect();
                    (topic.clone(), found)
                })
                .collect(),
            None => {
                let mut out: FetchedOffsets = Vec::new();
                for ((topic, partition), committed) in group.iter().flat_map(|g| g.offsets.iter()) {
                    match out.last_mut() {
                        Some((t, parts)) if t == topic => {
                            parts.push((*partition, Some(committed.clone())))
                        }
                        _ => out.push((topic.clone(), vec![(*partition, Some(committed.clone()))])),
                    }
                }
                out
            }
        }
    }

    /// OffsetDelete: removes committed offsets of topics the group is not subscribed to.
    /// Returns one result per requested partition, or a group-level error.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
        now: Now,
    ) -> Result<DeletedOffsets, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(ResponseError::GroupIdNotFound);
        };
        if group.state == GroupState::Dead {
            return Err(ResponseError::GroupIdNotFound);
        }
        let subscribed = if group.state == GroupState::Empty {
            BTreeSet::new()
        } else if group.protocol_type.as_deref() == Some("consumer") {
            subscribed_topics(group)
        } else {
            return Err(ResponseError::NonEmptyGroup);
        };
        let mut deleted = Vec::new();
        let results = topics
            .iter()
            .map(|(topic, partitions)| {
                let per_partition = partitions
                    .iter()
                    .map(|p| {
                        if subscribed.contains(topic) {
                            return (*p, Err(ResponseError::GroupSubscribedToTopic));
                        }
                        if group.offsets.contains_key(&(topic.clone(), *p)) {
                            deleted.push((topic.clone(), *p));
                        }
                        (*p, Ok(()))
                    })
                    .collect();
                (topic.clone(), per_partition)
            })
            .collect();
        let records = tombstones(group_id, deleted.iter(), false);
        // Tombstones need not be awaited: losing one only resurrects an offset the client
        // asked to delete, and the next expiry pass removes it again.
        let _ = self.write(group_id, &records, now)?;
        for key in &deleted {
            group.offsets.remove(key);
        }
        Ok(results)
    }

    /// Applies `offsets.retention.minutes`: offsets of a group that has been empty that long
    /// (or, for groups that only store offsets, offsets not committed that long) are deleted,
    /// and empty groups without offsets are removed.
    pub fn expire_offsets(&self, now: Now) {
        let retention_ms =
            i64::try_from(self.config.offsets_retention.as_millis()).unwrap_or(i64::MAX);
        let mut groups = self.groups.lock();
        let mut dead = Vec::new();
        for group in groups.values_mut() {
            if group.state != GroupState::Empty {
                continue;
            }
            let expired: Vec<(String, i32)> = if group.protocol_type.is_some() {
                if now.wall_ms.saturating_sub(group.state_since_ms) >= retention_ms {
                    group.offsets.keys().cloned().collect()
                } else {
                    Vec::new()
                }
            } else {
                group
                    .offsets
                    .iter()
                    .filter(|(_, o)| {
                        now.wall_ms.saturating_sub(o.commit_timestamp_ms) >= retention_ms
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            };
            let becomes_dead = group.offsets.len() == expired.len()
                && group.pending.is_empty()
                && group.pending_txn_offsets.is_empty();
            let records = tombstones(&group.id, expired.iter(), becomes_dead);
            if self.write(&group.id, &records, now).is_err() {
                continue;
            }
            if !expired.is_empty() {
                tracing::info!(group = %group.id, offsets = expired.len(), "expired committed offsets");
            }
            for key in &expired {
                group.offsets.remove(key);
            }
            if becomes_dead {
                group.transition(GroupState::Dead, now.wall_ms);
                dead.push(group.id.clone());
            }
        }
        for id in dead {
            groups.remove(&id);
        }
    }
}

/// Topics the members of a `consumer` group subscribe to (from their protocol metadata).
fn subscribed_topics(group: &Group) -> BTreeSet<String> {
    let protocol = group.protocol.as_deref().unwrap_or_default();
    let mut topics = BTreeSet::new();
    for member in group.members.values() {
        if let Some(sub) = decode_subscription(&member.metadata_for(protocol)) {
            topics.extend(sub.topics.iter().map(|t| t.to_string()));
        }
    }
    topics
}

/// Decodes a consumer protocol subscription (version prefix, then the versioned body).
pub fn decode_subscription(metadata: &Bytes) -> Option<ConsumerProtocolSubscription> {
    let mut buf = metadata.clone();
    if buf.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = buf.split_to(2);
    // Newer subscription versions than the codec knows are read as its newest one.
    let version = version.clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut buf, version).ok()
}
