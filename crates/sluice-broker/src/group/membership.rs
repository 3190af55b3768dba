//! Group membership and the rebalance state machine: JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, and the deadlines that move a group between states.
//!
//! Transitions follow Kafka's classic coordinator:
//! Empty -> PreparingRebalance (first join; waits out the initial delay)
//! -> CompletingRebalance (everyone rejoined, or the rebalance timeout passed: stragglers are
//! removed, the generation is bumped and parked joins are answered)
//! -> Stable (the leader's SyncGroup delivered every assignment)
//! -> PreparingRebalance (a member joined, left, changed its subscription or timed out)
//! ... -> Empty (no member left).

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::model::{Group, GroupState, InitialDelay, Member};
use super::{Coordinator, JoinResult, JoinedMember, Now, Pending, SyncAssignment, SyncResult};
use crate::state_log::Durable;

/// A JoinGroup request in the coordinator's terms.
#[derive(Debug, Clone)]
pub struct JoinParams {
    /// Group id.
    pub group_id: String,
    /// Member id, empty on the first join.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address, `/ip`.
    pub client_host: String,
    /// Session timeout in ms.
    pub session_timeout_ms: i32,
    /// Rebalance timeout in ms (JoinGroup v0 uses the session timeout).
    pub rebalance_timeout_ms: i32,
    /// Protocol type (`consumer`).
    pub protocol_type: String,
    /// Supported protocols in preference order, with metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a first join gets MEMBER_ID_REQUIRED and a member id to rejoin with.
    pub require_known_member_id: bool,
}

/// Identifies the sender of a SyncGroup, Heartbeat or OffsetCommit.
#[derive(Debug, Clone)]
pub struct MemberRef<'a> {
    /// Group id.
    pub group_id: &'a str,
    /// Generation the member believes is current.
    pub generation_id: i32,
    /// Member id.
    pub member_id: &'a str,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<&'a str>,
}

