//! The in-memory model of one consumer group: its state, members and committed offsets.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::records::{GroupMetadataValue, MemberMetadataValue, OffsetCommitValue};
use super::{JoinResult, SyncResult};

/// The classic-protocol group states, as Kafka names them in DescribeGroups/ListGroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; may still hold committed offsets.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment in SyncGroup.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted or expired; about to be removed.
    Dead,
}

impl GroupState {
    /// Kafka's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A committed offset of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The offset the group resumes from.
    pub offset: i64,
    /// Leader epoch sent with the commit, or -1.
    pub leader_epoch: i32,
    /// Client metadata string.
    pub metadata: String,
    /// When the commit was written (ms since the epoch).
    pub commit_timestamp_ms: i64,
}

impl From<OffsetCommitValue> for CommittedOffset {
    fn from(v: OffsetCommitValue) -> Self {
        CommittedOffset {
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata,
            commit_timestamp_ms: v.commit_timestamp,
        }
    }
}

/// One member of a group.
#[derive(Debug)]
pub struct Member {
    /// Coordinator-assigned id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address, `/ip`.
    pub client_host: String,
    /// How long without a heartbeat before the member is removed.
    pub session_timeout: Duration,
    /// How long the coordinator waits for the member to rejoin during a rebalance.
    pub rebalance_timeout: Duration,
    /// Supported protocols (assignors) in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// The assignment from the last SyncGroup.
    pub assignment: Bytes,
    /// Parked JoinGroup response, while the member waits for the rebalance to complete.
    pub awaiting_join: Option<oneshot::Sender<JoinResult>>,
    /// Parked SyncGroup response, while the member waits for the leader's assignment.
    pub awaiting_sync: Option<oneshot::Sender<SyncResult>>,
    /// Last sign of life (join, sync, heartbeat, commit).
    pub last_heartbeat: Instant,
}

impl Member {
    /// True while a JoinGroup of this member is parked and its client still waits.
    pub fn is_awaiting_join(&self) -> bool {
        self.awaiting_join
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
    }

    /// True while a SyncGroup of this member is parked and its client still waits.
    pub fn is_awaiting_sync(&self) -> bool {
        self.awaiting_sync
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
    }

    /// The member's metadata for `protocol`.
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// True when `protocols` names the same protocols with the same metadata.
    pub fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// True when the member's session has lapsed at `now` (parked members are kept alive).
    pub fn session_expired(&self, now: Instant) -> bool {
        !self.is_awaiting_join()
            && !self.is_awaiting_sync()
            && now.saturating_duration_since(self.last_heartbeat) > self.session_timeout
    }
}

/// The initial-rebalance delay of a group formed from scratch
/// (`group.initial.rebalance.delay.ms`): the join phase is extended while members keep arriving.
#[derive(Debug, Clone, Copy)]
pub struct InitialDelay {
    /// How long each extension lasts.
    pub delay: Duration,
    /// Time left before the rebalance timeout caps further extensions.
    pub remaining: Duration,
    /// Number of members when the current extension started.
    pub members_at_start: usize,
}

