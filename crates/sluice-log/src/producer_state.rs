//! Idempotent producer state: per producer id, its epoch and the last few batches it wrote.
//!
//! Rules (Kafka's): producer id -1 means no checks. A batch with an epoch older than the known
//! one is fenced (`InvalidProducerEpoch`). A newer epoch must start at sequence 0. Within an
//! epoch a batch must continue the sequence exactly; a retry of any of the last
//! [`MAX_CACHED_BATCHES`] batches is a duplicate and is answered with its original offsets; any
//! other sequence is `OutOfOrderSequence`. A producer the log knows nothing about (new, or its
//! history was removed by retention) may start at any sequence.
//!
//! Transactions: a producer's first transactional batch opens its transaction in this
//! partition (recorded as `txn_first_offset`); the coordinator's marker closes it. The open
//! transactions ordered by first offset give the partition's first unstable offset.
//! Coordinator-written batches (transactional offset commits) carry no sequence numbers: only
//! their epoch is checked.
//!
//! The state is rebuilt on open from batch headers, or loaded from the snapshot written by a
//! clean shutdown (`producer_state.json`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::batch::BatchHeader;
use crate::txn::{AbortedTxn, ControlType, TxnMarker};
use crate::LogError;

/// How many recent batches per producer are remembered for duplicate detection (Kafka's
/// `max.in.flight.requests.per.connection` limit for idempotence).
pub(crate) const MAX_CACHED_BATCHES: usize = 5;

/// File name of the clean-shutdown snapshot.
pub(crate) const SNAPSHOT_FILE: &str = "producer_state.json";

/// Sequence range and assigned offsets of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BatchMeta {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
}

/// What the log knows about one producer id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerEntry {
    pub(crate) epoch: i16,
    pub(crate) batches: VecDeque<BatchMeta>,
    /// First offset of the producer's open transaction in this partition.
    #[serde(default)]
    pub(crate) txn_first_offset: Option<i64>,
    /// Coordinator epoch of the last marker written for this producer (-1 if none).
    #[serde(default = "no_coordinator_epoch")]
    pub(crate) coordinator_epoch: i32,
    /// Max timestamp of the producer's last batch.
    #[serde(default)]
    pub(crate) last_timestamp: i64,
}

fn no_coordinator_epoch() -> i32 {
    -1
}

impl ProducerEntry {
    fn new(epoch: i16) -> Self {
        ProducerEntry {
            epoch,
            batches: VecDeque::with_capacity(MAX_CACHED_BATCHES),
            txn_first_offset: None,
            coordinator_epoch: -1,
            last_timestamp: -1,
        }
    }
}

/// Where a batch comes from: clients are held to the sequence rules, the broker's own
/// coordinators (transactional offset commits) only to the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A producer's Produce request.
    Client,
    /// The group coordinator writing on a producer's behalf.
    Coordinator,
}

/// A producer as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    /// The producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// Sequence number of its last batch, or -1.
    pub last_sequence: i32,
    /// Max timestamp of its last batch, or -1.
    pub last_timestamp: i64,
    /// Coordinator epoch of the last marker, or -1.
    pub coordinator_epoch: i32,
    /// First offset of its open transaction, or -1.
    pub current_txn_start_offset: i64,
}

/// Result of checking an incoming batch against the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// New data: append it.
    Append,
    /// A retry of an already appended batch.
    Duplicate(BatchMeta),
}

/// Idempotence and transaction state of one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerStateMap {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset -> producer id (derived from `producers`).
    #[serde(skip)]
    ongoing: BTreeMap<i64, i64>,
    /// Verification guards (KIP-890): producer id -> the guard its pending first
    /// transactional write must present. A marker removes it, so a write verified before the
    /// transaction ended cannot open a transaction after its marker.
    #[serde(skip)]
    verified: HashMap<i64, u64>,
    #[serde(skip)]
    next_guard: u64,
}

/// Snapshot file content: the state and the log end offset it is valid for.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    log_end_offset: i64,
    state: ProducerStateMap,
}

