//! KIP-848 consumer groups (ConsumerGroupHeartbeat): the broker computes the assignment and
//! hands it out incrementally through heartbeats.
//!
//! Each membership or subscription change (or a change of the subscribed topics' partition
//! counts) bumps the group epoch and recomputes the target assignment with a sticky, balanced
//! assignor. A member first gives up the partitions its target no longer contains (it reports
//! this by omitting them from its owned partitions), then moves to the new epoch and receives
//! the target partitions no other member still holds; those arrive on later heartbeats once
//! their previous owners released them. So a partition is never owned by two members.
//!
//! Limits: membership is kept in memory only (after a restart members get UNKNOWN_MEMBER_ID
//! and rejoin; committed offsets are durable as for classic groups); regex subscriptions are
//! refused; a group cannot mix classic and consumer-protocol members.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::model::{Group, GroupState};
use super::{Coordinator, Now};

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Looks up a topic by name: its id and partition count.
pub type TopicLookup<'a> = &'a dyn Fn(&str) -> Option<(Uuid, i32)>;

/// One member of a consumer-protocol group.
#[derive(Debug)]
pub struct ConsumerMember {
    /// Member id (client-generated from v1, coordinator-generated in v0).
    pub member_id: String,
    /// `group.instance.id`, if any.
    pub instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address, `/ip`.
    pub client_host: String,
    /// The member's epoch.
    pub epoch: i32,
    /// The epoch before the last bump (a member whose response was lost may still use it).
    pub previous_epoch: i32,
    /// Subscribed topic names.
    pub subscribed: BTreeSet<String>,
    /// How long the member may take to release revoked partitions.
    pub rebalance_timeout: Duration,
    /// Partitions the member owns.
    pub assigned: Assignment,
    /// Partitions the member was told to release and has not confirmed releasing yet.
    pub pending_revocation: Assignment,
    /// When the pending revocation must be done by.
    pub revocation_deadline: Option<Instant>,
    /// Last heartbeat.
    pub last_heartbeat: Instant,
    /// The assignment last sent, to send only changes.
    pub last_sent: Option<Assignment>,
}

/// The consumer-protocol state of a group.
#[derive(Debug, Default)]
pub struct ConsumerGroup {
    /// Group epoch: bumped by every change that may alter the assignment.
    pub epoch: i32,
    /// Epoch of [`ConsumerGroup::target`].
    pub assignment_epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, ConsumerMember>,
    /// Target assignment per member.
    pub target: BTreeMap<String, Assignment>,
    /// Subscribed topics as last seen: name -> (id, partition count).
    pub topics: BTreeMap<String, (Uuid, i32)>,
}

impl ConsumerGroup {
    /// Kafka's state name for a consumer group.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || !m.pending_revocation.is_empty())
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The member's owned partitions as a classic consumer-protocol assignment (for
    /// DescribeGroups and lag tools).
    pub fn classic_assignment(&self, member: &ConsumerMember) -> Bytes {
        let names: BTreeMap<Uuid, &str> = self
            .topics
            .iter()
            .map(|(n, (id, _))| (*id, n.as_str()))
            .collect();
        let mut buf = BytesMut::new();
        buf.put_i16(0);
        let topics: Vec<(&str, &BTreeSet<i32>)> = member
            .assigned
            .iter()
            .filter_map(|(id, parts)| names.get(id).map(|n| (*n, parts)))
            .collect();
        buf.put_i32(i32::try_from(topics.len()).unwrap_or(i32::MAX));
        for (name, parts) in topics {
            buf.put_i16(i16::try_from(name.len()).unwrap_or(i16::MAX));
            buf.put_slice(name.as_bytes());
            buf.put_i32(i32::try_from(parts.len()).unwrap_or(i32::MAX));
            for p in parts {
                buf.put_i32(*p);
            }
        }
        buf.put_i32(-1);
        buf.freeze()
    }

