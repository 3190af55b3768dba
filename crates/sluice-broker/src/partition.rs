//! A partition as the broker sees it: the log behind a mutex, plus what waits on it.
//!
//! Contract: [`Partition::append`] is synchronous (validate + assign offsets + write under the
//! lock) and wakes parked fetches; durability is awaited separately through
//! [`crate::durability::Flusher`]. [`Partition::read`] plans under the lock and reads bytes
//! after releasing it.

use std::path::Path;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use sluice_log::{
    AppendOutcome, Isolation, LogConfig, LogError, PartitionLog, ReadResult, SyncHandle, TxnMarker,
    ValidatedRecords,
};

/// One topic partition hosted by this broker.
#[derive(Debug)]
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub index: i32,
    /// The log. Private so that no caller can hold its lock across an `.await` or an fsync:
    /// everything goes through methods or the synchronous closure of [`Partition::with_log`].
    log: parking_lot::Mutex<PartitionLog>,
    /// Woken whenever the high watermark advances, so parked long-poll fetches re-check.
    hw_advanced: tokio::sync::Notify,
    /// Set, under the log lock, when the partition's topic is deleted: a move in progress must
    /// not switch it to a new directory afterwards.
    retired: std::sync::atomic::AtomicBool,
}

impl Partition {
    /// Opens (recovering) the partition's log in `dir`.
    pub fn open(topic: &str, index: i32, dir: &Path, config: LogConfig) -> Result<Self, LogError> {
        let log = PartitionLog::open(dir, config)?;
        Ok(Partition {
            topic: topic.to_owned(),
            index,
            log: parking_lot::Mutex::new(log),
            hw_advanced: tokio::sync::Notify::new(),
            retired: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The directory the log lives in now (a move changes it).
    pub fn dir(&self) -> std::path::PathBuf {
        self.log.lock().dir().to_owned()
    }

    /// Marks the partition deleted and returns its directory, atomically with respect to a
    /// move's switch (see [`Partition::is_retired`]).
    pub fn retire(&self) -> std::path::PathBuf {
        self.with_log(|log| {
            self.retired
                .store(true, std::sync::atomic::Ordering::Relaxed);
            log.dir().to_owned()
        })
    }

    /// True once [`Partition::retire`] ran; stable while the log lock is held.
    pub fn is_retired(&self) -> bool {
        self.retired.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Validates and appends a produce request's record set; wakes parked fetches if the new
    /// records are already visible (they are not while the high watermark waits for the fsync).
    /// Validation (record framing, bounded decompression) runs before the log's lock is taken.
    pub fn append(
        &self,
        records: impl Into<Bytes>,
        now_ms: i64,
    ) -> Result<AppendOutcome, LogError> {
        self.append_guarded(records, now_ms, None)
    }

    /// [`Self::append`] for a transactional write verified under `guard` (see
    /// [`PartitionLog::begin_verification`]).
    pub fn append_guarded(
        &self,
        records: impl Into<Bytes>,
        now_ms: i64,
        guard: Option<u64>,
    ) -> Result<AppendOutcome, LogError> {
        let config = self.log.lock().config().clone();
        let mut validated = ValidatedRecords::new(records, &config)?;
        if let Some(guard) = guard {
            validated = validated.with_verification(guard);
        }
        self.append_validated(validated, now_ms)
    }

    /// Appends records a coordinator writes on a producer's behalf (transactional offset
    /// commits): validated like a produce, epoch-checked, without sequence numbers.
    pub fn append_from_coordinator(
        &self,
        records: impl Into<Bytes>,
        now_ms: i64,
    ) -> Result<AppendOutcome, LogError> {
        let config = self.log.lock().config().clone();
        let validated = ValidatedRecords::from_coordinator(records, &config)?;
        self.append_validated(validated, now_ms)
    }

    /// Appends validated records and wakes parked fetches if they became visible.
    pub fn append_validated(
        &self,
        validated: ValidatedRecords,
        now_ms: i64,
    ) -> Result<AppendOutcome, LogError> {
        self.with_log_then_wake(|log| log.append_validated(validated, now_ms))
    }

    /// Writes a transaction marker; returns its offset. Wakes parked fetches, including
    /// `read_committed` ones waiting for the last stable offset to move.
    pub fn append_marker(&self, marker: &TxnMarker, now_ms: i64) -> Result<i64, LogError> {
        self.with_log_then_wake(|log| log.append_marker(marker, now_ms))
    }

    /// Runs `f` under the log lock, then wakes parked fetches if the high watermark or the
    /// last stable offset moved.
    fn with_log_then_wake<T>(
        &self,
        f: impl FnOnce(&mut PartitionLog) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        let (out, moved) = {
            let mut log = self.log.lock();
            let before = (log.high_watermark(), log.last_stable_offset());
            let out = f(&mut log)?;
            (
                out,
                (log.high_watermark(), log.last_stable_offset()) != before,
            )
        };
        if moved {
            self.hw_advanced.notify_waiters();
        }
        Ok(out)
    }

    /// Records a completed fsync and wakes parked fetches if it made records visible.
    pub fn mark_synced(&self, synced: &SyncHandle) {
        let moved = self.log.lock().mark_synced(synced);
        if moved {
            self.hw_advanced.notify_waiters();
        }
    }

    /// Reads up to `max_bytes` of whole batches from `offset`; returns the bytes with the high
    /// watermark and log start offset.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<(Bytes, i64, i64), LogError> {
        let plan = self.plan_read(offset, max_bytes, Isolation::ReadUncommitted)?;
        let bytes = plan.read()?;
        Ok((bytes, plan.high_watermark, plan.log_start_offset))
    }

    /// Plans a read under the lock without touching the data yet, so the caller can look at its
    /// size (fetch budgets) before paying for the `pread`.
    pub fn plan_read(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<ReadResult, LogError> {
        self.log.lock().read_isolated(offset, max_bytes, isolation)
    }

    /// The high watermark: the end of what consumers may read (see
    /// [`PartitionLog::high_watermark`]).
    pub fn high_watermark(&self) -> i64 {
        self.log.lock().high_watermark()
    }

    /// The last stable offset (see [`PartitionLog::last_stable_offset`]).
    pub fn last_stable_offset(&self) -> i64 {
        self.log.lock().last_stable_offset()
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log.lock().log_start_offset()
    }

    /// Offset below which everything is fsynced.
    pub fn synced_offset(&self) -> i64 {
        self.log.lock().synced_offset()
    }

    /// What the flusher must fsync to make everything appended so far durable (see
    /// [`PartitionLog::sync_handle`]).
    pub fn sync_handle(&self) -> Option<SyncHandle> {
        self.log.lock().sync_handle()
    }

    /// Runs `f` with the log locked, for the operations that need several steps atomically
    /// (offset lookups, retention, DeleteRecords). `f` is synchronous, so the lock cannot be
    /// held across an `.await`; do not fsync or do network I/O inside it.
    pub fn with_log<T>(&self, f: impl FnOnce(&mut PartitionLog) -> T) -> T {
        f(&mut self.log.lock())
    }

    /// Takes the log out of a partition nobody else holds (closing at shutdown).
    pub fn into_log(self) -> PartitionLog {
        self.log.into_inner()
    }

    /// A future that completes after the next advance of the high watermark. Call `enable()` on it (pinned) before
    /// re-checking the log so that an append in between is not missed.
    pub fn hw_advanced(&self) -> tokio::sync::futures::Notified<'_> {
        self.hw_advanced.notified()
    }
}

/// The Kafka error a storage failure is reported as.
pub fn log_error_code(err: &LogError) -> ResponseError {
    match err {
        LogError::CorruptBatch(_) => ResponseError::CorruptMessage,
        LogError::UnsupportedMagic(_) => ResponseError::UnsupportedForMessageFormat,
        LogError::MessageTooLarge { .. } | LogError::UncompressedTooLarge { .. } => {
            ResponseError::MessageTooLarge
        }
        LogError::InvalidRecord { .. } => ResponseError::InvalidRecord,
        LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        LogError::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Io { .. } => ResponseError::KafkaStorageError,
    }
}
