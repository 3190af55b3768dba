//! Scenario tests of the coordinator's state machine, driven with explicit time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::*;
use crate::state_log::MemoryStateLog;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 20_000;

fn config(initial_delay_ms: u64) -> GroupConfig {
    GroupConfig {
        offsets_topic_partitions: 4,
        initial_rebalance_delay: Duration::from_millis(initial_delay_ms),
        ..GroupConfig::default()
    }
}

fn coordinator_on(log: Arc<MemoryStateLog>, initial_delay_ms: u64, now: Now) -> GroupCoordinator {
    GroupCoordinator::with_log(Box::new(log), config(initial_delay_ms), now)
        .expect("replay succeeds")
}

fn params(group: &str, member_id: &str, protocols: &[&str]) -> JoinParams {
    JoinParams {
        group_id: group.into(),
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| ((*p).to_owned(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
    }
}

fn ready<T: std::fmt::Debug>(p: Pending<T>) -> T {
    match p {
        Pending::Ready(v) => v,
        Pending::Parked(_) => panic!("expected an immediate answer"),
    }
}

fn parked<T>(p: Pending<T>) -> tokio::sync::oneshot::Receiver<T> {
    match p {
        Pending::Parked(rx) => rx,
        Pending::Ready(_) => panic!("expected the request to be parked"),
    }
}

/// Runs the v4+ two-step first join and returns the parked join.
fn first_join(
    c: &GroupCoordinator,
    p: JoinParams,
    now: Now,
) -> tokio::sync::oneshot::Receiver<JoinResult> {
    let required = ready(c.join(p.clone(), now));
    assert_eq!(required.error, ResponseError::MemberIdRequired.code());
    assert!(!required.member_id.is_empty());
    parked(c.join(
        JoinParams {
            member_id: required.member_id,
            ..p
        },
        now,
    ))
}

fn who<'a>(group: &'a str, generation: i32, member_id: &'a str) -> MemberRef<'a> {
    MemberRef {
        group_id: group,
        generation_id: generation,
        member_id,
        group_instance_id: None,
    }
}

/// Leader syncs assigning `"asg-<member>"` to everyone; returns the leader's assignment.
fn leader_sync(c: &GroupCoordinator, group: &str, join: &JoinResult, now: Now) -> Bytes {
    let assignments = join
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.clone(),
                Bytes::from(format!("asg-{}", m.member_id)),
            )
        })
        .collect();
    let (pending, _) = c.sync(
        who(group, join.generation_id, &join.member_id),
        None,
        None,
        assignments,
        now,
    );
    let mut rx = parked(pending);
    rx.try_recv()
        .expect("leader answered")
        .expect("sync ok")
        .assignment
}

fn state(c: &GroupCoordinator, group: &str) -> &'static str {
    c.describe(group).state
}

#[test]
fn single_member_forms_a_stable_group_after_the_initial_delay() {
    let c = coordinator_on(Arc::new(MemoryStateLog::new(4)), 100, Now::current());
    let t0 = Now::current();
    let mut rx = first_join(&c, params("g", "", &["range"]), t0);
    c.tick(t0.after(Duration::from_millis(50)));
    assert!(rx.try_recv().is_err(), "still inside the initial delay");
    assert_eq!(state(&c, "g"), "PreparingRebalance");
    c.tick(t0.after(Duration::from_millis(150)));
    let join = rx.try_recv().expect("join completed");
    assert_eq!(join.error, 0);
    assert_eq!(join.generation_id, 1);
    assert_eq!(join.leader, join.member_id);
    assert_eq!(join.protocol_name.as_deref(), Some("range"));
    assert_eq!(join.members.len(), 1);
    assert_eq!(join.members[0].metadata, Bytes::from("meta-range"));
    assert_eq!(state(&c, "g"), "CompletingRebalance");
    let asg = leader_sync(&c, "g", &join, t0.after(Duration::from_millis(200)));
    assert_eq!(asg, Bytes::from(format!("asg-{}", join.member_id)));
    assert_eq!(state(&c, "g"), "Stable");
    assert_eq!(
        c.heartbeat(
            who("g", 1, &join.member_id),
            t0.after(Duration::from_secs(1))
        ),
        Ok(())
    );
}