    fn bump(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// Re-reads the subscribed topics' metadata; a change bumps the epoch.
    fn refresh_topics(&mut self, lookup: TopicLookup<'_>) {
        let names: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed.iter())
            .collect();
        let topics: BTreeMap<String, (Uuid, i32)> = names
            .into_iter()
            .filter_map(|n| lookup(n).map(|info| (n.clone(), info)))
            .collect();
        if topics != self.topics {
            self.topics = topics;
            self.bump();
        }
    }

    /// Recomputes the target assignment if the group epoch moved past it.
    fn update_target(&mut self) {
        if self.assignment_epoch == self.epoch {
            return;
        }
        self.target = compute_target(&self.members, &self.topics, &self.target);
        self.assignment_epoch = self.epoch;
    }

    /// Moves `member_id` towards its target: revoke first, then take what is free.
    fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now: Instant) {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let held_by_others: Assignment = self
            .members
            .values()
            .filter(|m| m.member_id != member_id)
            .fold(Assignment::new(), |mut acc, m| {
                merge(&mut acc, &m.assigned);
                merge(&mut acc, &m.pending_revocation);
                acc
            });
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(member_id) else {
            return;
        };
        if let Some(owned) = owned {
            if !m.pending_revocation.is_empty() && !intersects(owned, &m.pending_revocation) {
                m.pending_revocation.clear();
                m.revocation_deadline = None;
            }
        }
        let revoke = difference(&m.assigned, &target);
        if !revoke.is_empty() {
            m.assigned = intersection(&m.assigned, &target);
            merge(&mut m.pending_revocation, &revoke);
            m.revocation_deadline = Some(now + m.rebalance_timeout);
        }
        if m.pending_revocation.is_empty() {
            if m.epoch != assignment_epoch {
                m.previous_epoch = m.epoch;
                m.epoch = assignment_epoch;
            }
            let free = difference(&target, &held_by_others);
            merge(&mut m.assigned, &free);
        }
    }
}

/// A ConsumerGroupHeartbeat in the coordinator's terms.
#[derive(Debug, Clone)]
pub struct ConsumerHeartbeat {
    /// Group id.
    pub group_id: String,
    /// Member id; empty on a v0 first join.
    pub member_id: String,
    /// 0 joins, -1 leaves, -2 leaves temporarily (static), otherwise the member's epoch.
    pub member_epoch: i32,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Rebalance timeout in ms (-1 = unchanged).
    pub rebalance_timeout_ms: i32,
    /// Subscribed topics, `None` when unchanged.
    pub subscribed_topics: Option<Vec<String>>,
    /// A regex subscription (refused).
    pub subscribed_regex: Option<String>,
    /// Partitions the member owns, `None` when unchanged.
    pub owned: Option<Assignment>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
}

/// The answer to a ConsumerGroupHeartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerHeartbeatResult {
    /// The member id (generated on a v0 join).
    pub member_id: String,
    /// The member's epoch.
    pub member_epoch: i32,
    /// How often to heartbeat.
    pub heartbeat_interval_ms: i32,
    /// The member's partitions, if changed since the last response.
    pub assignment: Option<Assignment>,
}

/// Leave epochs of ConsumerGroupHeartbeat.
const LEAVE_EPOCH: i32 = -1;
const STATIC_LEAVE_EPOCH: i32 = -2;

