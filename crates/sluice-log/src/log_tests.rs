//! Tests of `PartitionLog` through its public API.

use bytes::BytesMut;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use crate::batch::test_util::{batch_with, simple_batch};
use crate::{AppendOutcome, CleanupPolicy, LogConfig, LogError, PartitionLog, TimestampType};

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn appended(o: AppendOutcome) -> (i64, i64) {
    match o {
        AppendOutcome::Appended {
            base_offset,
            last_offset,
            ..
        } => (base_offset, last_offset),
        other => panic!("expected Appended, got {other:?}"),
    }
}

/// Decodes everything a read returns into (offset, value) pairs.
fn decode_all(bytes: bytes::Bytes) -> Vec<(i64, Option<Vec<u8>>)> {
    let mut b = bytes;
    let mut out = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut b).unwrap() {
        for r in set.records {
            out.push((r.offset, r.value.map(|v| v.to_vec())));
        }
    }
    out
}

fn batch_of(values: &[&str], ts: i64) -> BytesMut {
    let recs: Vec<_> = values
        .iter()
        .map(|v| (Some(v.as_bytes().to_vec()), Some(v.as_bytes().to_vec()), ts))
        .collect();
    batch_with(&recs, -1, -1, -1, Compression::None)
}

#[test]
fn append_then_read_roundtrip_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    let mut expected = Vec::new();
    for i in 0..200 {
        let v = format!("value-{i}");
        let (b, l) = appended(log.append(batch_of(&[&v], 1000 + i), 5000).unwrap());
        assert_eq!((b, l), (i, i));
        expected.push((i, Some(v.into_bytes())));
    }
    assert!(log.segment_count() > 2, "small segment.bytes must roll");
    let all = log.read(0, usize::MAX).unwrap();
    assert_eq!(decode_all(all.read().unwrap()), expected);
    // Mid-log reads start at the batch containing the offset.
    for start in [1, 57, 123, 199] {
        let r = log.read(start, 1).unwrap();
        let got = decode_all(r.read().unwrap());
        assert_eq!(got[0].0, start);
        assert_eq!(
            got.len(),
            1,
            "max_bytes=1 still returns exactly one whole batch"
        );
    }
    assert!(log.read(200, 100).unwrap().is_empty());
    assert!(matches!(
        log.read(201, 100),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    log.close().unwrap();

    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), 200);
    assert_eq!(
        decode_all(log.read(0, usize::MAX).unwrap().read().unwrap()),
        expected
    );
}

#[test]
fn read_respects_max_bytes_with_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let one = batch_of(&["abcdefgh"], 1).len();
    for _ in 0..100 {
        log.append(batch_of(&["abcdefgh"], 1), 1).unwrap();
    }
    let r = log.read(10, one * 7 + 3).unwrap();
    assert_eq!(r.len(), one * 7);
    let got = decode_all(r.read().unwrap());
    assert_eq!(got.first().map(|g| g.0), Some(10));
    assert_eq!(got.len(), 7);
}

#[test]
fn multi_record_batches_and_fetch_mid_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(
        appended(log.append(simple_batch(5, 10), 0).unwrap()),
        (0, 4)
    );
    assert_eq!(
        appended(log.append(simple_batch(3, 10), 0).unwrap()),
        (5, 7)
    );
    let got = decode_all(log.read(6, 1).unwrap().read().unwrap());
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![5, 6, 7]);
}

#[test]
fn corrupt_or_oversized_set_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    log.append(simple_batch(2, 1), 0).unwrap();
    let size = log.size_bytes();
    let mut set = simple_batch(2, 1);
    let mut bad = simple_batch(2, 1);
    let n = bad.len();
    bad[n - 2] ^= 0x40;
    set.extend_from_slice(&bad);
    assert!(matches!(log.append(set, 0), Err(LogError::CorruptBatch(_))));
    let cfg = LogConfig {
        max_message_bytes: 100,
        ..LogConfig::default()
    };
    log.set_config(cfg);
    assert!(matches!(
        log.append(simple_batch(20, 1), 0),
        Err(LogError::MessageTooLarge { .. })
    ));
    assert_eq!(log.size_bytes(), size);
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn torn_tail_is_truncated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    for _ in 0..10 {
        log.append(simple_batch(3, 1), 0).unwrap();
    }
    let one = simple_batch(3, 1).len() as u64;
    drop(log); // crash: no clean close
    let seg = dir.path().join("00000000000000000000.log");
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(one * 10 - 7).unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), 27);
    assert_eq!(log.size_bytes(), one * 9);
    assert_eq!(
        decode_all(log.read(0, usize::MAX).unwrap().read().unwrap()).len(),
        27
    );
}