#[test]
fn followers_wait_for_the_leaders_assignment_and_new_members_trigger_a_rebalance() {
    let c = coordinator_on(Arc::new(MemoryStateLog::new(4)), 100, Now::current());
    let t0 = Now::current();
    let mut a = first_join(&c, params("g", "", &["range", "roundrobin"]), t0);
    let mut b = first_join(&c, params("g", "", &["roundrobin", "range"]), t0);
    c.tick(t0.after(Duration::from_millis(100)));
    // b arrived during the delay window after it was armed, so the delay is extended once.
    let t1 = t0.after(Duration::from_millis(250));
    c.tick(t1);
    let (ja, jb) = (
        a.try_recv().expect("a joined"),
        b.try_recv().expect("b joined"),
    );
    assert_eq!(ja.generation_id, jb.generation_id);
    assert_eq!(ja.leader, ja.member_id, "first member leads");
    assert_eq!(ja.members.len(), 2);
    assert!(jb.members.is_empty(), "followers do not see the members");
    assert_eq!(
        ja.protocol_name.as_deref(),
        Some("range"),
        "tie goes to the leader's preference"
    );

    let (pending, _) = c.sync(
        who("g", jb.generation_id, &jb.member_id),
        None,
        None,
        Vec::new(),
        t1,
    );
    let mut follower = parked(pending);
    assert!(follower.try_recv().is_err(), "waits for the leader");
    leader_sync(&c, "g", &ja, t1);
    let asg = follower.try_recv().expect("answered").expect("ok");
    assert_eq!(asg.assignment, Bytes::from(format!("asg-{}", jb.member_id)));
    assert_eq!(asg.protocol_name.as_deref(), Some("range"));

    // A third member: the others learn about it through their heartbeats and rejoin.
    let t2 = t1.after(Duration::from_secs(1));
    let mut cj = first_join(&c, params("g", "", &["range"]), t2);
    assert_eq!(
        c.heartbeat(who("g", ja.generation_id, &ja.member_id), t2),
        Err(ResponseError::RebalanceInProgress)
    );
    let mut a2 = parked(c.join(params("g", &ja.member_id, &["range", "roundrobin"]), t2));
    assert!(a2.try_recv().is_err());
    let mut b2 = parked(c.join(params("g", &jb.member_id, &["roundrobin", "range"]), t2));
    // Everyone rejoined: no need to wait for the rebalance timeout.
    let (ja2, jb2, jc) = (
        a2.try_recv().expect("a"),
        b2.try_recv().expect("b"),
        cj.try_recv().expect("c"),
    );
    assert_eq!(ja2.generation_id, ja.generation_id + 1);
    assert_eq!(jb2.generation_id, ja2.generation_id);
    assert_eq!(jc.generation_id, ja2.generation_id);
    assert_eq!(ja2.leader, ja.member_id, "the leader keeps its role");
    assert_eq!(ja2.members.len(), 3);
    // A commit with the old generation is fenced.
    let offsets = [OffsetToCommit {
        topic: "t".into(),
        partition: 0,
        offset: 5,
        leader_epoch: -1,
        metadata: String::new(),
    }];
    assert_eq!(
        c.commit(who("g", ja.generation_id, &ja.member_id), &offsets, t2)
            .err(),
        Some(ResponseError::IllegalGeneration)
    );
}

