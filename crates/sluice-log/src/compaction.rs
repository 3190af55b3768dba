//! Log compaction for `cleanup.policy=compact`: keep only the latest record per key in the
//! closed segments.
//!
//! Pass 1 maps every key of the cleanable segments to its latest offset. Pass 2 rewrites each
//! segment that loses records: a batch keeping all its records is copied byte for byte; a batch
//! losing some keeps its header (base offset, last offset delta, base timestamp, producer
//! fields, codec) and gets the kept records' raw bytes re-compressed with the same codec, so
//! offsets and sequence numbers of what remains are unchanged (gaps are expected by clients);
//! a batch losing all its records is dropped. Tombstones (null values) are removed once older
//! than `delete.retention.ms`. Records newer than `min.compaction.lag.ms` are never touched:
//! cleaning stops at the first segment containing one. The active segment is never touched.
//!
//! A rewritten segment is written to `<name>.log.cleaned`, fsynced, its old indexes removed,
//! and renamed over the original; a crash at any point leaves either the old or the new file
//! (plus a `.cleaned` leftover removed on open), and missing indexes are rebuilt by recovery.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::BytesMut;

use crate::batch::{self, BatchHeader, HEADER_SIZE};
use crate::codec::decompress_to_vec;
use crate::record::{compress_payload, RecordReader};
use crate::recovery::{self, CLEANED_SUFFIX};
use crate::segment::Segment;
use crate::{CleanupPolicy, LogConfig, LogError};

/// What the previous compaction pass left behind, so that a housekeeping pass with nothing new
/// to clean costs nothing (the broker runs it periodically under the partition lock).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CleanerState {
    /// End offset of the segments covered by the last pass.
    cleaned_end: Option<i64>,
    /// Earliest time a tombstone kept by the last pass becomes removable.
    tombstone_expiry: Option<i64>,
}

/// Compacts the cleanable prefix of `segments` (which must all be closed) if it grew or a kept
/// tombstone expired since the last pass. Returns the number of records removed.
pub(crate) fn compact(
    dir: &Path,
    segments: &mut [Segment],
    config: &LogConfig,
    now_ms: i64,
    state: &mut CleanerState,
    is_aborted: impl Fn(&BatchHeader) -> bool,
) -> Result<u64, LogError> {
    if config.cleanup_policy == CleanupPolicy::Delete {
        return Ok(0);
    }
    let lag_cutoff = now_ms.saturating_sub(config.min_compaction_lag_ms.max(0));
    let cleanable = segments
        .iter()
        .take_while(|s| s.max_timestamp().0 <= lag_cutoff)
        .count();
    let Some(cleanable_segments) = segments.get_mut(..cleanable) else {
        return Ok(0);
    };
    let Some(end) = cleanable_segments.last().map(Segment::next_offset) else {
        return Ok(0);
    };
    let grew = state.cleaned_end.is_none_or(|e| end > e);
    let tombstone_due = state.tombstone_expiry.is_some_and(|t| t <= now_ms);
    if !grew && !tombstone_due {
        return Ok(0);
    }

    let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
    for seg in cleanable_segments.iter() {
        for_each_batch(seg, |h, bytes| {
            // Markers are kept; records of aborted transactions never were values of their
            // keys, so they do not shadow older records (and are removed in pass 2).
            if h.is_control() || is_aborted(h) {
                return Ok(());
            }
            let Some(payload) = decodable(dir, bytes, h, config) else {
                return Ok(());
            };
            let mut reader = RecordReader::new(&payload[..], h.record_count).with_keys();
            while let Ok(Some(r)) = reader.next_record() {
                if !r.key_is_null {
                    latest.insert(reader.key().to_vec(), h.base_offset + r.offset_delta as i64);
                }
            }
            Ok(())
        })?;
    }

    let retention = config.delete_retention_ms.max(0);
    let tombstone_cutoff = now_ms.saturating_sub(retention);
    let next_expiry = std::cell::Cell::new(None::<i64>);
    let mut removed = 0u64;
    for seg in cleanable_segments.iter_mut() {
        let keep = |h: &BatchHeader,
                    offset_delta: i32,
                    ts_delta: i64,
                    key: Option<&[u8]>,
                    tombstone: bool| {
            let Some(key) = key else {
                return true;
            };
            let offset = h.base_offset + offset_delta as i64;
            if latest.get(key) != Some(&offset) {
                return false;
            }
            let ts = if h.is_log_append_time() {
                h.max_timestamp
            } else {
                h.base_timestamp + ts_delta
            };
            if !tombstone {
                return true;
            }
            if ts < tombstone_cutoff {
                return false;
            }
            let expiry = ts.saturating_add(retention).saturating_add(1);
            next_expiry.set(Some(next_expiry.get().map_or(expiry, |e| e.min(expiry))));
            true
        };
        let n = rewrite_segment(dir, seg, config, keep)?;
        removed += n;
    }
    state.cleaned_end = Some(end);
    state.tombstone_expiry = next_expiry.get();
    if removed > 0 {
        tracing::info!(dir = %dir.display(), removed, "compacted partition log");
    }
    Ok(removed)
}