#[test]
fn missing_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..100 {
        log.append(batch_of(&["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"], i), 0)
            .unwrap();
    }
    log.close().unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension()
            .is_some_and(|x| x == "index" || x == "timeindex")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), 100);
    assert_eq!(log.offset_for_timestamp(42).unwrap(), Some((42, 42)));
    let got = decode_all(log.read(77, 1).unwrap().read().unwrap());
    assert_eq!(got[0].0, 77);
}

#[test]
fn timestamps_lookup_and_max() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config()).unwrap();
    // Batches of 3 records with timestamps t, t+1, t+2 for t = 0, 10, 20, ...
    for i in 0..100i64 {
        let recs: Vec<_> = (0..3)
            .map(|j| (Some(vec![j as u8]), Some(vec![1u8; 40]), i * 10 + j))
            .collect();
        log.append(batch_with(&recs, -1, -1, -1, Compression::None), 0)
            .unwrap();
    }
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 0)));
    assert_eq!(log.offset_for_timestamp(501).unwrap(), Some((151, 501)));
    assert_eq!(log.offset_for_timestamp(505).unwrap(), Some((153, 510)));
    assert_eq!(log.offset_for_timestamp(992).unwrap(), Some((299, 992)));
    assert_eq!(log.offset_for_timestamp(993).unwrap(), None);
    assert_eq!(log.max_timestamp(), Some((299, 992)));
}

#[test]
fn log_append_time_is_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), cfg).unwrap();
    match log.append(simple_batch(2, 5), 12345).unwrap() {
        AppendOutcome::Appended {
            log_append_time, ..
        } => assert_eq!(log_append_time, 12345),
        other => panic!("{other:?}"),
    }
    assert_eq!(log.max_timestamp(), Some((0, 12345)));
    let mut bytes = log.read(0, 1000).unwrap().read().unwrap();
    let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
    assert_eq!(sets.len(), 1);
}

fn idem(pid: i64, epoch: i16, seq: i32, n: usize) -> BytesMut {
    let recs: Vec<_> = (0..n).map(|i| (None, Some(vec![i as u8]), 1)).collect();
    batch_with(&recs, pid, epoch, seq, Compression::None)
}

#[test]
fn idempotent_duplicates_gaps_and_epochs_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let mut seq = 0;
    let mut offsets = Vec::new();
    for _ in 0..6 {
        offsets.push(appended(log.append(idem(7, 0, seq, 2), 0).unwrap()));
        seq += 2;
    }
    // Retry of the 2nd batch (within the last five) returns its original offsets.
    assert_eq!(
        log.append(idem(7, 0, 2, 2), 0).unwrap(),
        AppendOutcome::Duplicate {
            base_offset: offsets[1].0,
            last_offset: offsets[1].1,
            log_start_offset: 0
        }
    );
    // Too old to be remembered: out of order.
    assert!(matches!(
        log.append(idem(7, 0, 0, 2), 0),
        Err(LogError::OutOfOrderSequence { .. })
    ));
    assert!(matches!(
        log.append(idem(7, 0, 14, 2), 0),
        Err(LogError::OutOfOrderSequence { expected: 12, .. })
    ));
    let end = log.log_end_offset();
    for crash in [false, true] {
        if crash {
            drop(log);
        } else {
            log.close().unwrap();
        }
        log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        assert_eq!(log.log_end_offset(), end);
        assert!(matches!(
            log.append(idem(7, 0, 10, 2), 0).unwrap(),
            AppendOutcome::Duplicate { .. }
        ));
        assert!(matches!(
            log.append(idem(7, 0, 13, 2), 0),
            Err(LogError::OutOfOrderSequence { .. })
        ));
    }
    assert!(matches!(
        log.append(idem(7, 1, 3, 1), 0),
        Err(LogError::OutOfOrderSequence { expected: 0, .. })
    ));
    appended(log.append(idem(7, 1, 0, 1), 0).unwrap());
    assert!(matches!(
        log.append(idem(7, 0, 12, 1), 0),
        Err(LogError::InvalidProducerEpoch { .. })
    ));
}

