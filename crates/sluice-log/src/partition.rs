//! One partition's log: an ordered list of segments plus producer state.
//!
//! Concurrency model: the broker keeps each `PartitionLog` behind a mutex. Everything that must
//! be atomic with offset assignment (validation, sequence checks, the `write`) happens under it;
//! the slow parts — `fsync` and reading batch bytes for a fetch — do not: [`SyncHandle`] and
//! [`ReadResult`] carry cloned file handles that are used after the lock is released.

use std::io::IoSlice;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{self, BatchHeader};
use crate::producer_state::{Origin, ProducerInfo, ProducerStateMap, SequenceCheck};
use crate::recovery;
pub use crate::segment::FileRange;
pub use relocate::{LogCopy, LogFiles};

pub(crate) mod relocate;
use crate::segment::{Segment, MAX_SEGMENT_BYTES};
use crate::txn::{AbortedTxn, AbortedTxnIndex, TxnMarker};
use crate::{LogConfig, LogError, TimestampType};

/// A produce request's record set that passed validation (CRCs, sizes, record framing, bounded
/// decompression): the only thing [`PartitionLog::append_validated`] accepts.
#[derive(Debug)]
pub struct ValidatedRecords {
    /// The request's bytes, as received: never modified or copied (see
    /// [`batch::stamped_header`]).
    records: Bytes,
    batches: Vec<batch::RecordBatchRef>,
    origin: Origin,
    /// The verification guard of a transactional write (see
    /// [`PartitionLog::begin_verification`]).
    guard: Option<u64>,
}

impl ValidatedRecords {
    /// Validates a producer's `records` against the partition settings `config`.
    pub fn new(records: impl Into<Bytes>, config: &LogConfig) -> Result<Self, LogError> {
        Self::with_origin(records.into(), config, Origin::Client)
    }

    /// Validates `records` written by one of the broker's coordinators on a producer's behalf
    /// (transactional offset commits): their producer epoch is checked, sequences are not.
    pub fn from_coordinator(
        records: impl Into<Bytes>,
        config: &LogConfig,
    ) -> Result<Self, LogError> {
        Self::with_origin(records.into(), config, Origin::Coordinator)
    }

    fn with_origin(records: Bytes, config: &LogConfig, origin: Origin) -> Result<Self, LogError> {
        if records.len() as u64 > MAX_SEGMENT_BYTES {
            return Err(LogError::MessageTooLarge {
                size: records.len(),
                max: config.max_message_bytes,
            });
        }
        let batches = batch::validate_record_set(&records, config)?;
        Ok(ValidatedRecords {
            records,
            batches,
            origin,
            guard: None,
        })
    }

    /// Attaches the guard a verified transactional write presents.
    pub fn with_verification(self, guard: u64) -> Self {
        ValidatedRecords {
            guard: Some(guard),
            ..self
        }
    }

    /// The validated batches (headers as sent).
    pub fn batches(&self) -> &[batch::RecordBatchRef] {
        &self.batches
    }
}

/// Which records a read may return (Kafka's `isolation_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Everything below the high watermark.
    #[default]
    ReadUncommitted,
    /// Only below the last stable offset, with the aborted transactions to filter.
    ReadCommitted,
}

/// What [`PartitionLog::append`] did with a produce request's record set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The batches were written; offsets `base_offset..=last_offset` were assigned.
    Appended {
        /// Offset assigned to the first record of the first batch.
        base_offset: i64,
        /// Offset of the last record of the last batch.
        last_offset: i64,
        /// `LogAppendTime` stamped on the batches, or -1 for `CreateTime` topics.
        log_append_time: i64,
        /// Log start offset after the append (for the produce response).
        log_start_offset: i64,
    },
    /// The same idempotent batch was already appended: acknowledge with its original offsets and
    /// write nothing.
    Duplicate {
        /// The offset originally assigned to the batch's first record.
        base_offset: i64,
        /// The offset originally assigned to its last record.
        last_offset: i64,
        /// Log start offset now.
        log_start_offset: i64,
    },
}