impl ProducerStateMap {
    /// Checks an incoming batch (header as sent, before offsets are assigned).
    pub(crate) fn check(&self, h: &BatchHeader, origin: Origin) -> Result<SequenceCheck, LogError> {
        if !h.has_producer_id() {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id: h.producer_id,
                current: entry.epoch,
                got: h.producer_epoch,
            });
        }
        if origin == Origin::Coordinator {
            return Ok(SequenceCheck::Append);
        }
        if h.producer_epoch > entry.epoch {
            if h.base_sequence != 0 {
                return Err(LogError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    expected: 0,
                    got: h.base_sequence,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        match entry.batches.back() {
            Some(last) if h.base_sequence != next_sequence(last.last_seq) => {
                Err(LogError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    expected: next_sequence(last.last_seq),
                    got: h.base_sequence,
                })
            }
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Records an appended data batch (header with its assigned base offset). Also used to
    /// rebuild the state from the log, where no checks are made.
    pub(crate) fn record(&mut self, h: &BatchHeader) {
        if !h.has_producer_id() || h.is_control() {
            return;
        }
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry::new(h.producer_epoch));
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        } else if h.producer_epoch < entry.epoch {
            return;
        }
        entry.last_timestamp = h.max_timestamp;
        if h.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(h.base_offset);
            self.ongoing.insert(h.base_offset, h.producer_id);
        }
        if h.base_sequence < 0 {
            // Written by a coordinator: nothing to deduplicate against.
            return;
        }
        if entry.batches.len() >= MAX_CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
        });
    }

    /// Applies one batch read back from the log (recovery): data batches as [`Self::record`],
    /// markers as [`Self::complete_txn`]. Returns an aborted transaction to index.
    pub(crate) fn replay(
        &mut self,
        h: &BatchHeader,
        control: Option<ControlType>,
    ) -> Option<AbortedTxn> {
        if h.is_control() {
            if !h.has_producer_id() {
                return None;
            }
            // The coordinator epoch lives in the marker's value, which recovery does not read.
            self.complete_txn(h.producer_id, h.producer_epoch, -1, control, h.base_offset)
        } else {
            self.record(h);
            None
        }
    }

    /// Starts verifying `producer_id`'s next transactional write: returns the guard the
    /// write must present (see [`Self::check_verified`]).
    pub(crate) fn begin_verification(&mut self, producer_id: i64) -> u64 {
        self.next_guard += 1;
        self.verified.insert(producer_id, self.next_guard);
        self.next_guard
    }

    /// A transactional batch from a client may continue the producer's open transaction
    /// here, or open one only with the guard of a verification no marker has ended since.
    pub(crate) fn check_verified(
        &self,
        h: &BatchHeader,
        guard: Option<u64>,
    ) -> Result<(), LogError> {
        if !h.is_transactional() || !h.has_producer_id() {
            return Ok(());
        }
        let open = self
            .producers
            .get(&h.producer_id)
            .is_some_and(|e| e.txn_first_offset.is_some() && e.epoch == h.producer_epoch);
        if open || (guard.is_some() && self.verified.get(&h.producer_id).copied() == guard) {
            return Ok(());
        }
        Err(LogError::InvalidTxnState {
            producer_id: h.producer_id,
        })
    }

    /// Checks that a marker may be written: its epoch may not be older than the producer's.
    pub(crate) fn check_marker(&self, marker: &TxnMarker) -> Result<(), LogError> {
        match self.producers.get(&marker.producer_id) {
            Some(entry) if marker.producer_epoch < entry.epoch => {
                Err(LogError::InvalidProducerEpoch {
                    producer_id: marker.producer_id,
                    current: entry.epoch,
                    got: marker.producer_epoch,
                })
            }
            _ => Ok(()),
        }
    }

    /// Records a marker written at `offset`: closes the producer's open transaction (a newer
    /// epoch fences older ones). Returns the aborted transaction to index, if it was one with
    /// records in this partition.
    pub(crate) fn complete_txn(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        control: Option<ControlType>,
        offset: i64,
    ) -> Option<AbortedTxn> {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(producer_epoch));
        if producer_epoch > entry.epoch {
            entry.epoch = producer_epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = coordinator_epoch;
        self.verified.remove(&producer_id);
        let first = entry.txn_first_offset.take()?;
        self.ongoing.remove(&first);
        (control == Some(ControlType::Abort)).then(|| AbortedTxn {
            producer_id,
            first_offset: first,
            last_offset: offset,
            last_stable_offset: self.first_unstable_offset().unwrap_or(offset + 1),
        })
    }

    /// First offset of the oldest open transaction.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Open transactions: `(producer id, epoch, first offset)`, oldest first.
    pub(crate) fn open_transactions(&self) -> Vec<(i64, i16, i64)> {
        self.ongoing
            .iter()
            .filter_map(|(first, pid)| self.producers.get(pid).map(|e| (*pid, e.epoch, *first)))
            .collect()
    }

    /// Every known producer, for DescribeProducers.
    pub(crate) fn describe(&self) -> Vec<ProducerInfo> {
        let mut out: Vec<ProducerInfo> = self
            .producers
            .iter()
            .map(|(pid, e)| ProducerInfo {
                producer_id: *pid,
                producer_epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// Forgets everything (before a rebuild).
    pub(crate) fn clear(&mut self) {
        self.producers.clear();
        self.ongoing.clear();
    }

    /// Rebuilds the derived open-transaction order (after loading a snapshot).
    fn reindex(&mut self) {
        self.ongoing = self
            .producers
            .iter()
            .filter_map(|(pid, e)| e.txn_first_offset.map(|first| (first, *pid)))
            .collect();
    }

    /// Number of producers known.
    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    /// Writes the clean-shutdown snapshot (atomically: temp file, fsync, rename).
    pub(crate) fn write_snapshot(&self, dir: &Path, log_end_offset: i64) -> Result<(), LogError> {
        let snap = Snapshot {
            log_end_offset,
            state: self.clone(),
        };
        let bytes = serde_json::to_vec(&snap)
            .map_err(|e| LogError::io(dir.join(SNAPSHOT_FILE), std::io::Error::other(e)))?;
        crate::recovery::write_file_atomically(&dir.join(SNAPSHOT_FILE), &bytes)
    }

    /// Loads and removes the snapshot; returns it only if it matches `log_end_offset` (a
    /// snapshot is consumed on open so a later crash cannot reuse a stale one).
    pub(crate) fn take_snapshot(dir: &Path, log_end_offset: i64) -> Option<ProducerStateMap> {
        let path = dir.join(SNAPSHOT_FILE);
        let data = std::fs::read(&path).ok()?;
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "could not remove producer state snapshot");
        }
        let snap: Snapshot = serde_json::from_slice(&data).ok()?;
        (snap.log_end_offset == log_end_offset).then(|| {
            let mut state = snap.state;
            state.reindex();
            state
        })
    }
}

