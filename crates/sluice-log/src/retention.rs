//! Retention for `cleanup.policy=delete`: whole closed segments are removed from the front of
//! the log when older than `retention.ms` or while the log is larger than `retention.bytes`.

use std::time::UNIX_EPOCH;

use crate::segment::Segment;
use crate::{CleanupPolicy, LogConfig, LogError, PartitionLog};

/// The time a segment counts as "last written" for `retention.ms`: its largest record
/// timestamp, or the file's modification time when records carry no timestamps.
fn segment_time_ms(seg: &Segment) -> i64 {
    let (ts, _) = seg.max_timestamp();
    if ts >= 0 {
        return ts;
    }
    std::fs::metadata(seg.log_path())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(i64::MAX, |d| d.as_millis() as i64)
}

/// Applies time and size retention to `log`; returns the number of segments removed.
pub(crate) fn enforce(
    log: &mut PartitionLog,
    config: &LogConfig,
    now_ms: i64,
) -> Result<usize, LogError> {
    if config.cleanup_policy == CleanupPolicy::Compact {
        return Ok(0);
    }
    let mut removed = 0;
    if config.retention_ms >= 0 {
        let cutoff = now_ms.saturating_sub(config.retention_ms);
        removed += log.delete_oldest_while(|seg, _| segment_time_ms(seg) < cutoff)?;
    }
    if config.retention_bytes >= 0 {
        let limit = config.retention_bytes as u64;
        removed += log.delete_oldest_while(|_, bytes_left| bytes_left >= limit)?;
    }
    Ok(removed)
}