/// A byte range of whole batches to serve to a fetch, read after the partition lock is released.
#[derive(Debug)]
pub struct ReadResult {
    /// Where the bytes come from (cloned segment file handles and positions).
    pub(crate) chunks: Vec<FileRange>,
    /// The log end offset (high watermark) observed when the read was planned.
    pub high_watermark: i64,
    /// The log start offset observed when the read was planned.
    pub log_start_offset: i64,
    /// The last stable offset observed when the read was planned.
    pub last_stable_offset: i64,
    /// For `read_committed` reads: the aborted transactions overlapping what was read.
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
}

impl ReadResult {
    /// Total number of bytes this read will return.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.len as usize).sum()
    }

    /// True when there is nothing to return (the fetch offset is at the end of the log).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The planned byte ranges, in order: a fetch can send them from the files directly.
    pub fn ranges(&self) -> &[FileRange] {
        &self.chunks
    }

    /// Reads the planned byte ranges (`pread`, from the page cache in the common case).
    pub fn read(&self) -> Result<Bytes, LogError> {
        let mut buf = Vec::with_capacity(self.len());
        for c in &self.chunks {
            c.read_into(&mut buf)?;
        }
        Ok(Bytes::from(buf))
    }
}

/// Lets the broker fsync a partition's unflushed data without holding the partition lock.
#[derive(Debug, Clone)]
pub struct SyncHandle {
    /// Files with unflushed writes, in order (rolled segments first, then the active one).
    pub(crate) files: Vec<std::sync::Arc<std::fs::File>>,
    /// The log end offset covered once these files are synced.
    pub end_offset: i64,
    /// Where `end_offset` lies: the active segment's base offset and size at that moment.
    pub(crate) end_position: Watermark,
    /// The partition directory, for error messages.
    pub(crate) dir: Arc<Path>,
    /// Where `end_offset` is recorded once the sync completed (see recovery).
    pub(crate) recovery_point: Arc<std::fs::File>,
}

impl SyncHandle {
    /// `fdatasync`s every file; afterwards everything below `end_offset` is durable.
    pub fn sync(&self) -> Result<(), LogError> {
        for f in &self.files {
            f.sync_data()
                .map_err(|e| LogError::io(self.dir.as_ref(), e))?;
        }
        // Not fsynced itself: a stale value only makes recovery check more batches.
        if let Err(e) = self
            .recovery_point
            .write_all_at(&self.end_offset.to_be_bytes(), 0)
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot record recovery point");
        }
        Ok(())
    }
}

/// The high watermark: the end of what readers may see, with the byte position it falls on so
/// that a read can stop there without decoding anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watermark {
    /// First offset readers may not see yet.
    pub(crate) offset: i64,
    /// Base offset of the segment `offset` was the end of when the watermark was taken.
    pub(crate) segment_base: i64,
    /// That segment's size at the time: the visible prefix of its file.
    pub(crate) position: u64,
}

/// The segmented log of one topic partition.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    /// Shared so sync handles can fsync the directory after segment files were created.
    dir_arc: Arc<Path>,
    dir_handle: Arc<std::fs::File>,
    recovery_point: Arc<std::fs::File>,
    config: LogConfig,
    /// Segments in offset order; the last one is the active segment. Never empty.
    segments: Vec<Segment>,
    log_start_offset: i64,
    synced_offset: i64,
    /// What fetches may see: the log end offset, or with `visible_after_sync` the synced end.
    high_watermark: Watermark,
    /// Base offset of the newest segment whose directory entry is not yet fsynced.
    dir_dirty_at: Option<i64>,
    producers: ProducerStateMap,
    aborted: AbortedTxnIndex,
    cleaner: crate::compaction::CleanerState,
    /// A copy to another directory is in progress: compaction waits.
    relocating: bool,
}