/// The sequence after `seq` (sequences wrap from `i32::MAX` to 0).
fn next_sequence(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ProducerStateMap {
        fn check_client(&self, h: &BatchHeader) -> Result<SequenceCheck, LogError> {
            self.check(h, Origin::Client)
        }
    }

    fn hdr(pid: i64, epoch: i16, seq: i32, count: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: count,
        }
    }

    #[test]
    fn sequence_rules() {
        let mut s = ProducerStateMap::default();
        assert_eq!(
            s.check_client(&hdr(1, 0, 0, 3, 0)).unwrap(),
            SequenceCheck::Append
        );
        s.record(&hdr(1, 0, 0, 3, 0));
        // in sequence
        assert_eq!(
            s.check_client(&hdr(1, 0, 3, 2, 0)).unwrap(),
            SequenceCheck::Append
        );
        s.record(&hdr(1, 0, 3, 2, 3));
        // duplicate of the first batch returns its original offsets
        match s.check_client(&hdr(1, 0, 0, 3, 0)).unwrap() {
            SequenceCheck::Duplicate(m) => assert_eq!((m.first_offset, m.last_offset), (0, 2)),
            other => panic!("expected duplicate, got {other:?}"),
        }
        // gap
        assert!(matches!(
            s.check_client(&hdr(1, 0, 7, 1, 0)),
            Err(LogError::OutOfOrderSequence {
                expected: 5,
                got: 7,
                ..
            })
        ));
        // new epoch must start at 0
        assert!(matches!(
            s.check_client(&hdr(1, 1, 5, 1, 0)),
            Err(LogError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(
            s.check_client(&hdr(1, 1, 0, 1, 0)).unwrap(),
            SequenceCheck::Append
        );
        s.record(&hdr(1, 1, 0, 1, 5));
        // stale epoch fenced
        assert!(matches!(
            s.check_client(&hdr(1, 0, 5, 1, 0)),
            Err(LogError::InvalidProducerEpoch {
                current: 1,
                got: 0,
                ..
            })
        ));
        // non-idempotent never checked
        assert_eq!(
            s.check_client(&hdr(-1, -1, -1, 1, 0)).unwrap(),
            SequenceCheck::Append
        );
    }

    #[test]
    fn only_last_five_batches_are_duplicates() {
        let mut s = ProducerStateMap::default();
        for i in 0..7 {
            s.record(&hdr(9, 0, i, 1, i as i64));
        }
        assert!(matches!(
            s.check_client(&hdr(9, 0, 1, 1, 0)),
            Err(LogError::OutOfOrderSequence { .. })
        ));
        assert!(matches!(
            s.check_client(&hdr(9, 0, 2, 1, 0)).unwrap(),
            SequenceCheck::Duplicate(_)
        ));
        assert!(matches!(
            s.check_client(&hdr(9, 0, 6, 1, 0)).unwrap(),
            SequenceCheck::Duplicate(_)
        ));
    }

    #[test]
    fn snapshot_roundtrip_is_consumed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProducerStateMap::default();
        s.record(&hdr(3, 2, 0, 4, 10));
        s.write_snapshot(dir.path(), 14).unwrap();
        assert_eq!(
            ProducerStateMap::take_snapshot(dir.path(), 14),
            Some(s.clone())
        );
        assert_eq!(ProducerStateMap::take_snapshot(dir.path(), 14), None);
        s.write_snapshot(dir.path(), 14).unwrap();
        assert_eq!(ProducerStateMap::take_snapshot(dir.path(), 15), None);
    }
}
