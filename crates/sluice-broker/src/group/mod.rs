//! Consumer group coordinator (classic protocol) with state in `__consumer_offsets`.
//!
//! One mutex guards every group; operations hold it only for in-memory bookkeeping and the
//! synchronous log `write` of their records (so the log order equals the coordinator's order).
//! JoinGroup/SyncGroup responses that must wait for a rebalance are parked as tokio oneshot
//! receivers and awaited by the handlers after the lock is released; fsyncs are awaited the same
//! way ([`crate::state_log::Durable`]). Time-driven transitions (join/sync phase deadlines, the initial
//! rebalance delay, session expiry, offset retention) happen in [`Coordinator::tick`], run
//! by the task [`GroupCoordinator::start_maintenance`] spawns.
//!
//! Layout: [`model`] (a group and its members), [`membership`] (join, sync, heartbeat, leave and
//! the rebalance state machine), [`offsets`] (commit, fetch, delete, expiry), [`admin`]
//! (describe, list, delete groups), [`consumer`] (KIP-848 ConsumerGroupHeartbeat groups),
//! [`records`] (Kafka's `__consumer_offsets` formats), [`crate::state_log`] (where records are written and
//! replayed from), [`wire`] (protocol conversions shared by the group handlers).
//!
//! State is reloaded synchronously by [`GroupCoordinator::load`] before the broker listens, so
//! there is no window in which a request could see a partially loaded group.

pub mod admin;
pub mod consumer;
pub mod membership;
pub mod model;
pub mod offsets;
pub mod records;
pub mod txn_offsets;

#[cfg(test)]
mod tests;
pub mod wire;

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use crate::durability::Flusher;
use crate::meta::Metadata;
use crate::state_log::{
    Durable, KeyValue, LogEntry, MemoryStateLog, StateLog, StateLogError, TopicStateLog,
    TxnProducer,
};
use model::Group;
use records::{GroupMetadataValue, OffsetCommitValue, OffsetsKey};

pub use crate::config::GroupConfig;
pub use membership::{JoinParams, MemberRef};
pub use model::GroupState;
pub use offsets::OffsetToCommit;

/// The coordinator's view of time: a monotonic instant for deadlines and wall-clock
/// milliseconds for what is persisted. Passed in so the state machine is testable.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time, for timeouts.
    pub instant: Instant,
    /// Milliseconds since the Unix epoch, for persisted timestamps.
    pub wall_ms: i64,
}

impl Now {
    /// The current time.
    pub fn current() -> Self {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Now {
            instant: Instant::now(),
            wall_ms,
        }
    }

