//! Transactions at the log level: control batches (COMMIT/ABORT markers) and the
//! aborted-transaction index that `read_committed` fetches filter with.
//!
//! A transaction in one partition is the run of transactional batches of one producer id from
//! its first batch to the marker the coordinator writes. While any transaction is open the
//! partition's *last stable offset* (LSO) stays at its first offset: `read_committed` readers
//! see nothing at or past it. An ABORT marker adds an [`AbortedTxn`] to the index; fetches return
//! the entries overlapping what they read, and consumers drop those producers' batches.
//!
//! The index is a per-partition file of Kafka's 34-byte `.txnindex` entries (version i16,
//! producer id i64, first offset i64, last offset i64, last stable offset i64), kept in memory
//! and mirrored to disk without fsync like the offset indexes: a clean shutdown fsyncs it, and
//! after a crash it is rebuilt from the markers in the log.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::{BufMut, BytesMut};

use crate::batch::{self, BatchHeader, CONTROL_BIT, HEADER_SIZE, MAGIC_V2, TRANSACTIONAL_BIT};
use crate::partition::relocate::Reopened;
use crate::LogError;

/// File name of the aborted-transaction index.
pub(crate) const ABORTED_INDEX_FILE: &str = "aborted-transactions.txnindex";

/// Bytes of one index entry.
const ENTRY_SIZE: usize = 34;

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    /// The transaction was aborted (control record type 0).
    Abort,
    /// The transaction was committed (control record type 1).
    Commit,
}

/// A transaction marker to write into a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// Its epoch (the coordinator's current one, which may fence older epochs).
    pub producer_epoch: i16,
    /// The coordinator epoch that decided the outcome.
    pub coordinator_epoch: i32,
    /// Commit or abort.
    pub control: ControlType,
}

/// One aborted transaction of a partition, as fetch responses report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer whose records between `first_offset` and `last_offset` are aborted.
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    /// The LSO once this transaction completed: no transaction starting before it was still
    /// open, which lets a lookup stop early.
    pub last_stable_offset: i64,
}

impl TxnMarker {
    /// This marker as a one-record control batch in Kafka's format (offsets are assigned by
    /// the log that stores it).
    pub fn to_batch(&self, now_ms: i64) -> BytesMut {
        marker_batch(self, now_ms)
    }
}

fn marker_batch(marker: &TxnMarker, now_ms: i64) -> BytesMut {
    // Record: attributes i8, timestamp delta, offset delta, key (version i16, type i16),
    // value (version i16, coordinator epoch i32), no headers; varints zigzag-encoded.
    let kind: i16 = match marker.control {
        ControlType::Abort => 0,
        ControlType::Commit => 1,
    };
    let mut record = BytesMut::with_capacity(20);
    record.put_u8(0); // attributes
    record.put_u8(0); // timestamp delta 0
    record.put_u8(0); // offset delta 0
    record.put_u8(4 << 1); // key length 4
    record.put_i16(0);
    record.put_i16(kind);
    record.put_u8(6 << 1); // value length 6
    record.put_i16(0);
    record.put_i32(marker.coordinator_epoch);
    record.put_u8(0); // header count 0
    let body_len = u8::try_from(record.len()).unwrap_or(u8::MAX);

    let mut buf = BytesMut::with_capacity(HEADER_SIZE + record.len() + 1);
    buf.put_i64(0); // base offset
    buf.put_i32(0); // batch length, set below
    buf.put_i32(0); // partition leader epoch
    buf.put_i8(MAGIC_V2);
    buf.put_u32(0); // crc, set below
    buf.put_i16(TRANSACTIONAL_BIT | CONTROL_BIT);
    buf.put_i32(0); // last offset delta
    buf.put_i64(now_ms);
    buf.put_i64(now_ms);
    buf.put_i64(marker.producer_id);
    buf.put_i16(marker.producer_epoch);
    buf.put_i32(-1); // base sequence
    buf.put_i32(1); // record count
    buf.put_u8(body_len << 1);
    buf.extend_from_slice(&record);
    let len = i32::try_from(buf.len() - batch::LOG_OVERHEAD).unwrap_or(i32::MAX);
    batch::set_batch_length(&mut buf, len);
    batch::rewrite_crc(&mut buf);
    buf
}

/// The marker type of a control batch (`bytes` is the whole batch), or `None` when its first
/// record is not a control record this log understands (it is then treated as neither).
pub(crate) fn control_type(bytes: &[u8], h: &BatchHeader) -> Option<ControlType> {
    if !h.is_control() || h.codec() != 0 {
        return None;
    }
    let body = bytes.get(HEADER_SIZE..)?;
    let mut reader = crate::record::RecordReader::new(body, h.record_count).with_keys();
    let meta = reader.next_record().ok()??;
    if meta.key_is_null {
        return None;
    }
    match reader.key() {
        [_, _, 0, 0] => Some(ControlType::Abort),
        [_, _, 0, 1] => Some(ControlType::Commit),
        _ => None,
    }
}