#[test]
fn sync_handle_and_mark_synced() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(log.sync_handle().is_none());
    for _ in 0..100 {
        log.append(
            batch_of(&["0123456789012345678901234567890123456789"], 1),
            0,
        )
        .unwrap();
    }
    let h = log.sync_handle().unwrap();
    assert_eq!(h.end_offset, 100);
    assert!(
        h.files.len() > 1,
        "rolled segments and the directory are included"
    );
    h.sync().unwrap();
    log.mark_synced(&h);
    assert_eq!(log.synced_offset(), 100);
    assert!(log.sync_handle().is_none());
    log.append(simple_batch(1, 1), 0).unwrap();
    assert_eq!(log.sync_handle().unwrap().files.len(), 1);
}

#[test]
fn visible_after_sync_hides_unsynced_records_from_readers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        visible_after_sync: true,
        ..small_config()
    };
    let mut log = PartitionLog::open(dir.path(), cfg.clone()).unwrap();
    // Enough appends to roll several segments before the first sync.
    for _ in 0..60 {
        log.append(
            batch_of(&["0123456789012345678901234567890123456789"], 1),
            0,
        )
        .unwrap();
    }
    assert_eq!(log.log_end_offset(), 60);
    assert_eq!(log.high_watermark(), 0);
    let r = log.read(0, 1 << 20).unwrap();
    assert!(r.is_empty(), "nothing is visible before the first sync");
    assert_eq!(r.high_watermark, 0);

    let h = log.sync_handle().unwrap();
    // Written after the handle was taken: not covered by this sync.
    log.append(simple_batch(1, 1), 0).unwrap();
    h.sync().unwrap();
    assert!(log.mark_synced(&h));
    assert_eq!(log.high_watermark(), 60);
    let r = log.read(0, 1 << 20).unwrap();
    let bytes = r.read().unwrap();
    assert_eq!(r.high_watermark, 60);
    assert_eq!(
        crate::batch::validate_record_set(&bytes, &unlimited())
            .unwrap()
            .len(),
        60
    );
    // Reading at the watermark (below the log end) is empty, not out of range.
    assert!(log.read(60, 1 << 20).unwrap().is_empty());
    assert!(matches!(
        log.delete_records_before(61),
        Err(LogError::OffsetOutOfRange { .. })
    ));

    let h = log.sync_handle().unwrap();
    h.sync().unwrap();
    assert!(log.mark_synced(&h));
    assert!(
        !log.mark_synced(&h),
        "a repeated mark does not move the watermark"
    );
    assert!(!log.read(60, 1 << 20).unwrap().read().unwrap().is_empty());

    // After a restart everything recovered is visible.
    log.close().unwrap();
    let log = PartitionLog::open(dir.path(), cfg).unwrap();
    assert_eq!(log.high_watermark(), 61);
}

#[test]
fn delete_records_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..200 {
        log.append(
            batch_of(&["0123456789012345678901234567890123456789"], i),
            0,
        )
        .unwrap();
    }
    let segs = log.segment_count();
    assert_eq!(log.delete_records_before(50).unwrap(), 50);
    assert!(log.segment_count() < segs);
    assert!(matches!(
        log.read(49, 10),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    let got = decode_all(log.read(50, 1).unwrap().read().unwrap());
    assert_eq!(got[0].0, 50);
    drop(log);
    let mut log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 50);

    // Time retention: segments whose newest timestamp is older than the cutoff go.
    let cfg = LogConfig {
        retention_ms: 100,
        ..small_config()
    };
    log.set_config(cfg);
    let removed = log.enforce_retention(250).unwrap();
    assert!(removed > 0);
    assert!(log.log_start_offset() > 50 && log.log_start_offset() <= 150);
    // Size retention keeps at most about retention.bytes.
    let cfg = LogConfig {
        retention_ms: -1,
        retention_bytes: 5000,
        ..small_config()
    };
    log.set_config(cfg);
    log.enforce_retention(0).unwrap();
    assert!(log.size_bytes() <= 5000 + 4096);
    assert_eq!(log.log_end_offset(), 200);
    let compact_only = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        retention_bytes: 0,
        ..small_config()
    };
    log.set_config(compact_only);
    assert_eq!(log.enforce_retention(0).unwrap(), 0);
}

