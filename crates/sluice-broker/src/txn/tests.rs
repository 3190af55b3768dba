//! The transaction state machine against a model, on an in-memory `__transaction_state`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use kafka_protocol::ResponseError;
use proptest::prelude::*;
use sluice_log::{ControlType, TxnMarker};

use super::*;
use crate::meta::ProducerIdAllocator;
use crate::state_log::MemoryStateLog;

/// Records every marker it is asked to write.
#[derive(Debug, Default)]
struct Recorder(parking_lot::Mutex<Vec<((String, i32), TxnMarker)>>);

impl MarkerWriter for Recorder {
    fn write_markers(
        &self,
        partitions: &BTreeSet<(String, i32)>,
        marker: &TxnMarker,
    ) -> Result<MarkerWaits, String> {
        let mut all = self.0.lock();
        for p in partitions {
            all.push((p.clone(), *marker));
        }
        Ok(Vec::new())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    ids: ProducerIdAllocator,
    log: Arc<MemoryStateLog>,
    coordinator: TxnCoordinator,
    markers: Recorder,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ids = ProducerIdAllocator::open(dir.path()).unwrap();
    let log = Arc::new(MemoryStateLog::new(4));
    let coordinator =
        TxnCoordinator::with_log(Box::new(log.clone()), TxnConfig::default()).unwrap();
    Fixture {
        _dir: dir,
        ids,
        log,
        coordinator,
        markers: Recorder::default(),
    }
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn p(topic: &str, i: i32) -> (String, i32) {
    (topic.to_owned(), i)
}

#[test]
fn commit_writes_markers_and_a_new_producer_fences_the_old_one() {
    let f = fixture();
    let c = &f.coordinator;
    let (pid, e0) = block(c.init_producer_id("tx", 60_000, None, &f.ids, &f.markers)).unwrap();
    c.add_partitions("tx", pid, e0, &[p("a", 0), p("b", 1)])
        .unwrap();
    c.verify("tx", pid, e0, "a", 0).unwrap();
    assert_eq!(
        c.verify("tx", pid, e0, "c", 0),
        Err(ResponseError::InvalidTxnState)
    );
    block(c.end_txn("tx", pid, e0, true, &f.markers)).unwrap();
    assert_eq!(c.describe("tx").unwrap().state, TxnState::CompleteCommit);
    // Retried EndTxn succeeds; the opposite decision is refused.
    block(c.end_txn("tx", pid, e0, true, &f.markers)).unwrap();
    assert_eq!(
        block(c.end_txn("tx", pid, e0, false, &f.markers)),
        Err(ResponseError::InvalidTxnState)
    );
    let written = f.markers.0.lock().clone();
    assert_eq!(written.len(), 2);
    assert!(written
        .iter()
        .all(|(_, m)| m.control == ControlType::Commit && m.producer_epoch == e0));

    // A second transaction left open, then a new producer with the same id.
    c.add_partitions("tx", pid, e0, &[p("a", 0)]).unwrap();
    let (pid2, e2) = block(c.init_producer_id("tx", 60_000, None, &f.ids, &f.markers)).unwrap();
    assert_eq!(pid2, pid);
    assert!(e2 > e0 + 1, "fenced with a bumped epoch, then bumped again");
    let last = f.markers.0.lock().last().cloned().unwrap();
    assert_eq!(last.0, p("a", 0));
    assert_eq!(last.1.control, ControlType::Abort);
    assert!(last.1.producer_epoch > e0);
    assert_eq!(
        c.add_partitions("tx", pid, e0, &[p("a", 0)]).err(),
        Some(ResponseError::ProducerFenced)
    );
    assert_eq!(
        block(c.end_txn("tx", pid, e0, true, &f.markers)),
        Err(ResponseError::ProducerFenced)
    );
}

#[test]
fn timeouts_are_validated_and_enforced() {
    let f = fixture();
    let c = &f.coordinator;
    let max = i32::try_from(c.config().max_timeout.as_millis()).unwrap();
    assert_eq!(
        block(c.init_producer_id("tx", max + 1, None, &f.ids, &f.markers)),
        Err(ResponseError::InvalidTransactionTimeout)
    );
    let (pid, e) = block(c.init_producer_id("tx", 1, None, &f.ids, &f.markers)).unwrap();
    c.add_partitions("tx", pid, e, &[p("a", 0)]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    block(c.maintain(&f.markers));
    let meta = c.describe("tx").unwrap();
    assert_eq!(meta.state, TxnState::CompleteAbort);
    assert_eq!(meta.producer_epoch, e + 1);
    // The timed-out producer recovers with its old epoch (KIP-360) instead of being fenced.
    let (pid2, e2) =
        block(c.init_producer_id("tx", 1_000, Some((pid, e)), &f.ids, &f.markers)).unwrap();
    assert_eq!((pid2, e2), (pid, e + 1));
}

#[test]
fn recovery_completes_prepared_and_settles_orphans() {
    let f = fixture();
    let c = &f.coordinator;
    let (pid, e) = block(c.init_producer_id("tx", 60_000, None, &f.ids, &f.markers)).unwrap();
    c.add_partitions("tx", pid, e, &[p("a", 0)]).unwrap();
    // Restart: a fresh coordinator replays the log. Partition b holds an open transaction of
    // the same producer (its AddPartitionsToTxn record lost), c one of an unknown producer.
    let restarted =
        TxnCoordinator::with_log(Box::new(f.log.clone()), TxnConfig::default()).unwrap();
    let markers = Recorder::default();
    restarted.recover(&[(p("b", 0), pid, e), (p("c", 0), 999, 0)], &markers);
    let meta = restarted.describe("tx").unwrap();
    assert_eq!(meta.state, TxnState::Ongoing);
    assert!(meta.partitions.contains(&p("b", 0)));
    let written = markers.0.lock().clone();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].0, p("c", 0));
    assert_eq!(written[0].1.control, ControlType::Abort);
}

/// Operations on two transactional ids, by their current producer or by a stale one.
#[derive(Debug, Clone)]
enum Op {
    Init(usize),
    Add(usize, i32, bool),
    End(usize, bool, bool),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0usize..2).prop_map(Op::Init),
        4 => (0usize..2, 0i32..3, any::<bool>()).prop_map(|(t, p, s)| Op::Add(t, p, s)),
        3 => (0usize..2, any::<bool>(), any::<bool>()).prop_map(|(t, c, s)| Op::End(t, c, s)),
        1 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the sequence: epochs never go back, stale producers are always refused,
    /// every ended transaction got exactly its partitions' markers with the decided outcome,
    /// and a restart (replay) reproduces the same state.
    #[test]
    fn state_machine_matches_a_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut f = fixture();
        let ids = ["t0", "t1"];
        // Model: current (pid, epoch), open partitions, a stale (pid, epoch) if any.
        let mut current: HashMap<usize, (i64, i16)> = HashMap::new();
        let mut stale: HashMap<usize, (i64, i16)> = HashMap::new();
        let mut open: HashMap<usize, BTreeSet<(String, i32)>> = HashMap::new();
        for op in ops {
            let before = f.markers.0.lock().len();
            match op {
                Op::Init(t) => {
                    let got = block(f.coordinator.init_producer_id(ids[t], 60_000, None, &f.ids, &f.markers)).unwrap();
                    if let Some(old) = current.insert(t, got) {
                        prop_assert!(got.1 > old.1 || got.0 != old.0, "epoch went back: {:?} -> {:?}", old, got);
                        stale.insert(t, old);
                    }
                    // A transaction left open was aborted under a newer epoch.
                    let aborted = open.remove(&t).unwrap_or_default();
                    let written: Vec<_> = f.markers.0.lock()[before..].to_vec();
                    prop_assert_eq!(written.len(), aborted.len());
                    for (part, m) in written {
                        prop_assert!(aborted.contains(&part));
                        prop_assert_eq!(m.control, ControlType::Abort);
                    }
                }
                Op::Add(t, partition, use_stale) => {
                    let who = if use_stale { stale.get(&t) } else { current.get(&t) };
                    let Some(&(pid, epoch)) = who else { continue };
                    let r = f.coordinator.add_partitions(ids[t], pid, epoch, &[p("x", partition)]).map(|_| ());
                    if use_stale && stale.get(&t) != current.get(&t) {
                        prop_assert!(r.is_err());
                    } else {
                        prop_assert!(r.is_ok(), "{:?}", r);
                        open.entry(t).or_default().insert(p("x", partition));
                    }
                }
                Op::End(t, commit, use_stale) => {
                    let who = if use_stale { stale.get(&t) } else { current.get(&t) };
                    let Some(&(pid, epoch)) = who else { continue };
                    let r = block(f.coordinator.end_txn(ids[t], pid, epoch, commit, &f.markers));
                    if use_stale {
                        prop_assert_eq!(r, Err(ResponseError::ProducerFenced));
                        continue;
                    }
                    match open.remove(&t) {
                        Some(parts) => {
                            prop_assert!(r.is_ok(), "{:?}", r);
                            let written: Vec<_> = f.markers.0.lock()[before..].to_vec();
                            let marked: BTreeSet<_> = written.iter().map(|(p, _)| p.clone()).collect();
                            prop_assert_eq!(&marked, &parts);
                            let want = if commit { ControlType::Commit } else { ControlType::Abort };
                            for (_, m) in written {
                                prop_assert_eq!(m.control, want);
                                prop_assert_eq!((m.producer_id, m.producer_epoch), (pid, epoch));
                            }
                        }
                        None => {
                            // Nothing open: a retry of the same outcome or an invalid state.
                            prop_assert_eq!(f.markers.0.lock().len(), before);
                        }
                    }
                }
                Op::Restart => {
                    let restarted = TxnCoordinator::with_log(Box::new(f.log.clone()), TxnConfig::default()).unwrap();
                    for (live, replayed) in f.coordinator.list().into_iter().zip(restarted.list()) {
                        prop_assert_eq!(
                            (&live.transactional_id, live.producer_id, live.producer_epoch, live.state, &live.partitions),
                            (&replayed.transactional_id, replayed.producer_id, replayed.producer_epoch, replayed.state, &replayed.partitions)
                        );
                    }
                    f.coordinator = restarted;
                    // A restart forgets which epoch preceded a bump; stale producers stay fenced.
                }
            }
        }
    }
}