impl Coordinator {
    /// ConsumerGroupHeartbeat: join, heartbeat, reconcile or leave a consumer-protocol group.
    pub fn consumer_heartbeat(
        &self,
        req: ConsumerHeartbeat,
        lookup: TopicLookup<'_>,
        now: Now,
    ) -> Result<ConsumerHeartbeatResult, (ResponseError, &'static str)> {
        if req.group_id.is_empty() {
            return Err((
                ResponseError::InvalidGroupId,
                "the group id must not be empty",
            ));
        }
        if req.subscribed_regex.is_some() {
            return Err((
                ResponseError::InvalidRequest,
                "regex subscriptions are not supported by Sluice; subscribe to topic names",
            ));
        }
        let mut groups = self.groups.lock();
        if !groups.contains_key(&req.group_id) {
            if req.member_epoch != 0 {
                return Err((
                    ResponseError::UnknownMemberId,
                    "the group does not exist; rejoin with epoch 0",
                ));
            }
            groups.insert(req.group_id.clone(), Group::new(&req.group_id, now.wall_ms));
        }
        let Some(group) = groups.get_mut(&req.group_id) else {
            return Err((
                ResponseError::CoordinatorNotAvailable,
                "the group is being unloaded",
            ));
        };
        if group.state == GroupState::Dead {
            return Err((
                ResponseError::CoordinatorNotAvailable,
                "the group is being deleted",
            ));
        }
        if !group.members.is_empty() {
            return Err((
                ResponseError::GroupIdNotFound,
                "the group has classic-protocol members; use group.protocol=classic or another group",
            ));
        }
        let interval = super::model::duration_ms(self.config.consumer_heartbeat_interval);
        let cg = group.consumer.get_or_insert_with(ConsumerGroup::default);
        let result = match req.member_epoch {
            LEAVE_EPOCH | STATIC_LEAVE_EPOCH => {
                if cg.members.remove(&req.member_id).is_some() {
                    tracing::info!(group = %req.group_id, member = %req.member_id, "consumer left the group");
                    cg.target.remove(&req.member_id);
                    cg.bump();
                    cg.refresh_topics(lookup);
                    cg.update_target();
                }
                ConsumerHeartbeatResult {
                    member_id: req.member_id.clone(),
                    member_epoch: req.member_epoch,
                    heartbeat_interval_ms: 0,
                    assignment: None,
                }
            }
            0 => {
                let Some(subscribed) = req.subscribed_topics.clone() else {
                    return Err((
                        ResponseError::InvalidRequest,
                        "a joining member must send its subscription",
                    ));
                };
                let member_id = if req.member_id.is_empty() {
                    Uuid::new_v4().to_string()
                } else {
                    req.member_id.clone()
                };
                let member = ConsumerMember {
                    member_id: member_id.clone(),
                    instance_id: req.instance_id.clone(),
                    client_id: req.client_id.clone(),
                    client_host: req.client_host.clone(),
                    epoch: 0,
                    previous_epoch: 0,
                    subscribed: subscribed.into_iter().collect(),
                    rebalance_timeout: super::model::ms_duration(req.rebalance_timeout_ms),
                    assigned: Assignment::new(),
                    pending_revocation: Assignment::new(),
                    revocation_deadline: None,
                    last_heartbeat: now.instant,
                    last_sent: None,
                };
                if cg.members.insert(member_id.clone(), member).is_none() {
                    tracing::info!(group = %req.group_id, member = %member_id, "consumer joined the group");
                }
                cg.bump();
                heartbeat_member(cg, &member_id, &req, lookup, interval, now)
            }
            epoch => {
                let Some(member) = cg.members.get_mut(&req.member_id) else {
                    return Err((
                        ResponseError::UnknownMemberId,
                        "unknown member; rejoin with epoch 0",
                    ));
                };
                if epoch != member.epoch && epoch != member.previous_epoch {
                    return Err((
                        ResponseError::FencedMemberEpoch,
                        "stale member epoch; rejoin with epoch 0",
                    ));
                }
                member.last_heartbeat = now.instant;
                if req.rebalance_timeout_ms > 0 {
                    member.rebalance_timeout = super::model::ms_duration(req.rebalance_timeout_ms);
                }
                if let Some(topics) = &req.subscribed_topics {
                    let topics: BTreeSet<String> = topics.iter().cloned().collect();
                    if topics != member.subscribed {
                        member.subscribed = topics;
                        cg.bump();
                    }
                }
                let member_id = req.member_id.clone();
                heartbeat_member(cg, &member_id, &req, lookup, interval, now)
            }
        };
        let members = cg.members.len();
        group.protocol_type = Some("consumer".to_owned());
        if members == 0 && group.state != GroupState::Empty {
            group.transition(GroupState::Empty, now.wall_ms);
        } else if members > 0 && group.state != GroupState::Stable {
            group.transition(GroupState::Stable, now.wall_ms);
        }
        Ok(result)
    }