/// The aborted transactions of one partition, in marker order (so `last_offset` increases).
#[derive(Debug)]
pub(crate) struct AbortedTxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
    file: File,
}

impl AbortedTxnIndex {
    /// Opens the index of `dir`: with `rebuilt` (after a crash, from the log) the file is
    /// replaced by it; otherwise the file written before a clean shutdown is loaded, dropping
    /// entries past `log_end` (defensive: they cannot be valid).
    pub(crate) fn open(
        dir: &Path,
        rebuilt: Option<Vec<AbortedTxn>>,
        log_end: i64,
    ) -> Result<Self, LogError> {
        let path = dir.join(ABORTED_INDEX_FILE);
        let entries = match rebuilt {
            Some(entries) => {
                crate::recovery::write_file_atomically(&path, &encode_entries(&entries))?;
                entries
            }
            None => match std::fs::read(&path) {
                Ok(data) => decode_entries(&data, log_end),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(LogError::io(&path, e)),
            },
        };
        let file = open_append(&path)?;
        Ok(AbortedTxnIndex {
            path,
            entries,
            file,
        })
    }

    /// Records an aborted transaction (written through to the file, not fsynced).
    pub(crate) fn push(&mut self, entry: AbortedTxn) -> Result<(), LogError> {
        self.file
            .write_all(&encode_entries(std::slice::from_ref(&entry)))
            .map_err(|e| LogError::io(&self.path, e))?;
        self.entries.push(entry);
        Ok(())
    }

    /// The aborted transactions overlapping offsets `from..upper`: those whose marker is at or
    /// after `from` and whose first batch is before `upper`.
    pub(crate) fn overlapping(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        let start = self.entries.partition_point(|e| e.last_offset < from);
        let mut out = Vec::new();
        for e in &self.entries[start..] {
            if e.first_offset < upper {
                out.push(*e);
            }
            // Every transaction that began before `upper` had ended by this marker.
            if e.last_stable_offset >= upper {
                break;
            }
        }
        out
    }

    /// True if `h` (a transactional data batch) belongs to an aborted transaction.
    pub(crate) fn is_aborted(&self, h: &BatchHeader) -> bool {
        let start = self
            .entries
            .partition_point(|e| e.last_offset < h.base_offset);
        for e in &self.entries[start..] {
            if e.producer_id == h.producer_id && e.first_offset <= h.base_offset {
                return true;
            }
            // Every transaction begun at or before this batch had ended by this marker.
            if e.last_stable_offset > h.base_offset {
                break;
            }
        }
        false
    }

    /// Drops entries wholly below `log_start` (their records are gone); rewrites the file.
    pub(crate) fn prune_below(&mut self, log_start: i64) -> Result<(), LogError> {
        let stale = self.entries.partition_point(|e| e.last_offset < log_start);
        if stale == 0 {
            return Ok(());
        }
        self.entries.drain(..stale);
        crate::recovery::write_file_atomically(&self.path, &encode_entries(&self.entries))?;
        self.file = open_append(&self.path)?;
        Ok(())
    }

    /// Makes the file durable (clean shutdown).
    pub(crate) fn sync(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Opens the copy of the index file in `dir` (see [`crate::partition::relocate`]).
    pub(crate) fn reopen_in(&self, dir: &Path) -> Result<Reopened, LogError> {
        crate::partition::relocate::reopen_in(&self.path, dir, true)
    }

    /// Switches to a copy opened by [`Self::reopen_in`], now in `dir`.
    pub(crate) fn install(&mut self, dir: &Path, copy: Reopened) {
        (self.path, self.file) = copy.into_parts(dir);
    }
}

fn open_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| LogError::io(path, e))
}

fn encode_entries(entries: &[AbortedTxn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_SIZE);
    for e in entries {
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&e.producer_id.to_be_bytes());
        out.extend_from_slice(&e.first_offset.to_be_bytes());
        out.extend_from_slice(&e.last_offset.to_be_bytes());
        out.extend_from_slice(&e.last_stable_offset.to_be_bytes());
    }
    out
}