#[test]
fn time_based_roll() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), cfg).unwrap();
    log.maybe_roll(0).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(simple_batch(1, 1), 10_000).unwrap();
    log.maybe_roll(10_500).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.maybe_roll(11_000).unwrap();
    assert_eq!(log.segment_count(), 2);
    log.append(simple_batch(1, 1), 11_001).unwrap();
    log.append(simple_batch(1, 1), 12_500).unwrap();
    assert_eq!(log.segment_count(), 3);
}

#[test]
fn delete_removes_directory() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t-0");
    let mut log = PartitionLog::open(&p, LogConfig::default()).unwrap();
    log.append(simple_batch(1, 1), 0).unwrap();
    log.delete().unwrap();
    assert!(!p.exists());
}

/// Every (offset, key, value, headers) a read returns.
type Full = Vec<(i64, Option<Vec<u8>>, Option<Vec<u8>>, usize)>;

fn decode_full(bytes: bytes::Bytes) -> Full {
    let mut b = bytes;
    RecordBatchDecoder::decode_all(&mut b)
        .unwrap()
        .into_iter()
        .flat_map(|s| s.records)
        .map(|r| {
            (
                r.offset,
                r.key.map(|k| k.to_vec()),
                r.value.map(|v| v.to_vec()),
                r.headers.len(),
            )
        })
        .collect()
}

#[test]
fn compaction_keeps_latest_per_key_and_drops_old_tombstones() {
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            delete_retention_ms: 1000,
            ..small_config()
        };
        let mut log = PartitionLog::open(dir.path(), cfg.clone()).unwrap();
        // 60 batches of 4 records over keys k0..k9; key k3 gets a tombstone at ts 100 (old),
        // key k4 a tombstone at ts 10_000 (recent).
        let mut expect: std::collections::BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> =
            Default::default();
        let mut offset = 0i64;
        for b in 0..60 {
            let recs: Vec<_> = (0..4)
                .map(|j| {
                    let k = format!("k{}", (b * 4 + j) % 10).into_bytes();
                    let v = format!("value-{b}-{j}-padding-padding").into_bytes();
                    (Some(k), Some(v), 100)
                })
                .collect();
            for r in &recs {
                expect.insert(r.0.clone().unwrap(), (offset, r.1.clone()));
                offset += 1;
            }
            log.append(batch_with(&recs, 5, 0, b * 4, codec), 0)
                .unwrap();
        }
        let tomb = vec![
            (Some(b"k3".to_vec()), None, 100),
            (Some(b"k4".to_vec()), None, 10_000),
        ];
        log.append(batch_with(&tomb, 5, 0, 240, codec), 0).unwrap();
        expect.insert(b"k3".to_vec(), (offset, None));
        expect.insert(b"k4".to_vec(), (offset + 1, None));
        // Roll so everything is in closed segments; keep one batch in the active segment.
        log.maybe_roll(i64::MAX).unwrap();
        log.append(simple_batch(1, 20_000), 0).unwrap();
        let end = log.log_end_offset();
        let before = decode_full(log.read(0, usize::MAX).unwrap().read().unwrap()).len();

        let removed = log.compact(10_500).unwrap();
        let after = decode_full(log.read(0, usize::MAX).unwrap().read().unwrap());
        assert_eq!(removed as usize, before - after.len(), "{codec:?}");
        let (active, compacted): (Vec<_>, Vec<_>) = after.into_iter().partition(|r| r.0 >= end - 1);
        assert_eq!(active.len(), 1);
        let mut want: Vec<_> = expect
            .iter()
            .filter(|(k, _)| k.as_slice() != b"k3")
            .map(|(k, (o, v))| (*o, Some(k.clone()), v.clone(), 0))
            .collect();
        want.sort();
        assert_eq!(compacted, want, "{codec:?}");
        assert_eq!(log.log_end_offset(), end);
        // Idempotent producer state is kept: the next sequence continues.
        let next = vec![(Some(b"k1".to_vec()), Some(b"x".to_vec()), 1)];
        appended(log.append(batch_with(&next, 5, 0, 242, codec), 0).unwrap());
        // Compacting again removes nothing more; data survives a restart and a crash.
        assert_eq!(log.compact(10_500).unwrap(), 0);
        // The recent tombstone (ts 10_000) goes once delete.retention.ms has passed.
        assert_eq!(log.compact(10_999).unwrap(), 0);
        assert_eq!(log.compact(11_001).unwrap(), 1, "{codec:?}");
        assert_eq!(log.compact(11_002).unwrap(), 0);
        let snapshot = decode_full(log.read(0, usize::MAX).unwrap().read().unwrap());
        drop(log);
        let log = PartitionLog::open(dir.path(), cfg).unwrap();
        assert_eq!(
            decode_full(log.read(0, usize::MAX).unwrap().read().unwrap()),
            snapshot
        );
        // Fetch from an offset removed by compaction returns the next surviving batch.
        let r = decode_full(log.read(1, 1).unwrap().read().unwrap());
        assert!(r[0].0 >= 1);
    }
}

