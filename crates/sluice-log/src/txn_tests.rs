//! Transactions through `PartitionLog`'s public API: the last stable offset, markers, the
//! aborted-transaction index, and what a `read_committed` consumer sees across restarts.

use bytes::BytesMut;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use proptest::prelude::*;

use crate::batch::test_util::batch_with;
use crate::batch::{rewrite_crc, TRANSACTIONAL_BIT};
use crate::{AbortedTxn, ControlType, Isolation, LogConfig, PartitionLog, ReadResult, TxnMarker};

/// A batch of `values` from producer `pid`, transactional unless `pid` is -1.
fn batch(pid: i64, epoch: i16, seq: i32, values: &[String]) -> BytesMut {
    let recs: Vec<_> = values
        .iter()
        .map(|v| (None, Some(v.as_bytes().to_vec()), 1000))
        .collect();
    let mut b = batch_with(&recs, pid, epoch, seq, Compression::None);
    if pid >= 0 {
        let attrs = i16::from_be_bytes([b[21], b[22]]) | TRANSACTIONAL_BIT;
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
        rewrite_crc(&mut b);
    }
    b
}

/// Appends a batch as the broker does after verifying a transactional write.
fn append(log: &mut PartitionLog, records: BytesMut) -> Result<(), crate::LogError> {
    let pid = i64::from_be_bytes(records[43..51].try_into().unwrap());
    let guard = log.begin_verification(pid);
    let validated = crate::ValidatedRecords::new(records, log.config())?.with_verification(guard);
    log.append_validated(validated, 0).map(|_| ())
}

fn marker(pid: i64, epoch: i16, control: ControlType) -> TxnMarker {
    TxnMarker {
        producer_id: pid,
        producer_epoch: epoch,
        coordinator_epoch: 0,
        control,
    }
}

/// What a Kafka consumer in `read_committed` mode delivers from a read: batches of aborted
/// transactions are skipped (a producer counts as aborted from the entry's first offset until
/// its ABORT marker), markers are never delivered.
fn consume_committed(r: &ReadResult) -> Vec<String> {
    let mut bytes = r.read().unwrap();
    let mut aborted: Vec<AbortedTxn> = r.aborted_transactions.clone().unwrap_or_default();
    aborted.sort_by_key(|a| a.first_offset);
    let mut next_aborted = aborted.into_iter().peekable();
    let mut active = std::collections::HashSet::new();
    let mut out = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
        let Some(first) = set.records.first() else {
            continue;
        };
        while let Some(a) = next_aborted.next_if(|a| a.first_offset <= first.offset) {
            active.insert(a.producer_id);
        }
        if first.control {
            if first.key.as_deref() == Some(&[0, 0, 0, 0][..]) {
                active.remove(&first.producer_id);
            }
            continue;
        }
        if first.transactional && active.contains(&first.producer_id) {
            continue;
        }
        for rec in &set.records {
            out.push(String::from_utf8(rec.value.clone().unwrap().to_vec()).unwrap());
        }
    }
    out
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 128,
        ..LogConfig::default()
    }
}

fn read_committed(log: &PartitionLog) -> Vec<String> {
    let r = log
        .read_isolated(log.log_start_offset(), usize::MAX, Isolation::ReadCommitted)
        .unwrap();
    consume_committed(&r)
}

#[test]
fn lso_holds_at_an_open_transaction_and_aborts_are_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), config()).unwrap();
    let v = |s: &str| vec![s.to_owned()];
    append(&mut log, batch(-1, -1, -1, &v("plain-0"))).unwrap();
    append(&mut log, batch(7, 0, 0, &v("t7-a"))).unwrap(); // offset 1 opens pid 7
    append(&mut log, batch(8, 0, 0, &v("t8-a"))).unwrap(); // offset 2 opens pid 8
    append(&mut log, batch(-1, -1, -1, &v("plain-1"))).unwrap();
    assert_eq!(log.last_stable_offset(), 1);
    assert_eq!(read_committed(&log), vec!["plain-0"]);
    assert_eq!(log.open_transactions(), vec![(7, 0, 1), (8, 0, 2)]);

    let abort_at = log
        .append_marker(&marker(7, 0, ControlType::Abort), 0)
        .unwrap();
    assert_eq!(abort_at, 4);
    assert_eq!(log.last_stable_offset(), 2, "pid 8 is still open");
    log.append_marker(&marker(8, 0, ControlType::Commit), 0)
        .unwrap();
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    assert_eq!(read_committed(&log), vec!["plain-0", "t8-a", "plain-1"]);

    // A zombie with the old epoch is fenced once a marker carried a newer one.
    log.append_marker(&marker(8, 1, ControlType::Abort), 0)
        .unwrap();
    assert!(matches!(
        append(&mut log, batch(8, 0, 1, &v("zombie"))),
        Err(crate::LogError::InvalidProducerEpoch { .. })
    ));
    assert!(log
        .append_marker(&marker(8, 0, ControlType::Commit), 0)
        .is_err());

    for clean in [true, false] {
        if clean {
            log.close().unwrap();
        } else {
            drop(log);
        }
        log = PartitionLog::open(dir.path(), config()).unwrap();
        assert_eq!(read_committed(&log), vec!["plain-0", "t8-a", "plain-1"]);
    }
}