    /// Fences consumer-protocol members whose session lapsed or who kept revoked partitions
    /// past their rebalance timeout.
    pub(crate) fn check_consumer_deadlines(&self, group: &mut Group, now: Now) {
        let session = self.config.consumer_session_timeout;
        let Some(cg) = group.consumer.as_mut() else {
            return;
        };
        let fenced: Vec<String> = cg
            .members
            .values()
            .filter(|m| {
                now.instant.saturating_duration_since(m.last_heartbeat) > session
                    || m.revocation_deadline.is_some_and(|d| now.instant >= d)
            })
            .map(|m| m.member_id.clone())
            .collect();
        if fenced.is_empty() {
            return;
        }
        for id in &fenced {
            tracing::info!(group = %group.id, member = %id, "consumer fenced: session or revocation timeout");
            cg.members.remove(id);
            cg.target.remove(id);
        }
        cg.bump();
        cg.target = compute_target(&cg.members, &cg.topics, &cg.target);
        cg.assignment_epoch = cg.epoch;
        if cg.members.is_empty() {
            group.transition(GroupState::Empty, now.wall_ms);
        }
    }
}

/// The regular heartbeat path shared by joins and known members.
fn heartbeat_member(
    cg: &mut ConsumerGroup,
    member_id: &str,
    req: &ConsumerHeartbeat,
    lookup: TopicLookup<'_>,
    interval: i32,
    now: Now,
) -> ConsumerHeartbeatResult {
    cg.refresh_topics(lookup);
    cg.update_target();
    cg.reconcile(member_id, req.owned.as_ref(), now.instant);
    let joining = req.member_epoch == 0;
    match cg.members.get_mut(member_id) {
        Some(m) => {
            let changed = m.last_sent.as_ref() != Some(&m.assigned);
            let assignment = (changed || joining).then(|| m.assigned.clone());
            if assignment.is_some() {
                m.last_sent = Some(m.assigned.clone());
            }
            ConsumerHeartbeatResult {
                member_id: member_id.to_owned(),
                member_epoch: m.epoch,
                heartbeat_interval_ms: interval,
                assignment,
            }
        }
        None => ConsumerHeartbeatResult {
            member_id: member_id.to_owned(),
            member_epoch: LEAVE_EPOCH,
            heartbeat_interval_ms: interval,
            assignment: None,
        },
    }
}

/// Sticky, per-topic balanced assignment: partitions stay with their previous target owner while
/// it is subscribed and under quota, the rest go to the least-loaded members, and loads are
/// evened out to differ by at most one.
pub fn compute_target(
    members: &BTreeMap<String, ConsumerMember>,
    topics: &BTreeMap<String, (Uuid, i32)>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut target: BTreeMap<String, Assignment> = members
        .keys()
        .map(|id| (id.clone(), Assignment::new()))
        .collect();
    for (name, (topic_id, count)) in topics {
        let eligible: Vec<&str> = members
            .values()
            .filter(|m| m.subscribed.contains(name))
            .map(|m| m.member_id.as_str())
            .collect();
        if eligible.is_empty() || *count <= 0 {
            continue;
        }
        let count_usize = usize::try_from(*count).unwrap_or(0);
        let quota = count_usize.div_ceil(eligible.len());
        let mut owned: BTreeMap<&str, Vec<i32>> =
            eligible.iter().map(|m| (*m, Vec::new())).collect();
        let mut unassigned = Vec::new();
        for p in 0..*count {
            let previous_owner = previous
                .iter()
                .find(|(_, a)| a.get(topic_id).is_some_and(|ps| ps.contains(&p)))
                .map(|(id, _)| id.as_str());
            match previous_owner.and_then(|o| owned.get_mut(o)) {
                Some(list) if list.len() < quota => list.push(p),
                _ => unassigned.push(p),
            }
        }
        for p in unassigned {
            if let Some(list) = owned.values_mut().min_by_key(|l| l.len()) {
                list.push(p);
            }
        }
        while let Some((from, to)) = imbalance(&owned) {
            let moved = owned.get_mut(from).and_then(Vec::pop);
            if let (Some(p), Some(list)) = (moved, owned.get_mut(to)) {
                list.push(p);
            }
        }
        for (member, parts) in owned {
            if let Some(a) = target.get_mut(member) {
                if !parts.is_empty() {
                    a.insert(*topic_id, parts.into_iter().collect());
                }
            }
        }
    }
    target
}

