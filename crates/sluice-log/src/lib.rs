//! Sluice's storage engine: one append-only, segmented log per topic partition.
//!
//! Record batches (Kafka message format v2) are stored exactly as producers sent them; the log
//! only assigns the base offset (and, for `LogAppendTime` topics, the timestamps) in place and
//! recomputes the batch CRC. Reads return byte ranges of whole batches, so compression codecs and
//! record headers pass through untouched and a fetch never re-encodes records.
//!
//! Contract used by `sluice-broker` (keep these names stable; see `ARCHITECTURE.md`):
//!
//! - [`PartitionLog::open`] opens (or creates) a partition directory and runs recovery: the tail
//!   batches of the active segment are validated by CRC, a torn tail is truncated, and missing or
//!   damaged indexes are rebuilt. Producer (idempotence) state is rebuilt from batch headers.
//! - [`PartitionLog::append`] validates one produce request's record set (every batch's CRC,
//!   size limits, magic v2), checks idempotent-producer sequences, assigns offsets in place and
//!   writes it to the active segment (a `write`, no fsync). It returns an [`AppendOutcome`].
//! - [`PartitionLog::sync_handle`] gives a [`SyncHandle`] that fsyncs the log *without* holding
//!   the partition lock, so the broker's group-commit flusher can share one fsync among many
//!   producers; [`PartitionLog::mark_synced`] records what became durable.
//! - [`PartitionLog::read`] returns whole batches starting at the batch that contains `offset`.
//! - Offsets: [`PartitionLog::log_start_offset`], [`PartitionLog::log_end_offset`] (the high
//!   watermark on a single-node broker), [`PartitionLog::offset_for_timestamp`].
//! - Housekeeping: [`PartitionLog::delete_records_before`], [`PartitionLog::enforce_retention`],
//!   [`PartitionLog::compact`], [`PartitionLog::maybe_roll`].
//! - Moving a live log to another directory: [`LogCopy`] copies [`PartitionLog::files`] in
//!   rounds without the lock, then [`PartitionLog::relocate`] finishes and switches under it.

//!
//! # On-disk layout
//!
//! One directory per partition (the broker chooses its path):
//!
//! ```text
//! 00000000000000000000.log        record batches, exactly as produced (base offset stamped)
//! 00000000000000000000.index      sparse offset index: u32 relative offset | u32 file position
//! 00000000000000000000.timeindex  time index: i64 max timestamp so far | u32 relative offset
//! 00000000000000123456.log        next segment, named after its base offset (20 digits) ...
//! log-start-offset                log start offset moved by DeleteRecords/retention (text)
//! recovery-point                  log end offset of the last completed fsync (i64, BE)
//! producer_state.json             idempotent-producer snapshot, only after a clean close()
//! aborted-transactions.txnindex   aborted transactions (Kafka's 34-byte .txnindex entries)
//! *.cleaned, *.tmp                in-progress compaction / atomic writes, removed on open
//! ```
//!
//! Index entries are added every `index.interval.bytes`; both indexes are kept in memory and
//! mirrored to disk without fsync, because recovery checks and rebuilds them. The presence of
//! `producer_state.json` marks a clean shutdown: open then trusts the (fsynced) indexes and only
//! CRC-checks the active segment's tail. Otherwise every segment's batch headers are scanned to
//! rebuild the indexes and producer state, batches past the recovery point or the last
//! plausible index entry are CRC-checked, and the log is cut at the first torn or corrupt batch.
//!
//! Modules: [`batch`] (v2 header parsing/validation), `segment`, `index`, `recovery`,
//! `retention`, `compaction`, `producer_state` (idempotence), `record` (record-level reading
//! for produce validation, ListOffsets and compaction), `codec` (bounded decompression), [`partition`] (the [`PartitionLog`]).

pub mod batch;
mod codec;
mod compaction;
pub mod config;
pub mod error;
mod fileio;
mod index;
pub mod partition;
mod producer_state;
mod record;
mod recovery;
mod retention;
mod segment;
mod txn;

pub use batch::{BatchHeader, RecordBatchRef};
pub use config::{CleanupPolicy, LogConfig, TimestampType};
pub use error::LogError;
pub use partition::{
    AppendOutcome, FileRange, Isolation, LogCopy, LogFiles, PartitionLog, ReadResult, SyncHandle,
    ValidatedRecords,
};
pub use producer_state::{Origin, ProducerInfo};
pub use txn::{AbortedTxn, ControlType, TxnMarker};

#[cfg(test)]
mod log_tests;
#[cfg(test)]
mod txn_tests;