/// Decodes whole entries, stopping at a torn tail or an entry that is not plausible.
fn decode_entries(data: &[u8], log_end: i64) -> Vec<AbortedTxn> {
    let be = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        i64::from_be_bytes(a)
    };
    let mut out: Vec<AbortedTxn> = Vec::with_capacity(data.len() / ENTRY_SIZE);
    for chunk in data.chunks_exact(ENTRY_SIZE) {
        let e = AbortedTxn {
            producer_id: be(&chunk[2..10]),
            first_offset: be(&chunk[10..18]),
            last_offset: be(&chunk[18..26]),
            last_stable_offset: be(&chunk[26..34]),
        };
        let ordered = out.last().is_none_or(|p| p.last_offset < e.last_offset);
        if chunk[..2] != [0, 0]
            || !ordered
            || e.first_offset > e.last_offset
            || e.last_offset >= log_end
        {
            break;
        }
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn marker_batch_is_a_valid_control_batch() {
        for control in [ControlType::Abort, ControlType::Commit] {
            let m = TxnMarker {
                producer_id: 42,
                producer_epoch: 3,
                coordinator_epoch: 7,
                control,
            };
            let bytes = m.to_batch(1_000);
            let h = batch::check_batch(&bytes).expect("valid batch");
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.record_count),
                (42, 3, 1)
            );
            assert_eq!(control_type(&bytes, &h), Some(control));
        }
    }

    fn entry(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn index_survives_reopen_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = AbortedTxnIndex::open(dir.path(), None, 100).unwrap();
        idx.push(entry(1, 0, 5, 6)).unwrap();
        idx.push(entry(2, 3, 9, 10)).unwrap();
        idx.sync().unwrap();
        let idx = AbortedTxnIndex::open(dir.path(), None, 100).unwrap();
        assert_eq!(idx.entries, vec![entry(1, 0, 5, 6), entry(2, 3, 9, 10)]);
        // Entries past the log end are not trusted.
        let mut idx = AbortedTxnIndex::open(dir.path(), None, 8).unwrap();
        assert_eq!(idx.len(), 1);
        idx.prune_below(6).unwrap();
        assert_eq!(idx.len(), 0);
        let idx = AbortedTxnIndex::open(dir.path(), None, 100).unwrap();
        assert_eq!(idx.len(), 0);
    }

    #[test]
    fn overlapping_stops_at_a_stable_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = AbortedTxnIndex::open(dir.path(), None, 1000).unwrap();
        // Transaction 2 was still open when 1 aborted, so 1's LSO is 2's first offset.
        idx.push(entry(1, 0, 10, 5)).unwrap();
        idx.push(entry(2, 5, 20, 21)).unwrap();
        idx.push(entry(3, 30, 40, 41)).unwrap();
        assert_eq!(idx.overlapping(12, 25), vec![entry(2, 5, 20, 21)]);
        assert_eq!(idx.overlapping(0, 6).len(), 2);
        assert_eq!(idx.overlapping(0, 1000).len(), 3);
        assert!(idx.overlapping(41, 1000).is_empty());
    }

    fn header(producer_id: i64, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: TRANSACTIONAL_BIT,
            last_offset_delta: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: 0,
            base_sequence: 0,
            record_count: 1,
        }
    }

    proptest! {
        /// Against a brute-force model: a transaction's batches (pid, offsets) are aborted
        /// exactly when an aborted entry covers them, and `overlapping` returns every entry
        /// overlapping the range (possibly more is never wrong, fewer is).
        #[test]
        fn index_agrees_with_a_model(txns in proptest::collection::vec((0i64..4, 1i64..5, any::<bool>()), 1..30),
                                     from in 0i64..200, len in 1i64..200) {
            // Lay out transactions one after another, some interleaved by pid.
            let dir = tempfile::tempdir().unwrap();
            let mut idx = AbortedTxnIndex::open(dir.path(), None, i64::MAX).unwrap();
            let mut offset = 0i64;
            let mut aborted = Vec::new();
            let mut committed = Vec::new();
            for (pid, batches, abort) in txns {
                let first = offset;
                offset += batches;
                let marker = offset;
                offset += 1;
                if abort {
                    let e = entry(pid, first, marker, marker + 1);
                    idx.push(e).unwrap();
                    aborted.push(e);
                } else {
                    committed.push((pid, first));
                }
            }
            let upper = from + len;
            let got = idx.overlapping(from, upper);
            let want: Vec<_> = aborted.iter().copied()
                .filter(|e| e.last_offset >= from && e.first_offset < upper).collect();
            prop_assert_eq!(got, want);
            for e in &aborted {
                let mut h = header(e.producer_id, e.first_offset);
                prop_assert!(idx.is_aborted(&h));
                h.producer_id = e.producer_id + 100;
                prop_assert!(!idx.is_aborted(&h));
            }
            for (pid, first) in committed {
                prop_assert!(!idx.is_aborted(&header(pid, first)));
            }
        }
    }
}
