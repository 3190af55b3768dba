use kafka_protocol::protocol::StrBytes;

use super::*;

fn topic(name: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(name))
}

fn req(name: &'static str, partition: i32, offset: i64) -> Requested {
    Requested {
        topic: topic(name),
        partition,
        fetch_offset: offset,
        max_bytes: 1024,
    }
}

fn alice() -> Arc<KafkaPrincipal> {
    Arc::new(KafkaPrincipal::user("alice"))
}

fn reported(hw: i64) -> Reported {
    Reported {
        high_watermark: hw,
        last_stable_offset: hw,
        log_start_offset: 0,
    }
}

fn open(sessions: &FetchSessions, owner: &Arc<KafkaPrincipal>, n: i32) -> i32 {
    let requested = (0..n).map(|p| req("t", p, 0)).collect();
    let begun = sessions
        .begin(0, INITIAL_EPOCH, owner, requested, &[])
        .expect("full fetch");
    let Kind::Full { session_id } = begun.kind else {
        panic!("a full fetch")
    };
    assert!(session_id > 0, "a session was opened");
    let fetched: Vec<_> = begun
        .partitions
        .iter()
        .map(|r| (r, reported(0), false))
        .collect();
    assert!(sessions
        .finish(begun.kind, &fetched)
        .iter()
        .all(|&listed| listed));
    session_id
}

#[test]
fn incremental_fetches_list_only_changed_partitions_and_rotate_them() {
    let sessions = FetchSessions::new(SessionLimits::default());
    let owner = alice();
    let id = open(&sessions, &owner, 3);

    // Nothing sent, nothing changed: the fetch covers all three, lists none.
    let begun = sessions.begin(id, 1, &owner, vec![], &[]).expect("epoch 1");
    assert_eq!(begun.kind, Kind::Incremental { session_id: id });
    assert_eq!(begun.partitions.len(), 3);
    let fetched: Vec<_> = begun
        .partitions
        .iter()
        .map(|r| (r, reported(0), false))
        .collect();
    assert_eq!(sessions.finish(begun.kind, &fetched), vec![false; 3]);

    // Partition 0 got records, partition 1's high watermark moved.
    let begun = sessions.begin(id, 2, &owner, vec![], &[]).expect("epoch 2");
    let fetched: Vec<_> = begun
        .partitions
        .iter()
        .map(|r| match r.partition {
            0 => (r, reported(5), true),
            1 => (r, reported(7), false),
            _ => (r, reported(0), false),
        })
        .collect();
    assert_eq!(
        sessions.finish(begun.kind, &fetched),
        vec![true, true, false]
    );

    // The client moves partition 0 on; listed partitions went to the back of the order.
    let begun = sessions
        .begin(id, 3, &owner, vec![req("t", 0, 5)], &[])
        .expect("epoch 3");
    let order: Vec<_> = begun.partitions.iter().map(|r| r.partition).collect();
    assert_eq!(order, vec![2, 0, 1]);
    assert_eq!(begun.partitions[1].fetch_offset, 5);
    // The high watermark the client already knows is not news.
    let fetched: Vec<_> = begun
        .partitions
        .iter()
        .map(|r| match r.partition {
            0 => (r, reported(5), false),
            1 => (r, reported(7), false),
            _ => (r, reported(0), false),
        })
        .collect();
    assert_eq!(sessions.finish(begun.kind, &fetched), vec![false; 3]);

    // Forgetting and adding partitions.
    let begun = sessions
        .begin(id, 4, &owner, vec![req("u", 9, 0)], &[(topic("t"), 2)])
        .expect("epoch 4");
    let names: Vec<_> = begun
        .partitions
        .iter()
        .map(|r| (r.topic.0.to_string(), r.partition))
        .collect();
    assert_eq!(
        names,
        vec![("t".into(), 0), ("t".into(), 1), ("u".into(), 9)]
    );
}

#[test]
fn wrong_epochs_unknown_ids_and_other_principals_are_refused() {
    let sessions = FetchSessions::new(SessionLimits::default());
    let owner = alice();
    let id = open(&sessions, &owner, 1);
    assert_eq!(
        sessions.begin(id, 2, &owner, vec![], &[]).unwrap_err(),
        ResponseError::InvalidFetchSessionEpoch
    );
    assert_eq!(
        sessions.begin(id + 1, 1, &owner, vec![], &[]).unwrap_err(),
        ResponseError::FetchSessionIdNotFound
    );
    let mallory = Arc::new(KafkaPrincipal::user("mallory"));
    assert_eq!(
        sessions.begin(id, 1, &mallory, vec![], &[]).unwrap_err(),
        ResponseError::FetchSessionIdNotFound
    );
    // The right epoch still works after the refusals.
    assert!(sessions.begin(id, 1, &owner, vec![], &[]).is_ok());
    // Closing: epoch -1 ends the session and fetches sessionless.
    let begun = sessions
        .begin(id, FINAL_EPOCH, &owner, vec![req("t", 0, 0)], &[])
        .expect("close");
    assert_eq!(begun.kind, Kind::Full { session_id: 0 });
    assert!(sessions.is_empty());
}

#[test]
fn a_full_cache_evicts_idle_sessions_or_refuses_new_ones() {
    let limits = SessionLimits {
        max_sessions: 2,
        max_partitions: 10,
        eviction_idle: Duration::from_millis(50),
    };
    let sessions = FetchSessions::new(limits);
    let owner = alice();
    let first = open(&sessions, &owner, 4);
    open(&sessions, &owner, 4);
    // Full, and nobody idle long enough: no session, a plain full fetch.
    let begun = sessions
        .begin(0, INITIAL_EPOCH, &owner, vec![req("t", 0, 0)], &[])
        .expect("full");
    assert_eq!(begun.kind, Kind::Full { session_id: 0 });
    // Too many partitions for the cache at all.
    let many = (0..11).map(|p| req("t", p, 0)).collect();
    let begun = sessions
        .begin(0, INITIAL_EPOCH, &owner, many, &[])
        .expect("full");
    assert_eq!(begun.kind, Kind::Full { session_id: 0 });
    assert_eq!(begun.partitions.len(), 11);
    // Once idle, the least recently used session makes room.
    std::thread::sleep(Duration::from_millis(60));
    sessions
        .begin(first, 1, &owner, vec![], &[])
        .expect("touch");
    let third = open(&sessions, &owner, 2);
    assert_eq!(sessions.len(), 2);
    assert!(sessions.begin(first, 2, &owner, vec![], &[]).is_ok());
    assert!(third != first);
    // A session growing past the partition bound is ended.
    let grow = (10..20).map(|p| req("t", p, 0)).collect();
    assert_eq!(
        sessions.begin(first, 3, &owner, grow, &[]).unwrap_err(),
        ResponseError::FetchSessionIdNotFound
    );
    assert_eq!(sessions.len(), 1);
}

#[test]
fn epochs_wrap_past_zero_and_minus_one() {
    assert_eq!(next_epoch(1), 2);
    assert_eq!(next_epoch(i32::MAX), 1);
}
