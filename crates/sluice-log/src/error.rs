//! Errors of the storage engine. Each variant maps onto one Kafka error code in the broker.

use std::path::PathBuf;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A batch failed its CRC32C check or is structurally invalid (Kafka `CORRUPT_MESSAGE`).
    #[error("corrupt record batch: {0}")]
    CorruptBatch(String),
    /// The record set is not message format v2 (Kafka `UNSUPPORTED_FOR_MESSAGE_FORMAT`).
    #[error("unsupported record batch magic {0}; only message format v2 is accepted")]
    UnsupportedMagic(i8),
    /// A batch is larger than `max.message.bytes` (Kafka `MESSAGE_TOO_LARGE`).
    #[error("record batch of {size} bytes exceeds max.message.bytes={max}")]
    MessageTooLarge {
        /// Size of the offending batch in bytes.
        size: usize,
        /// The configured limit.
        max: u32,
    },
    /// A record inside a batch is invalid (Kafka `INVALID_RECORD`): malformed framing, or no
    /// key in a compacted topic.
    #[error("invalid record: {reason}")]
    InvalidRecord {
        /// What is wrong, for the partition's error message.
        reason: String,
        /// `(index in the batch, message)` of each refused record (KIP-467 `record_errors`).
        record_errors: Vec<(i32, String)>,
    },
    /// A compressed batch inflates past `max_uncompressed_batch_bytes` (`MESSAGE_TOO_LARGE`).
    #[error("record batch decompresses to more than {limit} bytes (the broker setting max_uncompressed_batch_bytes); send smaller batches or raise the setting")]
    UncompressedTooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// A transactional batch would open a transaction in this partition without a current
    /// verification against the coordinator (Kafka `INVALID_TXN_STATE`): its transaction
    /// ended meanwhile, or it was never verified.
    #[error("producer {producer_id} has no verified open transaction in this partition")]
    InvalidTxnState {
        /// The producer id of the batch.
        producer_id: i64,
    },
    /// An idempotent producer skipped a sequence number (Kafka `OUT_OF_ORDER_SEQUENCE_NUMBER`).
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        /// The producer id of the batch.
        producer_id: i64,
        /// The next sequence the log expected.
        expected: i32,
        /// The batch's base sequence.
        got: i32,
    },
    /// A producer epoch older than the one the log knows (Kafka `INVALID_PRODUCER_EPOCH`).
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer id of the batch.
        producer_id: i64,
        /// The epoch the log last saw for it.
        current: i16,
        /// The batch's epoch.
        got: i16,
    },
    /// Requested offset is outside `[log_start_offset, log_end_offset]` (`OFFSET_OUT_OF_RANGE`).
    #[error("offset {offset} is out of range [{start}, {end}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: i64,
        /// The log start offset.
        start: i64,
        /// The log end offset.
        end: i64,
    },
    /// An I/O error on a log file; the path says which one (Kafka `KAFKA_STORAGE_ERROR`).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl LogError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }
}