#[test]
fn compaction_respects_min_lag_and_delete_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..50 {
        log.append(batch_of(&["same-key-same-key-same-key"], i), 0)
            .unwrap();
    }
    log.maybe_roll(i64::MAX).unwrap();
    assert_eq!(
        log.compact(1_000).unwrap(),
        0,
        "policy delete never compacts"
    );
    log.set_config(LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        min_compaction_lag_ms: 10_000,
        ..small_config()
    });
    assert_eq!(log.compact(1_000).unwrap(), 0, "too recent");
    assert_eq!(log.compact(100_000).unwrap(), 49);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn batch_strategy() -> impl Strategy<Value = Vec<crate::batch::test_util::TestRecord>> {
        proptest::collection::vec(
            (
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
                0i64..1_000_000,
            ),
            1..8,
        )
    }

    fn codec_strategy() -> impl Strategy<Value = Compression> {
        prop_oneof![
            Just(Compression::None),
            Just(Compression::Gzip),
            Just(Compression::Snappy),
            Just(Compression::Lz4),
            Just(Compression::Zstd),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// What is appended is read back byte-identical (after offset stamping), from any offset.
        #[test]
        fn append_read_roundtrip(
            batches in proptest::collection::vec((batch_strategy(), codec_strategy()), 1..40),
            interval in 0u32..2048,
            from in any::<prop::sample::Index>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let cfg = LogConfig { segment_bytes: 3000, index_interval_bytes: interval, ..LogConfig::default() };
            let mut log = PartitionLog::open(dir.path(), cfg.clone()).unwrap();
            let mut stored = Vec::new();
            let mut bounds = Vec::new();
            for (recs, codec) in &batches {
                let b = batch_with(recs, -1, -1, -1, *codec);
                let (base, last) = appended(log.append(b.clone(), 0).unwrap());
                let mut expected = b.to_vec();
                expected[..8].copy_from_slice(&base.to_be_bytes());
                expected[12..16].copy_from_slice(&0i32.to_be_bytes());
                bounds.push((base, last, stored.len()));
                stored.extend_from_slice(&expected);
            }
            prop_assert_eq!(&log.read(0, usize::MAX).unwrap().read().unwrap()[..], &stored[..]);
            let end = log.log_end_offset();
            let offset = from.index(end as usize) as i64;
            let (_, _, pos) = bounds.iter().copied().find(|(_, l, _)| *l >= offset).unwrap();
            let got = log.read(offset, usize::MAX).unwrap().read().unwrap();
            prop_assert_eq!(&got[..], &stored[pos..]);
            drop(log);
            let log = PartitionLog::open(dir.path(), cfg).unwrap();
            prop_assert_eq!(log.log_end_offset(), end);
            prop_assert_eq!(&log.read(0, usize::MAX).unwrap().read().unwrap()[..], &stored[..]);
        }

        /// ListOffsets by timestamp agrees with a brute-force scan, timestamps in any order.
        #[test]
        fn offset_for_timestamp_matches_brute_force(
            batches in proptest::collection::vec(proptest::collection::vec(0i64..1000, 1..6), 1..60),
            targets in proptest::collection::vec(0i64..1100, 1..10),
            interval in 0u32..512,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let cfg = LogConfig { segment_bytes: 2000, index_interval_bytes: interval, ..LogConfig::default() };
            let mut log = PartitionLog::open(dir.path(), cfg).unwrap();
            let mut all = Vec::new();
            for tss in &batches {
                let recs: Vec<_> = tss.iter().map(|t| (None, Some(vec![0u8; 30]), *t)).collect();
                let (base, _) = appended(log.append(batch_with(&recs, -1, -1, -1, Compression::None), 0).unwrap());
                all.extend(tss.iter().enumerate().map(|(i, t)| (base + i as i64, *t)));
            }
            for t in targets {
                let want = all.iter().copied().find(|(_, ts)| *ts >= t);
                prop_assert_eq!(log.offset_for_timestamp(t).unwrap(), want);
            }
            let max = all.iter().map(|a| a.1).max().unwrap();
            prop_assert_eq!(log.max_timestamp(), all.iter().copied().find(|a| a.1 == max));
        }

        /// Idempotence decisions are the same before and after a clean or crashed restart:
        /// retries of the last five batches are duplicates with their original offsets, older
        /// retries and gaps are out of order.
        #[test]
        fn producer_state_survives_restarts(
            ops in proptest::collection::vec((0i64..2, 0u8..10, 1usize..4), 1..60),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let cfg = LogConfig { segment_bytes: 1500, index_interval_bytes: 200, ..LogConfig::default() };
            let mut log = Some(PartitionLog::open(dir.path(), cfg.clone()).unwrap());
            // Per producer: (first_seq, last_seq, base_offset, last_offset) of appended batches.
            let mut history: [Vec<(i32, i32, i64, i64)>; 2] = [Vec::new(), Vec::new()];
            for (pid, op, n) in ops {
                let h = &mut history[pid as usize];
                let next_seq = h.last().map_or(0, |b| b.1 + 1);
                let l = log.as_mut().unwrap();
                match op {
                    0..=4 => {
                        let (b, last) = appended(l.append(idem(pid, 0, next_seq, n), 0).unwrap());
                        h.push((next_seq, next_seq + n as i32 - 1, b, last));
                    }
                    5..=6 if !h.is_empty() => {
                        let back = if op == 5 { 2 % h.len() } else { 6 % h.len() };
                        let (fs, ls, bo, lo) = h[h.len() - 1 - back];
                        let res = l.append(idem(pid, 0, fs, (ls - fs + 1) as usize), 0);
                        if back < 5 {
                            prop_assert_eq!(res.unwrap(), AppendOutcome::Duplicate {
                                base_offset: bo, last_offset: lo, log_start_offset: 0 });
                        } else {
                            let out_of_order = matches!(res, Err(LogError::OutOfOrderSequence { .. }));
                            prop_assert!(out_of_order);
                        }
                    }
                    7 if !h.is_empty() => {
                        let res = l.append(idem(pid, 0, next_seq + 1, 1), 0);
                        let out_of_order = matches!(res, Err(LogError::OutOfOrderSequence { .. }));
                        prop_assert!(out_of_order);
                    }
                    8 => {
                        log.take().unwrap().close().unwrap();
                        log = Some(PartitionLog::open(dir.path(), cfg.clone()).unwrap());
                    }
                    _ => {
                        drop(log.take());
                        log = Some(PartitionLog::open(dir.path(), cfg.clone()).unwrap());
                    }
                }
            }
        }

        /// Cutting the active segment at any byte loses only the batches not wholly before the cut.
        #[test]
        fn recovery_after_truncation_loses_only_torn_tail(
            sizes in proptest::collection::vec(1usize..6, 1..30),
            cut in any::<prop::sample::Index>(),
            clean in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let cfg = LogConfig { index_interval_bytes: 128, ..LogConfig::default() };
            let mut log = PartitionLog::open(dir.path(), cfg.clone()).unwrap();
            let mut ends = Vec::new();
            let mut total = 0u64;
            for n in &sizes {
                let b = simple_batch(*n, 7);
                total += b.len() as u64;
                let (_, last) = appended(log.append(b, 0).unwrap());
                ends.push((total, last + 1));
            }
            if clean { log.close().unwrap(); } else { drop(log); }
            let cut = cut.index(total as usize + 1) as u64;
            let seg = dir.path().join("00000000000000000000.log");
            std::fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();
            let (size, leo) = ends.iter().rev().copied().find(|(e, _)| *e <= cut).unwrap_or((0, 0));
            let mut log = PartitionLog::open(dir.path(), cfg).unwrap();
            prop_assert_eq!(log.log_end_offset(), leo);
            prop_assert_eq!(log.size_bytes(), size);
            prop_assert_eq!(log.read(0, usize::MAX).unwrap().len() as u64, size);
            // The log stays appendable right after the cut.
            let (base, _) = appended(log.append(simple_batch(1, 7), 0).unwrap());
            prop_assert_eq!(base, leo);
        }

        /// Garbage, or a valid batch with a byte changed, never panics append and never
        /// changes the log when rejected.
        #[test]
        fn append_of_mutated_input_is_all_or_nothing(
            pos in any::<prop::sample::Index>(),
            val in any::<u8>(),
            garbage in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
            let mut b = simple_batch(3, 9);
            let i = pos.index(b.len());
            let changed = b[i] != val;
            b[i] = val;
            let res = log.append(b, 0);
            // Bytes 0..17 (offset, length, epoch, magic) are either overwritten or checked
            // structurally; from the CRC on, any change must be rejected.
            if changed && i >= 17 {
                prop_assert!(res.is_err());
            }
            if res.is_err() {
                prop_assert_eq!(log.size_bytes(), 0);
            }
            let before = log.size_bytes();
            prop_assert!(log.append(BytesMut::from(&garbage[..]), 0).is_err());
            prop_assert_eq!(log.size_bytes(), before);
        }
    }
}