/// One consumer group.
#[derive(Debug)]
pub struct Group {
    /// Group id.
    pub id: String,
    /// Current state.
    pub state: GroupState,
    /// When the current state was entered (ms since the epoch); drives offset expiry.
    pub state_since_ms: i64,
    /// Generation id, incremented by every completed join phase.
    pub generation: i32,
    /// Protocol type shared by all members (`consumer`), once known.
    pub protocol_type: Option<String>,
    /// The protocol selected for the current generation.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// Members, in join order (the first becomes leader when there is none).
    pub members: indexmap::IndexMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline to rejoin.
    pub pending: HashMap<String, Instant>,
    /// `group.instance.id` -> member id of static members.
    pub static_members: HashMap<String, String>,
    /// Committed offsets by (topic, partition).
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Offsets committed inside open transactions, by producer id: they take effect when the
    /// transaction commits and vanish when it aborts.
    pub pending_txn_offsets: HashMap<i64, BTreeMap<(String, i32), CommittedOffset>>,
    /// End of the join phase (PreparingRebalance) or of the sync phase (CompletingRebalance).
    pub phase_deadline: Option<Instant>,
    /// Set while a group formed from scratch waits out the initial rebalance delay.
    pub initial_delay: Option<InitialDelay>,
    /// KIP-848 state, for groups used through ConsumerGroupHeartbeat.
    pub consumer: Option<super::consumer::ConsumerGroup>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: &str, now_ms: i64) -> Self {
        Group {
            id: id.to_owned(),
            state: GroupState::Empty,
            state_since_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: indexmap::IndexMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            offsets: BTreeMap::new(),
            pending_txn_offsets: HashMap::new(),
            phase_deadline: None,
            initial_delay: None,
            consumer: None,
        }
    }

    /// Moves to `state`, recording when.
    pub fn transition(&mut self, state: GroupState, now_ms: i64) {
        tracing::debug!(group = %self.id, from = self.state.as_str(), to = state.as_str(), "group state change");
        self.state = state;
        self.state_since_ms = now_ms;
    }

    /// True when a member with `protocol_type` and `protocols` may join: the type matches and at
    /// least one of its protocols is supported by every current member.
    pub fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    /// Picks the protocol every member supports that most members list first among those
    /// candidates (Kafka's vote); ties go to the leader's preference.
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
            .collect();
        let mut votes: Vec<(&str, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for member in self.members.values() {
            let choice = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n.as_str()));
            if let Some((name, _)) = choice {
                if let Some(entry) = votes.iter_mut().find(|(c, _)| c == name) {
                    entry.1 += 1;
                }
            }
        }
        // max_by_key returns the last maximum; iterate reversed so ties keep the earliest.
        votes
            .iter()
            .rev()
            .max_by_key(|(_, n)| *n)
            .map(|(name, _)| (*name).to_owned())
    }

    /// Largest rebalance timeout among members (how long a join phase may last).
    pub fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// True while consumer-protocol (KIP-848) members use the group.
    pub fn has_consumer_members(&self) -> bool {
        self.consumer
            .as_ref()
            .is_some_and(|c| !c.members.is_empty())
    }

    /// True when every member has rejoined and no handed-out member id is still outstanding.
    pub fn all_members_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(Member::is_awaiting_join)
    }

    /// The group metadata record value describing the current generation.
    pub fn metadata_value(&self) -> GroupMetadataValue {
        let protocol = self.protocol.clone();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_since_ms,
            members: self
                .members
                .values()
                .map(|m| MemberMetadataValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: duration_ms(m.rebalance_timeout),
                    session_timeout: duration_ms(m.session_timeout),
                    subscription: protocol
                        .as_deref()
                        .map(|p| m.metadata_for(p))
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Restores the membership of a group metadata record (after a restart). Members come back
    /// with a fresh session so running clients can keep heartbeating without a rebalance.
    pub fn restore(&mut self, value: GroupMetadataValue, now: Instant) {
        self.generation = value.generation;
        self.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
        self.protocol = value.protocol;
        self.leader = value.leader;
        self.members.clear();
        self.static_members.clear();
        self.pending.clear();
        if value.current_state_timestamp >= 0 {
            self.state_since_ms = value.current_state_timestamp;
        }
        for m in value.members {
            if let Some(iid) = &m.group_instance_id {
                self.static_members.insert(iid.clone(), m.member_id.clone());
            }
            let protocols = self
                .protocol
                .clone()
                .map(|p| vec![(p, m.subscription.clone())])
                .unwrap_or_default();
            self.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: ms_duration(m.session_timeout),
                    rebalance_timeout: ms_duration(m.rebalance_timeout),
                    protocols,
                    assignment: m.assignment,
                    awaiting_join: None,
                    awaiting_sync: None,
                    last_heartbeat: now,
                },
            );
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }
}

/// A duration as Kafka's i32 milliseconds (saturating).
pub fn duration_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Kafka i32 milliseconds as a duration (negative counts as zero).
pub fn ms_duration(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            member_id: id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocols: protocols
                .iter()
                .map(|p| ((*p).to_owned(), Bytes::new()))
                .collect(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            last_heartbeat: Instant::now(),
        }
    }

    #[test]
    fn protocol_selection_takes_the_common_most_voted() {
        let mut g = Group::new("g", 0);
        g.protocol_type = Some("consumer".into());
        g.members
            .insert("a".into(), member("a", &["range", "roundrobin"]));
        g.members
            .insert("b".into(), member("b", &["roundrobin", "range"]));
        g.members
            .insert("c".into(), member("c", &["sticky", "roundrobin"]));
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
        g.members.shift_remove("c");
        // One vote each: the first member's preference wins.
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
    }

    #[test]
    fn supports_requires_type_and_a_common_protocol() {
        let mut g = Group::new("g", 0);
        let p = |n: &str| vec![(n.to_owned(), Bytes::new())];
        assert!(g.supports("consumer", &p("range")));
        assert!(!g.supports("", &p("range")));
        assert!(!g.supports("consumer", &[]));
        g.protocol_type = Some("consumer".into());
        g.members.insert("a".into(), member("a", &["range"]));
        assert!(g.supports("consumer", &p("range")));
        assert!(!g.supports("consumer", &p("cooperative-sticky")));
        assert!(!g.supports("connect", &p("range")));
    }

    #[test]
    fn metadata_round_trips_through_restore() {
        let mut g = Group::new("g", 5);
        g.protocol_type = Some("consumer".into());
        g.protocol = Some("range".into());
        g.generation = 4;
        g.leader = Some("a".into());
        let mut a = member("a", &["range"]);
        a.group_instance_id = Some("i-1".into());
        a.assignment = Bytes::from_static(b"asg");
        g.members.insert("a".into(), a);
        let value = g.metadata_value();
        let mut restored = Group::new("g", 0);
        restored.restore(value.clone(), Instant::now());
        assert_eq!(restored.state, GroupState::Stable);
        assert_eq!(
            restored.static_members.get("i-1").map(String::as_str),
            Some("a")
        );
        assert_eq!(restored.metadata_value(), value);
    }
}
