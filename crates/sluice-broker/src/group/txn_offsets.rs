//! Offsets committed inside transactions (TxnOffsetCommit, KIP-98 / KIP-447).
//!
//! A transactional commit is written to `__consumer_offsets` as a transactional batch under the
//! producer's id and epoch (a fenced epoch is refused by the log) and held per producer in
//! [`Group::pending_txn_offsets`]. The transaction coordinator settles it by writing a marker
//! to the group's partition through [`Coordinator::complete_txn`]: a COMMIT makes the offsets
//! the group's committed offsets, an ABORT drops them. Replay after a restart reaches the same
//! state from the same batches and markers.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use sluice_log::{ControlType, TxnMarker};

use super::membership::MemberRef;
use super::model::{Group, GroupState};
use super::offsets::OffsetToCommit;
use super::{Coordinator, Now};
use crate::state_log::{Durable, KeyValue, TxnProducer};

impl Group {
    /// Applies the end of `producer_id`'s transaction to its pending offsets.
    pub fn settle_txn_offsets(&mut self, producer_id: i64, control: ControlType) {
        let Some(pending) = self.pending_txn_offsets.remove(&producer_id) else {
            return;
        };
        if control == ControlType::Commit {
            self.offsets.extend(pending);
        }
    }
}

impl Coordinator {
    /// TxnOffsetCommit: checks the committer as Kafka does for transactional commits (a
    /// member id and generation are optional, KIP-447) and writes the offsets under
    /// `producer`'s transaction. Await the returned [`Durable`] before acknowledging.
    pub fn txn_commit(
        &self,
        who: MemberRef<'_>,
        producer: TxnProducer,
        offsets: &[OffsetToCommit],
        now: Now,
    ) -> Result<Durable, ResponseError> {
        if who.group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let mut groups = self.groups.lock();
        let group = groups
            .entry(who.group_id.to_owned())
            .or_insert_with(|| Group::new(who.group_id, now.wall_ms));
        validate_txn_committer(group, &who)?;
        let records: Vec<KeyValue> = offsets
            .iter()
            .map(|o| o.record(who.group_id, now))
            .collect();
        let durable = self.write_as(who.group_id, &records, Some(producer), now)?;
        let pending = group.pending_txn_offsets.entry(producer.0).or_default();
        for o in offsets {
            pending.insert((o.topic.clone(), o.partition), o.committed(now));
        }
        Ok(durable)
    }

    /// Ends `marker.producer_id`'s transaction in the `__consumer_offsets` partitions it
    /// touched: writes the marker to each (under the groups lock, so log order matches memory)
    /// and settles the pending offsets of the groups stored there.
    pub fn complete_txn(
        &self,
        partitions: &[i32],
        marker: &TxnMarker,
        now: Now,
    ) -> Result<Vec<Durable>, crate::state_log::StateLogError> {
        let mut groups = self.groups.lock();
        let mut durables = Vec::with_capacity(partitions.len());
        for &partition in partitions {
            durables.push(self.log.append_marker(partition, marker, now.wall_ms)?);
            for group in groups.values_mut() {
                if self.partition_for(&group.id) == partition {
                    group.settle_txn_offsets(marker.producer_id, marker.control);
                }
            }
        }
        Ok(durables)
    }

    /// The partitions for which `group_id` has an offset waiting on an open transaction.
    pub fn pending_txn_partitions(&self, group_id: &str) -> BTreeSet<(String, i32)> {
        self.groups
            .lock()
            .get(group_id)
            .map(|g| {
                g.pending_txn_offsets
                    .values()
                    .flat_map(|offsets| offsets.keys().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Kafka's checks for a transactional offset commit: a dead group is unavailable, a static
/// member must not be fenced, a given member id must exist, and a given generation (or KIP-848
/// member epoch) must be current. Unlike OffsetCommit, a rebalance in progress is no obstacle.
fn validate_txn_committer(group: &Group, who: &MemberRef<'_>) -> Result<(), ResponseError> {
    if group.state == GroupState::Dead {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    if let Some(consumer) = group
        .consumer
        .as_ref()
        .filter(|_| group.has_consumer_members())
    {
        if who.member_id.is_empty() {
            return Ok(());
        }
        let member = consumer
            .members
            .get(who.member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if who.generation_id >= 0 && who.generation_id != member.epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        return Ok(());
    }
    if let Some(iid) = who.group_instance_id {
        if group
            .static_members
            .get(iid)
            .is_some_and(|m| m != who.member_id)
        {
            return Err(ResponseError::FencedInstanceId);
        }
    }
    if !who.member_id.is_empty() && !group.members.contains_key(who.member_id) {
        return Err(ResponseError::UnknownMemberId);
    }
    if who.generation_id >= 0 && who.generation_id != group.generation {
        return Err(ResponseError::IllegalGeneration);
    }
    Ok(())
}
