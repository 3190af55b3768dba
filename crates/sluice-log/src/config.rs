//! Per-partition log settings, mirroring the Kafka topic configs of the same names.

/// What happens to old data: deleted by retention, compacted by key, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// `cleanup.policy=delete`: segments past `retention.ms` / `retention.bytes` are removed.
    Delete,
    /// `cleanup.policy=compact`: only the latest record per key is kept.
    Compact,
    /// `cleanup.policy=compact,delete`.
    CompactDelete,
}

/// Which timestamp a record batch carries: the producer's or the broker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// `message.timestamp.type=CreateTime`: keep the producer's timestamps.
    CreateTime,
    /// `message.timestamp.type=LogAppendTime`: the broker stamps the append time.
    LogAppendTime,
}

/// Settings of one partition log. Defaults are Kafka's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment when it reaches this size (default 1 GiB).
    pub segment_bytes: u64,
    /// `segment.ms`: roll the active segment when its first batch is this old (default 7 days).
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest timestamp is older; -1 = forever (7 days).
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest segments while the log is larger; -1 = unlimited.
    pub retention_bytes: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long tombstones survive compaction (default 1 day).
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted (default 0).
    pub min_compaction_lag_ms: i64,
    /// `max.message.bytes`: largest record batch accepted (default 1 MiB + overhead, 1048588).
    pub max_message_bytes: u32,
    /// Largest uncompressed size of one batch's records (default 64 MiB). A compressed batch
    /// that inflates past it is refused at produce time, and every later decompression (ListOffsets
    /// by timestamp, compaction) stops there, so a decompression bomb costs bounded memory and CPU.
    pub max_uncompressed_batch_bytes: u64,
    /// `index.interval.bytes`: bytes between sparse index entries (default 4096).
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: maximum size of an offset/time index file (default 10 MiB).
    pub segment_index_bytes: u32,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// Readers see a record only once it is fsynced (the high watermark follows the synced
    /// offset), so no consumer acts on data that a machine crash could take back. Off, the high
    /// watermark follows every write. Set by the broker from its fsync policy, not a topic config.
    pub visible_after_sync: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            max_message_bytes: 1_048_588,
            max_uncompressed_batch_bytes: 64 << 20,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            timestamp_type: TimestampType::CreateTime,
            visible_after_sync: false,
        }
    }
}