impl PartitionLog {
    /// Opens the partition stored in `dir` (creating it if empty) and recovers it: validates the
    /// tail of the active segment by CRC, truncates a torn tail, rebuilds missing indexes and the
    /// idempotent-producer state.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Self, LogError> {
        let rec = recovery::recover(dir, &config)?;
        // Whatever recovery read back is what the disk holds from now on.
        for seg in &rec.segments {
            seg.sync_all()?;
        }
        let recovery_point = recovery::open_recovery_point(dir)?;
        let leo = rec.segments.last().map_or(0, Segment::next_offset);
        recovery_point
            .write_all_at(&leo.to_be_bytes(), 0)
            .and_then(|()| recovery_point.set_len(8))
            .and_then(|()| recovery_point.sync_data())
            .map_err(|e| LogError::io(dir.join(recovery::RECOVERY_POINT_FILE), e))?;
        let aborted = AbortedTxnIndex::open(dir, rec.aborted, leo)?;
        let dir_handle = std::fs::File::open(dir).map_err(|e| LogError::io(dir, e))?;
        dir_handle.sync_all().map_err(|e| LogError::io(dir, e))?;
        let log = PartitionLog {
            dir: dir.to_path_buf(),
            dir_arc: Arc::from(dir),
            dir_handle: Arc::new(dir_handle),
            recovery_point: Arc::new(recovery_point),
            config,
            segments: rec.segments,
            log_start_offset: rec.log_start_offset,
            synced_offset: 0,
            high_watermark: Watermark {
                offset: 0,
                segment_base: 0,
                position: 0,
            },
            dir_dirty_at: None,
            producers: rec.producers,
            aborted,
            cleaner: Default::default(),
            relocating: false,
        };
        // What recovery kept is treated as durable (it is on disk, or in the page cache of a
        // kernel that outlived the broker process), so all of it is visible.
        let log = PartitionLog {
            synced_offset: log.log_end_offset(),
            high_watermark: log.end_watermark(),
            ..log
        };
        tracing::debug!(
            dir = %dir.display(),
            segments = log.segments.len(),
            log_start_offset = log.log_start_offset,
            log_end_offset = log.log_end_offset(),
            producers = log.producers.len(),
            aborted_transactions = log.aborted.len(),
            "opened partition log"
        );
        Ok(log)
    }

    /// Replaces the settings (after AlterConfigs); takes effect for the next roll/retention pass.
    pub fn set_config(&mut self, config: LogConfig) {
        for seg in &mut self.segments {
            seg.set_index_interval(config.index_interval_bytes);
        }
        self.config = config;
    }

    /// The settings in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    fn active(&self) -> &Segment {
        // `segments` is never empty: open creates a segment and nothing removes the last one.
        &self.segments[self.segments.len() - 1]
    }

    fn active_mut(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    /// Validates and appends a produce request's record set (one or more v2 batches, usually
    /// one) and writes it to the active segment with the broker's fields (base offset,
    /// timestamps, CRC) stamped. Nothing is written unless every batch in the set is valid.
    /// `now_ms` is the broker's clock, used for `LogAppendTime` and segment rolling.
    pub fn append(
        &mut self,
        records: impl Into<Bytes>,
        now_ms: i64,
    ) -> Result<AppendOutcome, LogError> {
        let validated = ValidatedRecords::new(records, &self.config)?;
        self.append_validated(validated, now_ms)
    }

    /// Appends a record set validated beforehand (see [`ValidatedRecords::new`]), so that the
    /// caller can pay for validation, decompression included, without holding this log's lock.
    pub fn append_validated(
        &mut self,
        validated: ValidatedRecords,
        now_ms: i64,
    ) -> Result<AppendOutcome, LogError> {
        let ValidatedRecords {
            records,
            mut batches,
            origin,
            guard,
        } = validated;
        if let Some(dup) = self.check_sequences(&batches, origin)? {
            return Ok(AppendOutcome::Duplicate {
                base_offset: dup.first_offset,
                last_offset: dup.last_offset,
                log_start_offset: self.log_start_offset,
            });
        }

        if origin == Origin::Client {
            for b in &batches {
                self.producers.check_verified(&b.header, guard)?;
            }
        }
        let log_append_time =
            (self.config.timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        let base_offset = self.log_end_offset();
        let mut next = base_offset;
        let mut headers = Vec::with_capacity(batches.len());
        for b in &mut batches {
            let bytes = &records[b.position..b.position + b.header.total_size()];
            let header = batch::stamped_header(bytes, next, log_append_time);
            b.header = BatchHeader::parse(&header)?;
            next = b.header.last_offset() + 1;
            headers.push(header);
        }
        let last_offset = next - 1;
        // Each batch is written as its stamped header plus its records from the request.
        let mut parts: Vec<IoSlice<'_>> = batches
            .iter()
            .zip(&headers)
            .flat_map(|(b, header)| {
                let records = &records[b.position + batch::HEADER_SIZE..b.position + b.size()];
                [IoSlice::new(header), IoSlice::new(records)]
            })
            .collect();
        self.write_batches(&mut parts, records.len(), &batches, last_offset, now_ms)?;
        for b in &batches {
            self.producers.record(&b.header);
        }
        Ok(AppendOutcome::Appended {
            base_offset,
            last_offset,
            log_append_time: log_append_time.unwrap_or(-1),
            log_start_offset: self.log_start_offset,
        })
    }

    /// Writes stamped batches to the active segment (rolling first if due) and publishes them
    /// to readers unless visibility waits for the fsync.
    /// `parts` are the bytes to write in order (`len` in total); `batches` give each batch's
    /// position within them.
    fn write_batches(
        &mut self,
        parts: &mut [IoSlice<'_>],
        len: usize,
        batches: &[batch::RecordBatchRef],
        last_offset: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        if self
            .active()
            .needs_roll(len as u64, last_offset, now_ms, &self.config)
        {
            self.roll(now_ms)?;
        }
        self.active_mut().append(parts, len, batches, now_ms)?;
        if !self.config.visible_after_sync {
            self.high_watermark = self.end_watermark();
        }
        Ok(())
    }

    /// Writes a transaction marker (COMMIT or ABORT control batch) for `marker.producer_id`,
    /// closing its open transaction here; an abort is added to the aborted-transaction index.
    /// Returns the marker's offset. A marker for a producer without an open transaction is
    /// still written (coordinator retries and recovery may repeat one) and changes nothing.
    pub fn append_marker(&mut self, marker: &TxnMarker, now_ms: i64) -> Result<i64, LogError> {
        self.producers.check_marker(marker)?;
        let mut bytes = marker.to_batch(now_ms);
        let offset = self.log_end_offset();
        batch::stamp_batch(&mut bytes, offset, None);
        let header = BatchHeader::parse(&bytes)?;
        let batches = [batch::RecordBatchRef {
            position: 0,
            header,
        }];
        self.write_batches(
            &mut [IoSlice::new(&bytes)],
            bytes.len(),
            &batches,
            offset,
            now_ms,
        )?;
        let aborted = self.producers.complete_txn(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            Some(marker.control),
            offset,
        );
        if let Some(entry) = aborted {
            self.aborted.push(entry)?;
        }
        Ok(offset)
    }

    /// Starts the verification of `producer_id`'s next transactional write (KIP-890): call
    /// before asking the coordinator, then append with
    /// [`ValidatedRecords::with_verification`]. A marker written in between voids the guard,
    /// so a write racing the end of its transaction is refused instead of opening a
    /// transaction no marker would ever close.
    pub fn begin_verification(&mut self, producer_id: i64) -> u64 {
        self.producers.begin_verification(producer_id)
    }

    /// The last stable offset: the first offset `read_committed` readers may not see (the
    /// start of the oldest open transaction, or the high watermark).
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark.offset;
        self.producers
            .first_unstable_offset()
            .map_or(hw, |first| first.min(hw).max(self.log_start_offset))
    }

    /// Open transactions in this partition: `(producer id, epoch, first offset)`, oldest first.
    pub fn open_transactions(&self) -> Vec<(i64, i16, i64)> {
        self.producers.open_transactions()
    }

    /// The producers this partition knows (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerInfo> {
        self.producers.describe()
    }

    /// Idempotence checks for a validated record set; returns the original offsets when the set
    /// is a retried batch. A set of several batches is checked as a sequence, and may not contain
    /// a duplicate (clients never send one; answering it would need several offset ranges).
    fn check_sequences(
        &self,
        batches: &[batch::RecordBatchRef],
        origin: Origin,
    ) -> Result<Option<crate::producer_state::BatchMeta>, LogError> {
        if let [only] = batches {
            return match self.producers.check(&only.header, origin)? {
                SequenceCheck::Duplicate(meta) => Ok(Some(meta)),
                SequenceCheck::Append => Ok(None),
            };
        }
        if !batches.iter().any(|b| b.header.has_producer_id()) {
            return Ok(None);
        }
        let mut tentative = self.producers.clone();
        let mut next = self.log_end_offset();
        for b in batches {
            if let SequenceCheck::Duplicate(_) = tentative.check(&b.header, origin)? {
                return Err(LogError::CorruptBatch(
                    "a record set of several batches repeats an already appended idempotent \
                     batch; send retries as single batches"
                        .into(),
                ));
            }
            let mut h = b.header;
            h.base_offset = next;
            next = h.last_offset() + 1;
            tentative.record(&h);
        }
        Ok(None)
    }

    /// Starts a new active segment at the log end offset (no-op if the active one is empty).
    fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        if self.active().is_empty() {
            return Ok(());
        }
        let base = self.log_end_offset();
        let seg = Segment::create(&self.dir, base, &self.config)?;
        tracing::debug!(dir = %self.dir.display(), base_offset = base, now_ms, "rolled segment");
        self.segments.push(seg);
        self.dir_dirty_at = Some(base);
        Ok(())
    }

    /// Plans a read of whole batches starting with the batch containing `offset`, up to about
    /// `max_bytes` (the first batch is always returned whole even if larger, as Kafka does).
    /// `offset == log_end_offset` gives an empty result; outside the range is an error.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, LogError> {
        self.read_isolated(offset, max_bytes, Isolation::ReadUncommitted)
    }

    /// [`Self::read`] at an isolation level: `read_committed` reads stop at the last stable
    /// offset and list the aborted transactions overlapping `offset..last_stable_offset`.
    pub fn read_isolated(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<ReadResult, LogError> {
        let start = self.log_start_offset;
        let end = self.log_end_offset();
        if offset < start || offset > end {
            return Err(LogError::OffsetOutOfRange { offset, start, end });
        }
        let lso = self.last_stable_offset();
        let (hw, aborted_transactions) = match isolation {
            Isolation::ReadUncommitted => (self.high_watermark, None),
            Isolation::ReadCommitted => (
                self.watermark_at(lso)?,
                Some(self.aborted.overlapping(offset, lso)),
            ),
        };
        let mut chunks = Vec::new();
        let first = self.segments.partition_point(|s| s.next_offset() <= offset);
        let mut remaining = max_bytes as u64;
        // Between the high watermark and the log end offset a read is empty, not an error.
        let visible_segments = self
            .segments
            .iter()
            .skip(first)
            .take_while(|s| s.base_offset < hw.offset);
        for seg in visible_segments {
            let from = offset.max(seg.base_offset);
            let visible = if seg.next_offset() <= hw.offset {
                seg.size()
            } else if seg.base_offset == hw.segment_base {
                hw.position
            } else {
                0
            };
            let Some(range) = seg.plan_read(from, remaining, chunks.is_empty(), visible)? else {
                if chunks.is_empty() {
                    continue;
                }
                break;
            };
            remaining = remaining.saturating_sub(range.len);
            chunks.push(range);
            if remaining == 0 {
                break;
            }
        }
        Ok(ReadResult {
            chunks,
            high_watermark: self.high_watermark.offset,
            log_start_offset: start,
            last_stable_offset: lso,
            aborted_transactions,
        })
    }

    /// The watermark (with its byte position) at `offset`, which must be the high watermark
    /// or the base offset of a batch below it (a transaction's first batch).
    fn watermark_at(&self, offset: i64) -> Result<Watermark, LogError> {
        if offset >= self.high_watermark.offset {
            return Ok(self.high_watermark);
        }
        let i = self.segments.partition_point(|s| s.next_offset() <= offset);
        let Some(seg) = self.segments.get(i) else {
            return Ok(self.high_watermark);
        };
        let position = match seg.locate(offset)? {
            Some((pos, h)) if h.base_offset == offset => pos,
            // Not a batch boundary (cannot happen for a transaction's start): show nothing of
            // the batch holding it.
            Some((pos, _)) => pos,
            None => 0,
        };
        Ok(Watermark {
            offset,
            segment_base: seg.base_offset,
            position,
        })
    }

    /// The first offset fetches may not see yet: the log end offset, or — with
    /// `visible_after_sync` — the end of what is fsynced, so a consumer never sees a record
    /// that a machine crash could take back (and whose offset would then be reused).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.offset
    }

    /// The watermark at the current log end.
    fn end_watermark(&self) -> Watermark {
        let active = self.active();
        Watermark {
            offset: active.next_offset(),
            segment_base: active.base_offset,
            position: active.size(),
        }
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record will get (the high watermark on one node).
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size).sum()
    }

    /// Number of segments (closed ones plus the active one).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// ListOffsets by timestamp: the first offset whose record timestamp is `>= timestamp_ms`,
    /// with that record's timestamp; `None` if there is none.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        let mut buf = Vec::new();
        for seg in &self.segments {
            if seg.max_timestamp().0 < timestamp_ms || seg.next_offset() <= self.log_start_offset {
                continue;
            }
            let Some((mut pos, mut h)) = seg.find_by_timestamp(timestamp_ms)? else {
                continue;
            };
            // Usually the first candidate batch answers; batches wholly below the log start
            // offset are skipped.
            loop {
                if h.max_timestamp >= timestamp_ms && h.last_offset() >= self.log_start_offset {
                    seg.read_batch(pos, &h, &mut buf)?;
                    let found = crate::record::find_record(
                        &buf,
                        &h,
                        self.config.max_uncompressed_batch_bytes,
                        self.log_start_offset,
                        |t| t >= timestamp_ms,
                    )?;
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                pos += h.total_size() as u64;
                match seg.header_at(pos)? {
                    Some(next) => h = next,
                    None => break,
                }
            }
        }
        Ok(None)
    }

    /// ListOffsets `MAX_TIMESTAMP`: offset and timestamp of the record with the largest timestamp.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let (ts, batch_offset) = self
            .segments
            .iter()
            .filter(|s| !s.is_empty())
            .map(Segment::max_timestamp)
            .fold(None, |best: Option<(i64, i64)>, cur| match best {
                Some(b) if b.0 >= cur.0 => Some(b),
                _ => Some(cur),
            })?;
        if ts < 0 {
            return None;
        }
        // Pin down the exact record inside the batch; fall back to the batch's base offset.
        let exact = (|| -> Result<Option<(i64, i64)>, LogError> {
            let first = self
                .segments
                .partition_point(|s| s.next_offset() <= batch_offset);
            let Some(seg) = self.segments.get(first) else {
                return Ok(None);
            };
            let Some((pos, h)) = seg.locate(batch_offset)? else {
                return Ok(None);
            };
            let mut buf = Vec::new();
            seg.read_batch(pos, &h, &mut buf)?;
            crate::record::find_record(
                &buf,
                &h,
                self.config.max_uncompressed_batch_bytes,
                batch_offset,
                |t| t >= ts,
            )
        })();
        match exact {
            Ok(Some(found)) => Some(found),
            Ok(None) => Some((batch_offset, ts)),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot decode batch for max timestamp");
                Some((batch_offset, ts))
            }
        }
    }

    /// What must be fsynced for everything appended so far to be durable, or `None` if it already
    /// is. Cheap: clones file handles.
    pub fn sync_handle(&self) -> Option<SyncHandle> {
        let end = self.log_end_offset();
        if self.synced_offset >= end {
            return None;
        }
        let mut files: Vec<Arc<std::fs::File>> = self
            .segments
            .iter()
            .filter(|s| s.next_offset() > self.synced_offset && !s.is_empty())
            .map(|s| Arc::clone(s.file()))
            .collect();
        if self.dir_dirty_at.is_some() {
            files.push(Arc::clone(&self.dir_handle));
        }
        Some(SyncHandle {
            files,
            end_offset: end,
            end_position: self.end_watermark(),
            dir: Arc::clone(&self.dir_arc),
            recovery_point: Arc::clone(&self.recovery_point),
        })
    }

    /// Records that `synced` (from [`PartitionLog::sync_handle`]) completed; with
    /// `visible_after_sync` this advances the high watermark. Returns true if it moved.
    pub fn mark_synced(&mut self, synced: &SyncHandle) -> bool {
        let end_offset = synced.end_offset;
        let end = end_offset.min(self.log_end_offset());
        self.synced_offset = self.synced_offset.max(end);
        let advanced = self.config.visible_after_sync
            && end_offset > self.high_watermark.offset
            && end_offset <= self.log_end_offset();
        if advanced {
            self.high_watermark = synced.end_position;
        }
        if self.dir_dirty_at.is_some_and(|base| end_offset > base) {
            self.dir_dirty_at = None;
        }
        advanced
    }

    /// Offset below which everything is known to be fsynced.
    pub fn synced_offset(&self) -> i64 {
        self.synced_offset
    }

    /// DeleteRecords: moves the log start offset up to `offset` (removing whole segments that
    /// fall below it). Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        // As in Kafka, only what consumers can see may be deleted.
        let end = self.high_watermark();
        if offset > end || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset,
                end,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        recovery::write_log_start(&self.dir, offset)?;
        self.log_start_offset = offset;
        if self.active().next_offset() <= offset {
            self.roll(0)?;
        }
        self.remove_segments_while(|seg, _| seg.next_offset() <= offset)?;
        Ok(self.log_start_offset)
    }

    /// Removes closed segments from the front while `pred(segment, bytes_left)` holds, where
    /// `bytes_left` is the log size without that segment. Returns how many were removed and
    /// moves the log start offset past them.
    fn remove_segments_while(
        &mut self,
        mut pred: impl FnMut(&Segment, u64) -> bool,
    ) -> Result<usize, LogError> {
        let mut size = self.size_bytes();
        let mut n = 0;
        while self.segments.len() > 1 {
            let seg = &self.segments[0];
            let left = size - seg.size();
            if !pred(seg, left) {
                break;
            }
            let next_base = self.segments[1].base_offset;
            if next_base > self.log_start_offset {
                recovery::write_log_start(&self.dir, next_base)?;
                self.log_start_offset = next_base;
            }
            let seg = self.segments.remove(0);
            seg.delete_files()?;
            tracing::info!(segment = %seg.log_path().display(), "deleted segment");
            size = left;
            n += 1;
        }
        if n > 0 {
            self.aborted.prune_below(self.log_start_offset)?;
        }
        Ok(n)
    }

    /// Rolls the active segment if `segment.ms` has elapsed (size rolls happen on append).
    pub fn maybe_roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        if self.active().time_expired(now_ms, &self.config) {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Applies `retention.ms` and `retention.bytes` (policy `delete`), never touching the active
    /// segment. Returns the number of segments removed.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let config = self.config.clone();
        crate::retention::enforce(self, &config, now_ms)
    }

    /// Removes closed segments from the front while `pred` holds (see retention).
    pub(crate) fn delete_oldest_while(
        &mut self,
        pred: impl FnMut(&Segment, u64) -> bool,
    ) -> Result<usize, LogError> {
        self.remove_segments_while(pred)
    }

    /// Compacts the closed segments (policy `compact`): keeps the latest record per key, drops
    /// tombstones older than `delete.retention.ms`. Returns the number of records removed.
    pub fn compact(&mut self, now_ms: i64) -> Result<u64, LogError> {
        if self.relocating {
            return Ok(0);
        }
        let config = self.config.clone();
        // Only closed segments wholly below the last stable offset: the cleaner must not
        // rewrite bytes that a read may still cut at a watermark's position, nor decide about
        // records of a transaction still open.
        let lso = self.last_stable_offset();
        let closed = self.segments[..self.segments.len() - 1]
            .iter()
            .take_while(|s| s.next_offset() <= lso)
            .count();
        let aborted = &self.aborted;
        crate::compaction::compact(
            &self.dir,
            &mut self.segments[..closed],
            &config,
            now_ms,
            &mut self.cleaner,
            |h| h.is_transactional() && aborted.is_aborted(h),
        )
    }

    /// Flushes and closes the log (used at shutdown); data and indexes are fsynced.
    pub fn close(self) -> Result<(), LogError> {
        for seg in &self.segments {
            seg.sync_all()?;
        }
        recovery::fsync_dir(&self.dir)?;
        self.aborted.sync()?;
        self.producers
            .write_snapshot(&self.dir, self.log_end_offset())?;
        tracing::debug!(dir = %self.dir.display(), log_end_offset = self.log_end_offset(), "closed partition log");
        Ok(())
    }

    /// Removes the partition's directory and all its files (DeleteTopics).
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).map_err(|e| LogError::io(&dir, e))
    }
}