/// The most and least loaded members, if their loads differ by more than one.
fn imbalance<'a>(owned: &BTreeMap<&'a str, Vec<i32>>) -> Option<(&'a str, &'a str)> {
    let (max_id, max) = owned.iter().max_by_key(|(_, l)| l.len())?;
    let (min_id, min) = owned.iter().min_by_key(|(_, l)| l.len())?;
    (max.len() > min.len() + 1).then_some((*max_id, *min_id))
}

fn merge(into: &mut Assignment, from: &Assignment) {
    for (topic, parts) in from {
        into.entry(*topic)
            .or_default()
            .extend(parts.iter().copied());
    }
}

fn difference(a: &Assignment, b: &Assignment) -> Assignment {
    a.iter()
        .filter_map(|(t, ps)| {
            let rest: BTreeSet<i32> = ps
                .iter()
                .filter(|p| !b.get(t).is_some_and(|bs| bs.contains(p)))
                .copied()
                .collect();
            (!rest.is_empty()).then_some((*t, rest))
        })
        .collect()
}

fn intersection(a: &Assignment, b: &Assignment) -> Assignment {
    a.iter()
        .filter_map(|(t, ps)| {
            let both: BTreeSet<i32> = ps
                .iter()
                .filter(|p| b.get(t).is_some_and(|bs| bs.contains(p)))
                .copied()
                .collect();
            (!both.is_empty()).then_some((*t, both))
        })
        .collect()
}

