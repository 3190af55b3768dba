//! Moves between log directories through the catalogue, with appends running.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::*;
use crate::meta::Metadata;

fn batch(i: i64) -> bytes::BytesMut {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_000,
        key: None,
        value: Some(bytes::Bytes::from(format!("{i:0>200}"))),
        headers: Default::default(),
    };
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, [&record], &options).expect("encode");
    buf
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn open(root: &Path) -> Metadata {
    let dirs = [root.join("a"), root.join("b")];
    let config = sluice_log::LogConfig {
        segment_bytes: 64 << 10,
        ..Default::default()
    };
    Metadata::open(&root.join("data"), &dirs, config).expect("open")
}

#[test]
fn a_partition_moves_while_appended_to_and_stays_moved() {
    let root = tempfile::tempdir().expect("tempdir");
    let meta = open(root.path());
    let (a, b) = (
        meta.log_dirs().dirs()[0].clone(),
        meta.log_dirs().dirs()[1].clone(),
    );
    let topic = meta
        .create_topic("orders", 4, 1, BTreeMap::new(), false)
        .expect("create");
    let homes: Vec<PathBuf> = topic
        .partitions
        .iter()
        .map(|p| meta.log_dir_of(p).expect("placed"))
        .collect();
    assert_eq!(homes, [&a, &b, &a, &b].map(|p| p.clone()), "spread evenly");
    let p0 = Arc::clone(&topic.partitions[0]);
    for i in 0..2_000 {
        p0.append(batch(i), 0).expect("append");
    }
    meta.move_partition(&p0, &b).expect("move");
    // Appends go on while the copy runs; the switch happens under them.
    let mut i = 2_000;
    while meta.log_dir_of(&p0).as_deref() != Some(b.as_path()) {
        p0.append(batch(i), 0).expect("append during the move");
        i += 1;
        assert!(i < 2_000_000, "the move never finished");
    }
    for _ in 0..100 {
        p0.append(batch(i), 0).expect("append after the move");
        i += 1;
    }
    wait_until("the move is gone from the status", || {
        meta.moves().is_empty()
    });
    assert!(!a.join("orders-0").exists(), "the old copy is removed");
    let entries = std::fs::read_dir(&b).expect("list").count();
    assert_eq!(entries, 3, "orders-0, -1, -3 and nothing else in b");
    let end = p0.with_log(|l| l.log_end_offset());
    assert_eq!(end, i);
    drop((topic, p0));
    meta.close().expect("close");
    let meta = open(root.path());
    let p0 = meta.partition("orders", 0).expect("partition");
    assert_eq!(meta.log_dir_of(&p0), Some(b.clone()));
    assert_eq!(p0.with_log(|l| l.log_end_offset()), end);
    let (bytes, _, _) = p0.read(end - 1, 1 << 20).expect("read the last record");
    assert!(bytes.len() > 200);
}

#[test]
fn moving_back_or_deleting_abandons_the_copy() {
    let root = tempfile::tempdir().expect("tempdir");
    let meta = open(root.path());
    let (a, b) = (
        meta.log_dirs().dirs()[0].clone(),
        meta.log_dirs().dirs()[1].clone(),
    );
    let topic = meta
        .create_topic("t", 1, 1, BTreeMap::new(), false)
        .expect("create");
    let p = Arc::clone(&topic.partitions[0]);
    for i in 0..200 {
        p.append(batch(i), 0).expect("append");
    }
    // Asking twice for the same place is one move; asking for home cancels it. The requests
    // are made holding the partition's lock, so the mover cannot switch the first move before
    // it is cancelled (a 40 KiB log is otherwise copied faster than the test can ask again).
    p.with_log(|_| {
        meta.move_partition(&p, &b).expect("move");
        meta.move_partition(&p, &b).expect("again");
        meta.move_partition(&p, &a).expect("back home");
    });
    assert!(meta.moves().is_empty());
    wait_until("the abandoned copy is removed", || {
        std::fs::read_dir(&b).expect("list").count() == 0 && !p.with_log(|l| l.is_relocating())
    });
    assert_eq!(meta.log_dir_of(&p), Some(a.clone()));
    // A topic deleted mid-move leaves nothing behind in either directory.
    meta.move_partition(&p, &b).expect("move");
    meta.delete_topic("t").expect("delete");
    wait_until("the deleted partition's copy is removed", || {
        std::fs::read_dir(&b).expect("list").count() == 0
    });
    assert_eq!(std::fs::read_dir(&a).expect("list").count(), 0);
    assert!(meta.moves().is_empty());
}

#[test]
fn a_partition_asked_for_before_it_exists_is_created_there() {
    let root = tempfile::tempdir().expect("tempdir");
    let meta = open(root.path());
    let b = meta.log_dirs().dirs()[1].clone();
    // Without a preference both partitions would start in the first (emptiest, then first)
    // directory and the second.
    meta.prefer_log_dir("later", 0, &b);
    meta.prefer_log_dir("later", 1, &b);
    let topic = meta
        .create_topic("later", 2, 1, BTreeMap::new(), false)
        .expect("create");
    for p in &topic.partitions {
        assert_eq!(meta.log_dir_of(p), Some(b.clone()));
    }
}