    /// This time plus `d` (for tests and deadlines).
    pub fn after(self, d: Duration) -> Self {
        Now {
            instant: self.instant + d,
            wall_ms: self
                .wall_ms
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

/// A response that is either ready or parked until a rebalance completes.
#[derive(Debug)]
pub enum Pending<T> {
    /// Answer now.
    Ready(T),
    /// Answer when the coordinator completes the phase.
    Parked(oneshot::Receiver<T>),
}

impl<T> Pending<T> {
    /// Waits for the answer; `dropped` is used if the coordinator discarded the parked request
    /// (the member was replaced or the group deleted).
    pub async fn resolve(self, dropped: T) -> T {
        match self {
            Pending::Ready(v) => v,
            Pending::Parked(rx) => rx.await.unwrap_or(dropped),
        }
    }
}

/// One member as listed to the leader in a JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`, for static members.
    pub group_instance_id: Option<String>,
    /// The member's metadata for the selected protocol.
    pub metadata: Bytes,
}

/// The outcome of a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// Kafka error code (0 = none).
    pub error: i16,
    /// The generation the member joined.
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol_name: Option<String>,
    /// Leader member id.
    pub leader: String,
    /// The member's id (also set with MEMBER_ID_REQUIRED).
    pub member_id: String,
    /// All members with their metadata (leader only).
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    /// A failed join.
    pub fn error(error: ResponseError, member_id: &str) -> Self {
        JoinResult {
            error: error.code(),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

/// What a successful SyncGroup returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncAssignment {
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol_name: Option<String>,
    /// The member's assignment.
    pub assignment: Bytes,
}

/// The outcome of a SyncGroup.
pub type SyncResult = Result<SyncAssignment, ResponseError>;

/// Owns every consumer group's membership and committed offsets.
#[derive(Debug, Clone)]
pub struct GroupCoordinator {
    inner: Arc<Coordinator>,
}

/// The shared state behind [`GroupCoordinator`].
#[derive(Debug)]
pub struct Coordinator {
    config: GroupConfig,
    log: Box<dyn StateLog>,
    groups: parking_lot::Mutex<HashMap<String, Group>>,
    last_expiry: parking_lot::Mutex<Option<Instant>>,
}

impl Deref for GroupCoordinator {
    type Target = Coordinator;

    fn deref(&self) -> &Coordinator {
        &self.inner
    }
}

impl Default for GroupCoordinator {
    /// A coordinator that keeps `__consumer_offsets` in memory (tests, ephemeral brokers).
    fn default() -> Self {
        let config = GroupConfig::default();
        let log = MemoryStateLog::new(config.offsets_topic_partitions);
        GroupCoordinator::new(Box::new(log), config)
    }
}

impl GroupCoordinator {
    /// Opens (creating if needed) `__consumer_offsets` in `metadata` and reloads every group
    /// from it. Call before the broker accepts connections.
    pub fn load(
        metadata: &Metadata,
        flusher: Flusher,
        config: &GroupConfig,
    ) -> Result<Self, StateLogError> {
        let log = TopicStateLog::open(
            metadata,
            flusher,
            OFFSETS_TOPIC,
            config.offsets_topic_partitions,
            config.offsets_topic_segment_bytes,
        )?;
        Self::with_log(Box::new(log), config.clone(), Now::current())
    }

    /// A coordinator over `log`, reloading the groups stored in it.
    pub fn with_log(
        log: Box<dyn StateLog>,
        config: GroupConfig,
        now: Now,
    ) -> Result<Self, StateLogError> {
        let coordinator = GroupCoordinator::new(log, config);
        coordinator.replay(now)?;
        Ok(coordinator)
    }

    fn new(log: Box<dyn StateLog>, config: GroupConfig) -> Self {
        GroupCoordinator {
            inner: Arc::new(Coordinator {
                config,
                log,
                groups: parking_lot::Mutex::new(HashMap::new()),
                last_expiry: parking_lot::Mutex::new(None),
            }),
        }
    }

    /// Spawns the task that drives deadlines, session expiry and offset retention until
    /// `shutdown` turns true.
    pub fn start_maintenance(
        &self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let coordinator = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(coordinator.config.tick_interval);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => coordinator.tick(Now::current()),
                    changed = shutdown.changed() => {
                        if changed.is_err() || *shutdown.borrow() {
                            break;
                        }
                    }
                }
            }
            coordinator.release_parked();
        })
    }
}