/// Checks that `member_id` / `instance_id` name a current member of `group`.
fn validate_member(
    group: &Group,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<(), ResponseError> {
    if let Some(iid) = instance_id {
        match group.static_members.get(iid) {
            Some(current) if current != member_id => return Err(ResponseError::FencedInstanceId),
            None if !member_id.is_empty() && !group.members.contains_key(member_id) => {
                return Err(ResponseError::UnknownMemberId)
            }
            _ => {}
        }
    }
    if group.members.contains_key(member_id) {
        Ok(())
    } else {
        Err(ResponseError::UnknownMemberId)
    }
}

fn new_member_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

impl Coordinator {
    /// JoinGroup: adds or refreshes a member; usually parks until the rebalance completes.
    pub fn join(&self, req: JoinParams, now: Now) -> Pending<JoinResult> {
        let fail = |e: ResponseError| Pending::Ready(JoinResult::error(e, &req.member_id));
        if req.group_id.is_empty() {
            return fail(ResponseError::InvalidGroupId);
        }
        let session = Duration::from_millis(u64::try_from(req.session_timeout_ms).unwrap_or(0));
        if session < self.config.min_session_timeout || session > self.config.max_session_timeout {
            return fail(ResponseError::InvalidSessionTimeout);
        }
        let mut groups = self.groups.lock();
        if !groups.contains_key(&req.group_id) {
            if !req.member_id.is_empty() {
                return fail(ResponseError::UnknownMemberId);
            }
            if req.protocol_type.is_empty() || req.protocols.is_empty() {
                return fail(ResponseError::InconsistentGroupProtocol);
            }
            groups.insert(req.group_id.clone(), Group::new(&req.group_id, now.wall_ms));
        }
        let Some(group) = groups.get_mut(&req.group_id) else {
            return fail(ResponseError::CoordinatorNotAvailable);
        };
        if group.state == GroupState::Dead {
            return fail(ResponseError::CoordinatorNotAvailable);
        }
        if !group.supports(&req.protocol_type, &req.protocols) || group.has_consumer_members() {
            return fail(ResponseError::InconsistentGroupProtocol);
        }

        if req.member_id.is_empty() {
            let prefix = req.group_instance_id.as_deref().unwrap_or(&req.client_id);
            let member_id = new_member_id(prefix);
            if let Some(old_id) = req
                .group_instance_id
                .as_ref()
                .and_then(|iid| group.static_members.get(iid))
                .cloned()
            {
                return self.replace_static_member(group, &old_id, member_id, req, now);
            }
            if req.require_known_member_id && req.group_instance_id.is_none() {
                let deadline = now.instant + session;
                group.pending.insert(member_id.clone(), deadline);
                return Pending::Ready(JoinResult::error(
                    ResponseError::MemberIdRequired,
                    &member_id,
                ));
            }
            return self.add_member(group, member_id, req, now);
        }

        if group.pending.remove(&req.member_id).is_some() {
            let member_id = req.member_id.clone();
            return self.add_member(group, member_id, req, now);
        }
        if let Err(e) = validate_member(group, &req.member_id, req.group_instance_id.as_deref()) {
            return fail(e);
        }
        let Some(member) = group.members.get(&req.member_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        let unchanged = member.same_protocols(&req.protocols);
        let is_leader = group.leader.as_deref() == Some(req.member_id.as_str());
        match group.state {
            GroupState::PreparingRebalance => self.park_join(group, req, now),
            GroupState::CompletingRebalance if unchanged => {
                // The member missed its JoinGroup response; repeat it.
                Pending::Ready(current_join_result(group, &req.member_id))
            }
            GroupState::Stable if unchanged && !is_leader => {
                Pending::Ready(current_join_result(group, &req.member_id))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.prepare_rebalance(group, now);
                self.park_join(group, req, now)
            }
            GroupState::Empty | GroupState::Dead => fail(ResponseError::UnknownMemberId),
        }
    }

    /// Adds a new member and starts (or joins) a rebalance.
    fn add_member(
        &self,
        group: &mut Group,
        member_id: String,
        req: JoinParams,
        now: Now,
    ) -> Pending<JoinResult> {
        if group.members.is_empty() {
            group.protocol_type = Some(req.protocol_type.clone());
            group.consumer = None;
        }
        if let Some(iid) = &req.group_instance_id {
            group.static_members.insert(iid.clone(), member_id.clone());
        }
        let (tx, rx) = oneshot::channel();
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout: super::model::ms_duration(req.session_timeout_ms),
            rebalance_timeout: super::model::ms_duration(req.rebalance_timeout_ms),
            protocols: req.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(tx),
            awaiting_sync: None,
            last_heartbeat: now.instant,
        };
        group.members.insert(member_id, member);
        if group.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(group, now);
        }
        self.maybe_complete_join(group, now);
        Pending::Parked(rx)
    }

    /// A static member rejoined with an unknown member id: the new incarnation takes over the
    /// old member's place (and assignment), and the old one is fenced.
    fn replace_static_member(
        &self,
        group: &mut Group,
        old_id: &str,
        new_id: String,
        req: JoinParams,
        now: Now,
    ) -> Pending<JoinResult> {
        let Some(mut member) = group.members.shift_remove(old_id) else {
            return Pending::Ready(JoinResult::error(ResponseError::UnknownMemberId, ""));
        };
        if let Some(tx) = member.awaiting_join.take() {
            let _ = tx.send(JoinResult::error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(tx) = member.awaiting_sync.take() {
            let _ = tx.send(Err(ResponseError::FencedInstanceId));
        }
        let unchanged = member.same_protocols(&req.protocols);
        let was_leader = group.leader.as_deref() == Some(old_id);
        if was_leader {
            group.leader = Some(new_id.clone());
        }
        member.member_id = new_id.clone();
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.session_timeout = super::model::ms_duration(req.session_timeout_ms);
        member.rebalance_timeout = super::model::ms_duration(req.rebalance_timeout_ms);
        member.protocols = req.protocols.clone();
        member.last_heartbeat = now.instant;
        if let Some(iid) = &req.group_instance_id {
            group.static_members.insert(iid.clone(), new_id.clone());
        }
        group.members.insert(new_id.clone(), member);
        tracing::info!(group = %group.id, old = old_id, new = %new_id, "static member replaced");
        match group.state {
            GroupState::Stable if unchanged && !was_leader => {
                // No rebalance: the member gets its old assignment back through SyncGroup.
                let _ = self.persist_group(group, now);
                Pending::Ready(current_join_result(group, &new_id))
            }
            GroupState::PreparingRebalance => self.park_join(
                group,
                JoinParams {
                    member_id: new_id,
                    ..req
                },
                now,
            ),
            _ => {
                self.prepare_rebalance(group, now);
                self.park_join(
                    group,
                    JoinParams {
                        member_id: new_id,
                        ..req
                    },
                    now,
                )
            }
        }
    }

    /// Records a known member's (re)join request and parks it until the join phase completes.
    fn park_join(&self, group: &mut Group, req: JoinParams, now: Now) -> Pending<JoinResult> {
        let Some(member) = group.members.get_mut(&req.member_id) else {
            return Pending::Ready(JoinResult::error(
                ResponseError::UnknownMemberId,
                &req.member_id,
            ));
        };
        let (tx, rx) = oneshot::channel();
        member.protocols = req.protocols;
        member.session_timeout = super::model::ms_duration(req.session_timeout_ms);
        member.rebalance_timeout = super::model::ms_duration(req.rebalance_timeout_ms);
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.last_heartbeat = now.instant;
        // A replaced request's client gets COORDINATOR_NOT_AVAILABLE from the dropped sender.
        member.awaiting_join = Some(tx);
        self.maybe_complete_join(group, now);
        Pending::Parked(rx)
    }

    /// Enters PreparingRebalance: cancels a sync phase in progress and sets the join deadline.
    pub(crate) fn prepare_rebalance(&self, group: &mut Group, now: Now) {
        if group.state == GroupState::CompletingRebalance {
            for member in group.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(tx) = member.awaiting_sync.take() {
                    let _ = tx.send(Err(ResponseError::RebalanceInProgress));
                }
            }
        }
        let rebalance_timeout = group.max_rebalance_timeout();
        let delay = self.config.initial_rebalance_delay;
        if group.state == GroupState::Empty && !delay.is_zero() {
            group.initial_delay = Some(InitialDelay {
                delay,
                remaining: rebalance_timeout.saturating_sub(delay),
                members_at_start: group.members.len(),
            });
            group.phase_deadline = Some(now.instant + delay);
        } else {
            group.initial_delay = None;
            group.phase_deadline = Some(now.instant + rebalance_timeout);
        }
        group.transition(GroupState::PreparingRebalance, now.wall_ms);
    }

    /// Completes the join phase if everyone rejoined or the deadline passed.
    pub(crate) fn maybe_complete_join(&self, group: &mut Group, now: Now) {
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let deadline_passed = group.phase_deadline.is_none_or(|d| now.instant >= d);
        if let Some(mut initial) = group.initial_delay {
            if !deadline_passed {
                return;
            }
            if group.members.len() > initial.members_at_start && !initial.remaining.is_zero() {
                // Members are still arriving: wait a little longer, within the rebalance timeout.
                let extension = initial.delay.min(initial.remaining);
                initial.remaining -= extension;
                initial.members_at_start = group.members.len();
                group.initial_delay = Some(initial);
                group.phase_deadline = Some(now.instant + extension);
                return;
            }
            self.complete_join(group, now);
        } else if deadline_passed || group.all_members_joined() {
            self.complete_join(group, now);
        }
    }

    /// Ends the join phase: drops members that did not rejoin, bumps the generation, selects the
    /// protocol and leader, and answers every parked JoinGroup.
    fn complete_join(&self, group: &mut Group, now: Now) {
        let stragglers: Vec<String> = group
            .members
            .values()
            .filter(|m| !m.is_awaiting_join())
            .map(|m| m.member_id.clone())
            .collect();
        for id in &stragglers {
            tracing::info!(group = %group.id, member = %id, "member did not rejoin in time; removing it");
            remove_member(group, id, ResponseError::UnknownMemberId);
        }
        group.initial_delay = None;
        group.generation = group.generation.wrapping_add(1);
        if group.members.is_empty() {
            group.protocol = None;
            group.leader = None;
            group.phase_deadline = None;
            group.transition(GroupState::Empty, now.wall_ms);
            let _ = self.persist_group(group, now);
            return;
        }
        group.protocol = group.select_protocol();
        let leader_present = group
            .leader
            .as_ref()
            .is_some_and(|l| group.members.contains_key(l));
        if !leader_present {
            group.leader = group.members.keys().next().cloned();
        }
        group.phase_deadline = Some(now.instant + group.max_rebalance_timeout());
        group.transition(GroupState::CompletingRebalance, now.wall_ms);
        tracing::info!(group = %group.id, generation = group.generation, members = group.members.len(),
            protocol = ?group.protocol, "join phase complete");
        let all_members = leader_members(group);
        let protocol = group.protocol.clone();
        let leader = group.leader.clone().unwrap_or_default();
        let protocol_type = group.protocol_type.clone();
        let generation_id = group.generation;
        for member in group.members.values_mut() {
            member.last_heartbeat = now.instant;
            if let Some(tx) = member.awaiting_join.take() {
                let members = if member.member_id == leader {
                    all_members.clone()
                } else {
                    Vec::new()
                };
                let _ = tx.send(JoinResult {
                    error: 0,
                    generation_id,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol.clone(),
                    leader: leader.clone(),
                    member_id: member.member_id.clone(),
                    members,
                });
            }
        }
    }

    /// SyncGroup: followers park until the leader's assignment arrives; the leader's request
    /// completes the rebalance. The returned [`Durable`] covers the group metadata write.
    pub fn sync(
        &self,
        who: MemberRef<'_>,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Now,
    ) -> (Pending<SyncResult>, Durable) {
        let fail = |e: ResponseError| (Pending::Ready(Err(e)), Durable::done());
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(who.group_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        if group.state == GroupState::Dead {
            return fail(ResponseError::CoordinatorNotAvailable);
        }
        if let Err(e) = validate_member(group, who.member_id, who.group_instance_id) {
            return fail(e);
        }
        if who.generation_id != group.generation {
            return fail(ResponseError::IllegalGeneration);
        }
        let type_mismatch =
            protocol_type.is_some_and(|t| group.protocol_type.as_deref() != Some(t));
        let name_mismatch = protocol_name.is_some_and(|n| group.protocol.as_deref() != Some(n));
        if type_mismatch || name_mismatch {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => fail(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => fail(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let assignment = group
                    .members
                    .get(who.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                (
                    Pending::Ready(Ok(sync_assignment(group, assignment))),
                    Durable::done(),
                )
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(member) = group.members.get_mut(who.member_id) {
                    member.awaiting_sync = Some(tx);
                    member.last_heartbeat = now.instant;
                }
                let durable = if group.leader.as_deref() == Some(who.member_id) {
                    self.complete_sync(group, assignments, now)
                } else {
                    Durable::done()
                };
                (Pending::Parked(rx), durable)
            }
        }
    }

    /// Applies the leader's assignment, moves the group to Stable, persists it and answers every
    /// parked SyncGroup.
    fn complete_sync(
        &self,
        group: &mut Group,
        assignments: Vec<(String, Bytes)>,
        now: Now,
    ) -> Durable {
        for member in group.members.values_mut() {
            member.assignment = Bytes::new();
        }
        for (member_id, assignment) in assignments {
            if let Some(member) = group.members.get_mut(&member_id) {
                member.assignment = assignment;
            }
        }
        group.phase_deadline = None;
        group.transition(GroupState::Stable, now.wall_ms);
        let durable = self.persist_group(group, now);
        let protocol_type = group.protocol_type.clone();
        let protocol_name = group.protocol.clone();
        for member in group.members.values_mut() {
            if let Some(tx) = member.awaiting_sync.take() {
                let _ = tx.send(Ok(SyncAssignment {
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment: member.assignment.clone(),
                }));
            }
        }
        tracing::info!(group = %group.id, generation = group.generation, "group stable");
        durable
    }

    /// Heartbeat: keeps the session alive and tells the member whether to rejoin.
    pub fn heartbeat(&self, who: MemberRef<'_>, now: Now) -> Result<(), ResponseError> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(who.group_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        match group.state {
            GroupState::Dead => return Err(ResponseError::CoordinatorNotAvailable),
            GroupState::Empty => return Err(ResponseError::UnknownMemberId),
            _ => {}
        }
        validate_member(group, who.member_id, who.group_instance_id)?;
        if who.generation_id != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        if let Some(member) = group.members.get_mut(who.member_id) {
            member.last_heartbeat = now.instant;
        }
        match group.state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// LeaveGroup: removes each listed member (by member id, or by instance id for static
    /// members); returns one result per member, or a group-level error.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
        now: Now,
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Ok(members
                .iter()
                .map(|_| Err(ResponseError::UnknownMemberId))
                .collect());
        };
        if group.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let mut removed = false;
        let results = members
            .iter()
            .map(|(member_id, instance_id)| {
                if instance_id.is_none() && group.pending.remove(member_id).is_some() {
                    return Ok(());
                }
                let member_id = match (member_id.as_str(), instance_id) {
                    ("", Some(iid)) => group
                        .static_members
                        .get(iid)
                        .cloned()
                        .ok_or(ResponseError::UnknownMemberId)?,
                    (id, _) => id.to_owned(),
                };
                validate_member(group, &member_id, instance_id.as_deref())?;
                tracing::info!(group = %group.id, member = %member_id, "member left the group");
                remove_member(group, &member_id, ResponseError::UnknownMemberId);
                removed = true;
                Ok(())
            })
            .collect();
        if removed {
            self.after_member_removed(group, now);
        }
        Ok(results)
    }

    /// Rebalances (or finishes the rebalance in progress) after members were removed.
    fn after_member_removed(&self, group: &mut Group, now: Now) {
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(group, now);
                self.maybe_complete_join(group, now);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(group, now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Applies every deadline due at `now` to `group`.
    pub(crate) fn check_deadlines(&self, group: &mut Group, now: Now) {
        let before = group.pending.len();
        group.pending.retain(|_, deadline| *deadline > now.instant);
        let pending_expired = group.pending.len() != before;

        let expired: Vec<String> = group
            .members
            .values()
            .filter(|m| m.session_expired(now.instant))
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %group.id, member = %id, "member session expired; removing it");
            remove_member(group, id, ResponseError::UnknownMemberId);
        }
        if !expired.is_empty() {
            self.after_member_removed(group, now);
        }

        let phase_over = group.phase_deadline.is_some_and(|d| now.instant >= d);
        match group.state {
            GroupState::PreparingRebalance if phase_over || pending_expired => {
                self.maybe_complete_join(group, now)
            }
            GroupState::CompletingRebalance if phase_over => {
                // The leader never sent its assignment: drop whoever did not sync and retry.
                let missing: Vec<String> = group
                    .members
                    .values()
                    .filter(|m| !m.is_awaiting_sync())
                    .map(|m| m.member_id.clone())
                    .collect();
                tracing::info!(group = %group.id, ?missing, "sync phase timed out");
                for id in &missing {
                    remove_member(group, id, ResponseError::UnknownMemberId);
                }
                self.prepare_rebalance(group, now);
                self.maybe_complete_join(group, now);
            }
            _ => {}
        }
    }
}

/// Removes a member, answering its parked requests with `error`.
pub(crate) fn remove_member(group: &mut Group, member_id: &str, error: ResponseError) {
    if let Some(mut member) = group.members.shift_remove(member_id) {
        if let Some(tx) = member.awaiting_join.take() {
            let _ = tx.send(JoinResult::error(error, member_id));
        }
        if let Some(tx) = member.awaiting_sync.take() {
            let _ = tx.send(Err(error));
        }
        if let Some(iid) = &member.group_instance_id {
            if group.static_members.get(iid).map(String::as_str) == Some(member_id) {
                group.static_members.remove(iid);
            }
        }
        if group.leader.as_deref() == Some(member_id) {
            group.leader = None;
        }
    }
}

/// The members list a leader receives.
fn leader_members(group: &Group) -> Vec<JoinedMember> {
    let protocol = group.protocol.as_deref().unwrap_or_default();
    group
        .members
        .values()
        .map(|m| JoinedMember {
            member_id: m.member_id.clone(),
            group_instance_id: m.group_instance_id.clone(),
            metadata: m.metadata_for(protocol),
        })
        .collect()
}

/// A JoinGroup answer describing the current generation (for a member that rejoins without
/// changes); the leader gets the members list again so it can redo the assignment.
fn current_join_result(group: &Group, member_id: &str) -> JoinResult {
    let leader = group.leader.clone().unwrap_or_default();
    JoinResult {
        error: 0,
        generation_id: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol.clone(),
        members: if leader == member_id {
            leader_members(group)
        } else {
            Vec::new()
        },
        leader,
        member_id: member_id.to_owned(),
    }
}

fn sync_assignment(group: &Group, assignment: Bytes) -> SyncAssignment {
    SyncAssignment {
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol.clone(),
        assignment,
    }
}