/// Rough append/read throughput check: `cargo test -p sluice-log throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput_of_1mb_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let recs: Vec<_> = (0..16)
        .map(|i| (Some(vec![i as u8]), Some(vec![7u8; 64 * 1024 - 100]), 1))
        .collect();
    let batch = batch_with(&recs, -1, -1, -1, Compression::None);
    let n = 300;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let b = batch.clone();
        crate::batch::validate_record_set(&b, &unlimited()).unwrap();
    }
    println!("clone+validate {:?}/batch", t.elapsed() / n);
    let t = std::time::Instant::now();
    for _ in 0..n {
        log.append(batch.clone(), 0).unwrap();
    }
    let append = t.elapsed();
    let t = std::time::Instant::now();
    let mut offset = 0;
    let mut bytes = 0;
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20).unwrap();
        bytes += r.read().unwrap().len();
        offset += 16;
    }
    let read = t.elapsed();
    println!(
        "{} x {} B: append {:?}/batch, read {:?}/batch ({} B)",
        n,
        batch.len(),
        append / n,
        read / n,
        bytes
    );
}

#[test]
fn crash_leftovers_are_cleaned_and_torn_middle_segment_ends_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for _ in 0..100 {
        log.append(
            batch_of(&["0123456789012345678901234567890123456789"], 1),
            0,
        )
        .unwrap();
    }
    let segs = log.segment_count();
    assert!(segs >= 3);
    drop(log);
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    names.sort();
    // Tear the second segment in its middle; also leave compaction/atomic-write leftovers.
    let second = &names[1];
    let len = std::fs::metadata(second).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(second)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    std::fs::write(dir.path().join("00000000000000000000.log.cleaned"), b"junk").unwrap();
    std::fs::write(dir.path().join("00000000000000099999.index"), b"junk").unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.segment_count(), 2);
    let all = decode_all(log.read(0, usize::MAX).unwrap().read().unwrap());
    assert_eq!(all.len() as i64, log.log_end_offset());
    assert!(log.log_end_offset() < 100);
    assert!(!dir.path().join("00000000000000000000.log.cleaned").exists());
    assert!(!dir.path().join("00000000000000099999.index").exists());
}

#[test]
fn crash_recovery_crc_checks_everything_past_the_last_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), cfg.clone()).unwrap();
    let one = simple_batch(3, 1).len();
    for _ in 0..10 {
        log.append(simple_batch(3, 1), 0).unwrap();
    }
    let h = log.sync_handle().unwrap();
    h.sync().unwrap();
    log.mark_synced(&h);
    for _ in 0..10 {
        log.append(simple_batch(3, 1), 0).unwrap();
    }
    drop(log); // crash
               // Damage a record byte (not the header) of batch 15, i.e. past the recovery point but before
               // the last index entry, where only the recovery point makes recovery check the CRC.
    let seg = dir.path().join("00000000000000000000.log");
    let mut data = std::fs::read(&seg).unwrap();
    data[15 * one + one - 3] ^= 0x55;
    std::fs::write(&seg, &data).unwrap();
    let log = PartitionLog::open(dir.path(), cfg).unwrap();
    assert_eq!(log.log_end_offset(), 45);
    assert_eq!(log.size_bytes(), 15 * one as u64);
}

fn unlimited() -> crate::LogConfig {
    crate::LogConfig {
        max_message_bytes: u32::MAX,
        ..Default::default()
    }
}