/// The decompressed records of a batch, or `None` (logged) when they cannot be read within
/// `max_uncompressed_batch_bytes`: such a batch (stored before validation existed, or damaged)
/// is kept whole rather than stopping compaction of the whole log on every pass.
fn decodable(dir: &Path, bytes: &[u8], h: &BatchHeader, config: &LogConfig) -> Option<Vec<u8>> {
    let decoded = decompress_to_vec(bytes, h, config.max_uncompressed_batch_bytes).and_then(|p| {
        // Check the framing of every record before trusting any of it.
        let mut reader = RecordReader::new(&p[..], h.record_count);
        loop {
            match reader.next_record() {
                Ok(Some(_)) => {}
                Ok(None) => break Ok(p),
                Err(e) => break Err(e.into_log_error(|io| LogError::CorruptBatch(io.to_string()))),
            }
        }
    });
    match decoded {
        Ok(payload) => Some(payload),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), base_offset = h.base_offset, error = %e, "compaction keeps a batch it cannot read");
            None
        }
    }
}

/// Calls `f` with each batch header and its bytes, in file order.
fn for_each_batch(
    seg: &Segment,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut pos = 0u64;
    let mut buf = Vec::new();
    while let Some(h) = seg.header_at(pos)? {
        seg.read_batch(pos, &h, &mut buf)?;
        f(&h, &buf)?;
        pos += h.total_size() as u64;
    }
    Ok(())
}

/// Rewrites `seg` keeping the records selected by `keep(header, offset_delta, timestamp_delta,
/// key, is_tombstone)`. Leaves the segment untouched if nothing is removed. Returns the number
/// of records removed.
fn rewrite_segment(
    dir: &Path,
    seg: &mut Segment,
    config: &LogConfig,
    keep: impl Fn(&BatchHeader, i32, i64, Option<&[u8]>, bool) -> bool,
) -> Result<u64, LogError> {
    let mut cleaned_name = seg.log_path().as_os_str().to_owned();
    cleaned_name.push(CLEANED_SUFFIX);
    let cleaned_path = PathBuf::from(cleaned_name);
    let file = File::create(&cleaned_path).map_err(|e| LogError::io(&cleaned_path, e))?;
    let mut out = BufWriter::new(file);
    let mut removed = 0u64;
    let mut raw = Vec::new();
    let mut rebuilt = BytesMut::new();
    let write = |out: &mut BufWriter<File>, bytes: &[u8]| {
        out.write_all(bytes)
            .map_err(|e| LogError::io(&cleaned_path, e))
    };
    for_each_batch(seg, |h, bytes| {
        if h.is_control() {
            return write(&mut out, bytes);
        }
        let Some(payload) = decodable(dir, bytes, h, config) else {
            return write(&mut out, bytes);
        };
        raw.clear();
        let mut kept = 0i32;
        let mut total = 0i32;
        let mut pos = 0usize;
        let mut reader = RecordReader::new(&payload[..], h.record_count).with_keys();
        while let Ok(Some(r)) = reader.next_record() {
            let size = r.size;
            let key = (!r.key_is_null).then(|| reader.key());
            if keep(h, r.offset_delta, r.timestamp_delta, key, r.value_is_null) {
                raw.extend_from_slice(payload.get(pos..pos + size).unwrap_or_default());
                kept += 1;
            }
            pos += size;
            total += 1;
        }
        removed += (total - kept) as u64;
        if kept == total {
            return write(&mut out, bytes);
        }
        if kept == 0 {
            return Ok(());
        }
        rebuilt.clear();
        rebuilt.extend_from_slice(bytes.get(..HEADER_SIZE).unwrap_or_default());
        compress_payload(h.codec(), &raw, &mut rebuilt)?;
        let len = i32::try_from(rebuilt.len() - batch::LOG_OVERHEAD).map_err(|_| {
            LogError::CorruptBatch("compacted batch does not fit in a batch length".into())
        })?;
        batch::set_record_count(&mut rebuilt, kept);
        batch::set_batch_length(&mut rebuilt, len);
        batch::rewrite_crc(&mut rebuilt);
        write(&mut out, &rebuilt)
    })?;
    if removed == 0 {
        drop(out);
        crate::segment::remove_if_exists(&cleaned_path)?;
        return Ok(0);
    }
    let file = out
        .into_inner()
        .map_err(|e| LogError::io(&cleaned_path, e.into_error()))?;
    file.sync_all()
        .map_err(|e| LogError::io(&cleaned_path, e))?;
    drop(file);

    let log_path = seg.log_path().to_path_buf();
    seg.delete_index_files()?;
    std::fs::rename(&cleaned_path, &log_path).map_err(|e| LogError::io(&log_path, e))?;
    recovery::fsync_dir(dir)?;
    let (mut fresh, _) = Segment::open(&log_path, seg.base_offset, config)?;
    recovery::rebuild_indexes(&mut fresh)?;
    fresh.sync_all()?;
    *seg = fresh;
    Ok(removed)
}