#[test]
fn a_member_that_stops_heartbeating_is_removed_and_the_rest_rebalance() {
    let c = coordinator_on(Arc::new(MemoryStateLog::new(4)), 0, Now::current());
    let t0 = Now::current();
    let mut a = first_join(&c, params("g", "", &["range"]), t0);
    let ja = a.try_recv().expect("no initial delay: completes at once");
    leader_sync(&c, "g", &ja, t0);
    let mut b = first_join(&c, params("g", "", &["range"]), t0);
    let ja2 = parked(c.join(params("g", &ja.member_id, &["range"]), t0))
        .try_recv()
        .expect("a rejoined");
    let jb = b.try_recv().expect("b joined");
    leader_sync(&c, "g", &ja2, t0);
    assert_eq!(state(&c, "g"), "Stable");

    // b keeps heartbeating, a goes silent.
    let mut t = t0;
    for _ in 0..12 {
        t = t.after(Duration::from_secs(1));
        let _ = c.heartbeat(who("g", jb.generation_id, &jb.member_id), t);
        c.tick(t);
    }
    let d = c.describe("g");
    assert_eq!(d.members.len(), 1, "a was expired");
    assert_eq!(d.members[0].member_id, jb.member_id);
    assert_eq!(
        c.heartbeat(who("g", jb.generation_id, &jb.member_id), t),
        Err(ResponseError::RebalanceInProgress)
    );
    let jb2 = parked(c.join(params("g", &jb.member_id, &["range"]), t))
        .try_recv()
        .expect("b alone completes the rebalance");
    assert_eq!(jb2.leader, jb.member_id, "leadership moved to the survivor");
    assert_eq!(
        c.heartbeat(who("g", ja2.generation_id, &ja.member_id), t),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let c = coordinator_on(Arc::new(MemoryStateLog::new(4)), 0, Now::current());
    let t0 = Now::current();
    let ja = first_join(&c, params("g", "", &["range"]), t0)
        .try_recv()
        .expect("a");
    leader_sync(&c, "g", &ja, t0);
    let mut b = first_join(&c, params("g", "", &["range"]), t0);
    // a heartbeats (so its session lives) but never rejoins.
    let mut t = t0;
    for _ in 0..25 {
        t = t.after(Duration::from_secs(1));
        let _ = c.heartbeat(who("g", ja.generation_id, &ja.member_id), t);
        c.tick(t);
    }
    let jb = b.try_recv().expect("completed at the rebalance timeout");
    assert_eq!(jb.leader, jb.member_id);
    assert_eq!(jb.members.len(), 1);
}

#[test]
fn bad_requests_get_kafka_errors_and_the_group_stays_healthy() {
    let c = coordinator_on(Arc::new(MemoryStateLog::new(4)), 0, Now::current());
    let t0 = Now::current();
    let ja = first_join(&c, params("g", "", &["range"]), t0)
        .try_recv()
        .expect("a");
    leader_sync(&c, "g", &ja, t0);

    let mut other_type = params("g", "", &["range"]);
    other_type.protocol_type = "connect".into();
    assert_eq!(
        ready(c.join(other_type, t0)).error,
        ResponseError::InconsistentGroupProtocol.code()
    );
    assert_eq!(
        ready(c.join(params("g", "", &["cooperative-sticky"]), t0)).error,
        ResponseError::InconsistentGroupProtocol.code()
    );
    let mut empty_type = params("fresh", "", &["range"]);
    empty_type.protocol_type = String::new();
    assert_eq!(
        ready(c.join(empty_type, t0)).error,
        ResponseError::InconsistentGroupProtocol.code()
    );
    let mut short_session = params("g", "", &["range"]);
    short_session.session_timeout_ms = 10;
    assert_eq!(
        ready(c.join(short_session, t0)).error,
        ResponseError::InvalidSessionTimeout.code()
    );
    assert_eq!(
        ready(c.join(params("", "", &["range"]), t0)).error,
        ResponseError::InvalidGroupId.code()
    );
    assert_eq!(
        ready(c.join(params("g", "nobody", &["range"]), t0)).error,
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(
        c.heartbeat(who("g", 1, "nobody"), t0),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        c.heartbeat(who("g", 7, &ja.member_id), t0),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        c.heartbeat(who("nogroup", 1, "x"), t0),
        Err(ResponseError::UnknownMemberId)
    );
    let (pending, _) = c.sync(who("g", 9, &ja.member_id), None, None, Vec::new(), t0);
    assert_eq!(ready(pending), Err(ResponseError::IllegalGeneration));
    let (pending, _) = c.sync(
        who("g", 1, &ja.member_id),
        Some("consumer"),
        Some("roundrobin"),
        Vec::new(),
        t0,
    );
    assert_eq!(
        ready(pending),
        Err(ResponseError::InconsistentGroupProtocol)
    );

    assert_eq!(state(&c, "g"), "Stable");
    assert_eq!(
        c.heartbeat(who("g", ja.generation_id, &ja.member_id), t0),
        Ok(())
    );
    let (pending, _) = c.sync(
        who("g", ja.generation_id, &ja.member_id),
        None,
        None,
        Vec::new(),
        t0,
    );
    assert_eq!(
        ready(pending).map(|s| s.assignment),
        Ok(Bytes::from(format!("asg-{}", ja.member_id)))
    );
}

#[test]
fn static_member_restart_keeps_its_assignment_without_a_rebalance() {
    let c = coordinator_on(Arc::new(MemoryStateLog::new(4)), 0, Now::current());
    let t0 = Now::current();
    let ja = first_join(&c, params("g", "", &["range"]), t0)
        .try_recv()
        .expect("a");
    leader_sync(&c, "g", &ja, t0);
    let mut static_params = params("g", "", &["range"]);
    static_params.group_instance_id = Some("inst-1".into());
    let mut sb = parked(c.join(static_params.clone(), t0));
    let ja2 = parked(c.join(params("g", &ja.member_id, &["range"]), t0))
        .try_recv()
        .expect("a rejoined");
    let jb = sb.try_recv().expect("static member joined");
    leader_sync(&c, "g", &ja2, t0);
    let generation = ja2.generation_id;

    // The static member restarts and rejoins with no member id.
    let jb2 = ready(c.join(static_params, t0));
    assert_eq!(jb2.error, 0);
    assert_ne!(jb2.member_id, jb.member_id);
    assert_eq!(jb2.generation_id, generation, "no rebalance");
    assert_eq!(state(&c, "g"), "Stable");
    let (pending, _) = c.sync(
        MemberRef {
            group_instance_id: Some("inst-1"),
            ..who("g", generation, &jb2.member_id)
        },
        None,
        None,
        Vec::new(),
        t0,
    );
    assert_eq!(
        ready(pending).map(|s| s.assignment),
        Ok(Bytes::from(format!("asg-{}", jb.member_id))),
        "the old incarnation's assignment is kept"
    );
    // The old incarnation is fenced.
    assert_eq!(
        c.heartbeat(
            MemberRef {
                group_instance_id: Some("inst-1"),
                ..who("g", generation, &jb.member_id)
            },
            t0
        ),
        Err(ResponseError::FencedInstanceId)
    );
    // Static members leave by instance id.
    let left = c
        .leave("g", &[(String::new(), Some("inst-1".into()))], t0)
        .expect("group exists");
    assert_eq!(left, vec![Ok(())]);
    assert_eq!(c.describe("g").members.len(), 1);
}

#[test]
fn batched_leave_empties_the_group() {
    let c = coordinator_on(Arc::new(MemoryStateLog::new(4)), 0, Now::current());
    let t0 = Now::current();
    let ja = first_join(&c, params("g", "", &["range"]), t0)
        .try_recv()
        .expect("a");
    leader_sync(&c, "g", &ja, t0);
    let results = c
        .leave(
            "g",
            &[(ja.member_id.clone(), None), ("ghost".into(), None)],
            t0,
        )
        .expect("group exists");
    assert_eq!(results, vec![Ok(()), Err(ResponseError::UnknownMemberId)]);
    assert_eq!(state(&c, "g"), "Empty");
    assert_eq!(c.list(&["empty".into()], &[]).len(), 1);
    assert!(c.list(&["Stable".into()], &[]).is_empty());
    assert!(
        c.list(&[], &["consumer".into()]).is_empty(),
        "only classic groups exist"
    );
}

#[test]
fn offsets_survive_a_restart_and_deleted_groups_stay_deleted() {
    let log = Arc::new(MemoryStateLog::new(4));
    let t0 = Now::current();
    let c = coordinator_on(log.clone(), 0, t0);
    let ja = first_join(&c, params("g", "", &["range"]), t0)
        .try_recv()
        .expect("a");
    leader_sync(&c, "g", &ja, t0);
    let offsets: Vec<OffsetToCommit> = (0..3)
        .map(|p| OffsetToCommit {
            topic: "t".into(),
            partition: p,
            offset: 100 + i64::from(p),
            leader_epoch: 2,
            metadata: "m".into(),
        })
        .collect();
    c.commit(who("g", ja.generation_id, &ja.member_id), &offsets, t0)
        .expect("commit ok");
    // Simple (generation -1) commits are refused while the group has members.
    assert_eq!(
        c.commit(who("g", -1, ""), &offsets, t0).err(),
        Some(ResponseError::UnknownMemberId)
    );
    c.commit(who("standalone", -1, ""), &offsets[..1], t0)
        .expect("simple commit");
    c.commit(who("doomed", -1, ""), &offsets[..1], t0)
        .expect("simple commit");
    assert_eq!(c.delete_group("g", t0), Err(ResponseError::NonEmptyGroup));
    assert_eq!(c.delete_group("doomed", t0), Ok(()));
    assert_eq!(
        c.delete_group("doomed", t0),
        Err(ResponseError::GroupIdNotFound)
    );

    let restarted = coordinator_on(log, 0, t0);
    let fetched = restarted.fetch_offsets("g", None);
    assert_eq!(fetched.len(), 1);
    let (topic, partitions) = &fetched[0];
    assert_eq!(topic, "t");
    let got: Vec<(i32, i64, i32)> = partitions
        .iter()
        .map(|(p, o)| {
            let o = o.as_ref().expect("committed");
            (*p, o.offset, o.leader_epoch)
        })
        .collect();
    assert_eq!(got, vec![(0, 100, 2), (1, 101, 2), (2, 102, 2)]);
    let d = restarted.describe("g");
    assert_eq!(d.state, "Stable", "membership is restored");
    assert_eq!(d.members.len(), 1);
    assert_eq!(
        d.members[0].assignment,
        Bytes::from(format!("asg-{}", ja.member_id))
    );
    assert_eq!(
        restarted.heartbeat(who("g", ja.generation_id, &ja.member_id), t0),
        Ok(()),
        "a running member keeps its generation across the restart"
    );
    assert_eq!(restarted.describe("doomed").state, "Dead");
    assert_eq!(
        restarted.fetch_offsets("standalone", Some(&[("t".into(), vec![0, 9])]))[0]
            .1
            .len(),
        2
    );
    let listed: Vec<String> = restarted
        .list(&[], &[])
        .into_iter()
        .map(|g| g.group_id)
        .collect();
    assert_eq!(listed, vec!["g".to_owned(), "standalone".to_owned()]);
}

#[test]
fn offsets_of_an_empty_group_expire_after_the_retention() {
    let log = Arc::new(MemoryStateLog::new(4));
    let t0 = Now::current();
    let c = GroupCoordinator::with_log(
        Box::new(log.clone()),
        GroupConfig {
            offsets_retention: Duration::from_secs(60),
            ..config(0)
        },
        t0,
    )
    .expect("replay");
    let ja = first_join(&c, params("g", "", &["range"]), t0)
        .try_recv()
        .expect("a");
    leader_sync(&c, "g", &ja, t0);
    let offsets = [OffsetToCommit {
        topic: "t".into(),
        partition: 0,
        offset: 1,
        leader_epoch: -1,
        metadata: String::new(),
    }];
    c.commit(who("g", ja.generation_id, &ja.member_id), &offsets, t0)
        .expect("commit");
    c.commit(who("simple", -1, ""), &offsets, t0)
        .expect("commit");
    // A group with members never expires, however old its offsets are.
    let mut t = t0;
    for _ in 0..10 {
        t = t.after(Duration::from_secs(5));
        let _ = c.heartbeat(who("g", ja.generation_id, &ja.member_id), t);
    }
    c.expire_offsets(t.after(Duration::from_secs(60)));
    assert_eq!(state(&c, "g"), "Stable");
    assert!(c.fetch_offsets("g", None).len() == 1);
    assert_eq!(
        state(&c, "simple"),
        "Dead",
        "simple commits expire by commit time"
    );

    c.leave("g", &[(ja.member_id.clone(), None)], t)
        .expect("leave");
    assert_eq!(state(&c, "g"), "Empty");
    c.expire_offsets(t.after(Duration::from_secs(30)));
    assert_eq!(c.fetch_offsets("g", None).len(), 1, "not yet");
    c.expire_offsets(t.after(Duration::from_secs(61)));
    assert!(c.fetch_offsets("g", None).is_empty());
    assert_eq!(state(&c, "g"), "Dead");

    let restarted = coordinator_on(log, 0, t);
    assert!(
        restarted.list(&[], &[]).is_empty(),
        "tombstones were persisted"
    );
}

#[test]
fn pending_member_ids_expire_and_unblock_the_rebalance() {
    let c = coordinator_on(Arc::new(MemoryStateLog::new(4)), 0, Now::current());
    let t0 = Now::current();
    let ja = first_join(&c, params("g", "", &["range"]), t0)
        .try_recv()
        .expect("a");
    leader_sync(&c, "g", &ja, t0);
    // Someone asks for a member id but never comes back.
    let required = ready(c.join(params("g", "", &["range"]), t0));
    assert_eq!(required.error, ResponseError::MemberIdRequired.code());
    assert_eq!(
        state(&c, "g"),
        "Stable",
        "asking for an id does not rebalance"
    );
    assert_eq!(
        c.leave("g", &[(required.member_id, None)], t0),
        Ok(vec![Ok(())])
    );
    assert_eq!(
        c.heartbeat(who("g", ja.generation_id, &ja.member_id), t0),
        Ok(())
    );
}