fn intersects(a: &Assignment, b: &Assignment) -> bool {
    !intersection(a, b).is_empty()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::group::{GroupConfig, GroupCoordinator};
    use crate::state_log::MemoryStateLog;

    fn topic_id() -> Uuid {
        Uuid::from_u128(7)
    }

    fn lookup(name: &str) -> Option<(Uuid, i32)> {
        (name == "t").then_some((topic_id(), 6))
    }

    fn hb(member_id: &str, epoch: i32, owned: Option<&[i32]>) -> ConsumerHeartbeat {
        ConsumerHeartbeat {
            group_id: "g".into(),
            member_id: member_id.into(),
            member_epoch: epoch,
            instance_id: None,
            rebalance_timeout_ms: 30_000,
            subscribed_topics: (epoch == 0).then(|| vec!["t".to_owned()]),
            subscribed_regex: None,
            owned: owned.map(|ps| BTreeMap::from([(topic_id(), ps.iter().copied().collect())])),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    fn parts(r: &ConsumerHeartbeatResult) -> Vec<i32> {
        r.assignment
            .as_ref()
            .and_then(|a| a.get(&topic_id()))
            .map(|ps| ps.iter().copied().collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_second_member_gets_partitions_only_after_the_first_releases_them() {
        let c = GroupCoordinator::with_log(
            Box::new(Arc::new(MemoryStateLog::new(1))),
            GroupConfig::default(),
            Now::current(),
        )
        .expect("coordinator");
        let now = Now::current();
        let a = c
            .consumer_heartbeat(hb("a", 0, None), &lookup, now)
            .expect("a joins");
        assert_eq!(parts(&a), vec![0, 1, 2, 3, 4, 5]);
        let b = c
            .consumer_heartbeat(hb("b", 0, None), &lookup, now)
            .expect("b joins");
        assert!(parts(&b).is_empty(), "a still owns everything");
        assert!(b.member_epoch > a.member_epoch);

        let a2 = c
            .consumer_heartbeat(
                hb("a", a.member_epoch, Some(&[0, 1, 2, 3, 4, 5])),
                &lookup,
                now,
            )
            .expect("a heartbeats");
        let kept = parts(&a2);
        assert_eq!(kept.len(), 3, "a is told to release half");
        assert_eq!(
            a2.member_epoch, a.member_epoch,
            "epoch moves only after the revocation"
        );
        assert_eq!(c.describe("g").state, "Reconciling");
        assert_eq!(c.list(&[], &["consumer".into()])[0].state, "Reconciling");
        assert!(c.list(&[], &["classic".into()]).is_empty());

        // b asks again before a released anything: still nothing.
        let b2 = c
            .consumer_heartbeat(hb("b", b.member_epoch, Some(&[])), &lookup, now)
            .expect("b");
        assert!(b2.assignment.is_none() || parts(&b2).is_empty());

        let a3 = c
            .consumer_heartbeat(hb("a", a2.member_epoch, Some(&kept)), &lookup, now)
            .expect("a acks");
        assert_eq!(a3.member_epoch, b.member_epoch);
        let b3 = c
            .consumer_heartbeat(hb("b", b.member_epoch, Some(&[])), &lookup, now)
            .expect("b");
        let got = parts(&b3);
        assert_eq!(got.len(), 3);
        assert!(
            got.iter().all(|p| !kept.contains(p)),
            "no partition is owned twice"
        );
        assert_eq!(c.list(&[], &[])[0].state, "Stable");

        // Stale epochs are fenced; offsets commit with the member epoch.
        assert_eq!(
            c.consumer_heartbeat(hb("a", 999, None), &lookup, now)
                .err()
                .map(|e| e.0),
            Some(ResponseError::FencedMemberEpoch)
        );
        let commit = [crate::group::OffsetToCommit {
            topic: "t".into(),
            partition: got[0],
            offset: 3,
            leader_epoch: -1,
            metadata: String::new(),
        }];
        let who = |epoch| crate::group::MemberRef {
            group_id: "g",
            generation_id: epoch,
            member_id: "b",
            group_instance_id: None,
        };
        assert!(c.commit(who(b3.member_epoch), &commit, now).is_ok());
        assert_eq!(
            c.commit(who(-5), &commit, now).err(),
            Some(ResponseError::StaleMemberEpoch)
        );

        // A leaves; b eventually owns everything.
        c.consumer_heartbeat(hb("a", a3.member_epoch, None), &lookup, now)
            .expect("a heartbeats");
        c.consumer_heartbeat(hb("a", LEAVE_EPOCH, None), &lookup, now)
            .expect("a leaves");
        let b4 = c
            .consumer_heartbeat(hb("b", b3.member_epoch, Some(&got)), &lookup, now)
            .expect("b");
        assert_eq!(parts(&b4), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_target_is_balanced_and_sticky() {
        let member = |id: &str| ConsumerMember {
            member_id: id.into(),
            instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            epoch: 0,
            previous_epoch: 0,
            subscribed: BTreeSet::from(["t".to_owned()]),
            rebalance_timeout: Duration::from_secs(1),
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            revocation_deadline: None,
            last_heartbeat: Instant::now(),
            last_sent: None,
        };
        let topics = BTreeMap::from([("t".to_owned(), (topic_id(), 7))]);
        let mut members = BTreeMap::new();
        members.insert("a".to_owned(), member("a"));
        members.insert("b".to_owned(), member("b"));
        let first = compute_target(&members, &topics, &BTreeMap::new());
        let sizes: Vec<usize> = first.values().map(|a| a[&topic_id()].len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 7);
        assert!(
            sizes.iter().max().copied().unwrap_or(0) - sizes.iter().min().copied().unwrap_or(0)
                <= 1
        );
        members.insert("c".to_owned(), member("c"));
        let second = compute_target(&members, &topics, &first);
        for id in ["a", "b"] {
            let before = &first[id][&topic_id()];
            let after = &second[id][&topic_id()];
            assert!(after.is_subset(before), "{id} only loses partitions");
        }
        assert_eq!(
            second.values().map(|a| a[&topic_id()].len()).sum::<usize>(),
            7
        );
    }
}