impl Coordinator {
    /// The coordinator's settings.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The `__consumer_offsets` partition holding `group_id`.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        crate::state_log::format::partition_for(group_id, self.log.partitions())
    }

    /// Answers every parked JoinGroup/SyncGroup with NOT_COORDINATOR (at shutdown), so
    /// connections can finish and clients look for the restarted coordinator.
    pub fn release_parked(&self) {
        let mut groups = self.groups.lock();
        for group in groups.values_mut() {
            for member in group.members.values_mut() {
                if let Some(tx) = member.awaiting_join.take() {
                    let _ = tx.send(JoinResult::error(
                        ResponseError::NotCoordinator,
                        &member.member_id,
                    ));
                }
                if let Some(tx) = member.awaiting_sync.take() {
                    let _ = tx.send(Err(ResponseError::NotCoordinator));
                }
            }
        }
    }

    /// Runs every time-driven transition due at `now`.
    pub fn tick(&self, now: Now) {
        {
            let mut groups = self.groups.lock();
            for group in groups.values_mut() {
                self.check_deadlines(group, now);
                self.check_consumer_deadlines(group, now);
            }
        }
        let due = {
            let mut last = self.last_expiry.lock();
            let due = last.is_none_or(|t| {
                now.instant.saturating_duration_since(t)
                    >= self.config.offsets_retention_check_interval
            });
            if due {
                *last = Some(now.instant);
            }
            due
        };
        if due {
            self.expire_offsets(now);
        }
    }

    /// Writes `records` for `group_id` (no fsync). Storage failures are logged and reported as
    /// COORDINATOR_NOT_AVAILABLE, which clients retry.
    fn write(
        &self,
        group_id: &str,
        records: &[KeyValue],
        now: Now,
    ) -> Result<Durable, ResponseError> {
        self.write_as(group_id, records, None, now)
    }

    /// [`Self::write`], transactionally for `producer` when given (a stale epoch is
    /// INVALID_PRODUCER_EPOCH).
    fn write_as(
        &self,
        group_id: &str,
        records: &[KeyValue],
        producer: Option<TxnProducer>,
        now: Now,
    ) -> Result<Durable, ResponseError> {
        if records.is_empty() {
            return Ok(Durable::done());
        }
        self.log
            .append(self.partition_for(group_id), records, producer, now.wall_ms)
            .map_err(|e| {
                if e.is_fenced() {
                    return ResponseError::InvalidProducerEpoch;
                }
                tracing::error!(group = group_id, error = %e, "cannot write group state to __consumer_offsets");
                ResponseError::CoordinatorNotAvailable
            })
    }

    /// Persists the group's current membership (best effort: a failure is logged, and the
    /// next write of the group repairs it).
    fn persist_group(&self, group: &Group, now: Now) -> Durable {
        let key = OffsetsKey::GroupMetadata {
            group: group.id.clone(),
        };
        let record = (key.encode(), Some(group.metadata_value().encode()));
        self.write(&group.id, &[record], now)
            .unwrap_or_else(|_| Durable::done())
    }

    /// Rebuilds all groups from the offsets log.
    fn replay(&self, now: Now) -> Result<(), StateLogError> {
        let mut groups = self.groups.lock();
        let mut skipped = 0usize;
        for partition in 0..self.log.partitions() {
            self.log.replay(partition, &mut |entry| match entry {
                LogEntry::Record {
                    key,
                    value,
                    producer_id,
                } => {
                    if apply_record(&mut groups, &key, value.as_deref(), producer_id, now).is_err()
                    {
                        skipped += 1;
                    }
                }
                LogEntry::Marker {
                    producer_id,
                    control,
                } => {
                    for group in groups.values_mut() {
                        group.settle_txn_offsets(producer_id, control);
                    }
                }
            })?;
        }
        if skipped > 0 {
            tracing::warn!(skipped, "ignored undecodable records in __consumer_offsets");
        }
        // Offsets-only groups whose offsets were all deleted leave nothing behind.
        groups.retain(|_, g| {
            !g.members.is_empty()
                || !g.offsets.is_empty()
                || !g.pending_txn_offsets.is_empty()
                || g.protocol_type.is_some()
        });
        tracing::info!(
            groups = groups.len(),
            "loaded consumer groups from __consumer_offsets"
        );
        Ok(())
    }
}

/// Name of Kafka's internal offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Applies one `__consumer_offsets` record to the in-memory groups; an offset written inside
/// a transaction (`producer_id`) waits for that transaction's marker.
fn apply_record(
    groups: &mut HashMap<String, Group>,
    key: &[u8],
    value: Option<&[u8]>,
    producer_id: Option<i64>,
    now: Now,
) -> Result<(), crate::state_log::format::RecordFormatError> {
    let Some(key) = OffsetsKey::decode(key)? else {
        return Ok(());
    };
    match (key, value, producer_id) {
        (
            OffsetsKey::OffsetCommit {
                group,
                topic,
                partition,
            },
            Some(value),
            Some(producer_id),
        ) => {
            let value = OffsetCommitValue::decode(value)?;
            groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group, now.wall_ms))
                .pending_txn_offsets
                .entry(producer_id)
                .or_default()
                .insert((topic, partition), value.into());
        }
        (
            OffsetsKey::OffsetCommit {
                group,
                topic,
                partition,
            },
            Some(value),
            None,
        ) => {
            let value = OffsetCommitValue::decode(value)?;
            groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group, now.wall_ms))
                .offsets
                .insert((topic, partition), value.into());
        }
        (
            OffsetsKey::OffsetCommit {
                group,
                topic,
                partition,
            },
            None,
            _,
        ) => {
            if let Some(g) = groups.get_mut(&group) {
                g.offsets.remove(&(topic, partition));
            }
        }
        (OffsetsKey::GroupMetadata { group }, Some(value), _) => {
            let value = GroupMetadataValue::decode(value)?;
            groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group, now.wall_ms))
                .restore(value, now.instant);
        }
        (OffsetsKey::GroupMetadata { group }, None, _) => {
            groups.remove(&group);
        }
    }
    Ok(())
}