/// One step of the model: a producer appends to its transaction, a plain record is appended,
/// a producer's transaction ends, or the log is reopened after a clean close or a crash.
#[derive(Debug, Clone)]
enum Step {
    Txn(i64),
    Plain,
    End(i64, bool),
    Reopen(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0i64..3).prop_map(Step::Txn),
        2 => Just(Step::Plain),
        2 => (0i64..3, any::<bool>()).prop_map(|(p, c)| Step::End(p, c)),
        1 => any::<bool>().prop_map(Step::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the interleaving, restarts and segment rolls, a read_committed consumer sees
    /// exactly the plain and committed records below the first open transaction, in log order.
    #[test]
    fn read_committed_matches_a_model(steps in proptest::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config()).unwrap();
        // Per record: (value, Some(pid) if transactional); per pid: its pending record indexes.
        let mut records: Vec<(String, Option<i64>)> = Vec::new();
        let mut fate: Vec<Option<bool>> = Vec::new();
        let mut open: std::collections::HashMap<i64, Vec<usize>> = Default::default();
        let mut seq = [0i32; 3];
        for (n, s) in steps.into_iter().enumerate() {
            match s {
                Step::Txn(pid) => {
                    let value = format!("t{pid}-{n}");
                    append(&mut log, batch(pid, 0, seq[pid as usize], std::slice::from_ref(&value))).unwrap();
                    seq[pid as usize] += 1;
                    open.entry(pid).or_default().push(records.len());
                    records.push((value, Some(pid)));
                    fate.push(None);
                }
                Step::Plain => {
                    let value = format!("p-{n}");
                    append(&mut log, batch(-1, -1, -1, std::slice::from_ref(&value))).unwrap();
                    records.push((value, None));
                    fate.push(Some(true));
                }
                Step::End(pid, commit) => {
                    let control = if commit { ControlType::Commit } else { ControlType::Abort };
                    log.append_marker(&marker(pid, 0, control), 0).unwrap();
                    for i in open.remove(&pid).unwrap_or_default() {
                        fate[i] = Some(commit);
                    }
                }
                Step::Reopen(clean) => {
                    if clean { log.close().unwrap(); } else { drop(log); }
                    log = PartitionLog::open(dir.path(), config()).unwrap();
                }
            }
            let first_open = fate.iter().position(Option::is_none).unwrap_or(fate.len());
            let want: Vec<String> = records[..first_open]
                .iter()
                .zip(&fate)
                .filter(|(_, f)| **f == Some(true))
                .map(|((v, _), _)| v.clone())
                .collect();
            prop_assert_eq!(read_committed(&log), want);
        }
    }
}

#[test]
fn a_write_verified_before_its_transaction_ended_cannot_open_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), config()).unwrap();
    let v = |s: &str| vec![s.to_owned()];
    // Never verified: refused.
    let unverified = crate::ValidatedRecords::new(batch(5, 0, 0, &v("a")), log.config()).unwrap();
    assert!(matches!(
        log.append_validated(unverified, 0),
        Err(crate::LogError::InvalidTxnState { producer_id: 5 })
    ));
    // Verified, but the coordinator ended the transaction before the write arrived.
    let guard = log.begin_verification(5);
    log.append_marker(&marker(5, 0, ControlType::Commit), 0)
        .unwrap();
    let late = crate::ValidatedRecords::new(batch(5, 0, 0, &v("a")), log.config())
        .unwrap()
        .with_verification(guard);
    assert!(matches!(
        log.append_validated(late, 0),
        Err(crate::LogError::InvalidTxnState { .. })
    ));
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    // Once open, the transaction's later batches need no new verification.
    append(&mut log, batch(5, 0, 0, &v("a"))).unwrap();
    let next = crate::ValidatedRecords::new(batch(5, 0, 1, &v("b")), log.config()).unwrap();
    log.append_validated(next, 0).unwrap();
    assert_eq!(log.open_transactions().len(), 1);
}
