//! Opening a partition directory: finding segments, validating their tails, truncating torn
//! writes and rebuilding indexes and producer state.
//!
//! A clean shutdown leaves a producer-state snapshot; its presence means every file was fsynced,
//! so each segment only needs its tail (from the last offset index entry) checked by CRC. After
//! a crash, every segment's batch headers are scanned to rebuild both indexes and the producer
//! state, and batches past the last plausible index entry are checked by CRC. The first invalid
//! or incomplete batch ends the log: the segment is cut there and later segments are removed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::batch::{check_batch, BatchHeader};
use crate::index::OffsetEntry;
use crate::producer_state::{ProducerStateMap, SNAPSHOT_FILE};
use crate::segment::{self, Segment};
use crate::txn::{control_type, AbortedTxn, ControlType};
use crate::{LogConfig, LogError};

/// File holding the log start offset when DeleteRecords or retention moved it inside a segment.
pub(crate) const LOG_START_FILE: &str = "log-start-offset";

/// File holding the log end offset of the last completed fsync (8 bytes, big-endian): after a
/// crash every batch at or past it is CRC-checked.
pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point";

/// Suffix of temporary files that are only renamed into place once complete.
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// Suffix of segment files being rewritten by compaction.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";

/// What [`recover`] found in a partition directory.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) segments: Vec<Segment>,
    pub(crate) producers: ProducerStateMap,
    /// The aborted transactions, when rebuilt from the log (`None`: the index file written by
    /// the clean shutdown is valid).
    pub(crate) aborted: Option<Vec<AbortedTxn>>,
    pub(crate) log_start_offset: i64,
}

/// Opens and recovers every segment in `dir` (creating the directory and a first segment if
/// needed).
pub(crate) fn recover(dir: &Path, config: &LogConfig) -> Result<Recovered, LogError> {
    std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
    let clean = dir.join(SNAPSHOT_FILE).exists();
    let mut segments = Vec::new();
    for (base, path) in list_segments(dir)? {
        let (seg, intact) = Segment::open(&path, base, config)?;
        segments.push((seg, intact));
    }
    let stored_start = read_log_start(dir)?;
    let recovery_point = read_recovery_point(dir);

    let mut producers = ProducerStateMap::default();
    let mut aborted = Vec::new();
    let mut rebuilt = !clean;
    let mut kept: Vec<Segment> = Vec::with_capacity(segments.len());
    let mut torn = false;
    let count = segments.len();
    for (i, (mut seg, intact)) in segments.into_iter().enumerate() {
        if torn {
            tracing::warn!(segment = %seg.log_path().display(), "removing segment after a torn one");
            seg.delete_files()?;
            continue;
        }
        let sane_entry = if intact { sane_last_entry(&seg)? } else { None };
        let index_ok = intact && (sane_entry.is_some() || seg.offset_index.entries().is_empty());
        torn = if clean && index_ok {
            // After a clean shutdown only the active segment's tail is re-checked by CRC; the
            // closed ones were fsynced before it and only need their tail headers walked.
            let crc_from = if i + 1 == count { 0 } else { u64::MAX };
            scan(&mut seg, sane_entry, crc_from, i64::MAX, |_, _| {})?
        } else {
            // Unflushed data may be garbage after a power loss: check everything past the last
            // completed fsync, and anything past the last index entry that looks right.
            let crc_from = sane_entry.map_or(0, |e| e.position as u64);
            let crc_from_offset = recovery_point.unwrap_or(i64::MAX);
            rebuilt = true;
            scan(&mut seg, None, crc_from, crc_from_offset, |h, control| {
                aborted.extend(producers.replay(h, control));
            })?
        };
        kept.push(seg);
    }

    let log_end = kept
        .last()
        .map_or(stored_start.unwrap_or(0), |s| s.next_offset());
    if clean {
        match ProducerStateMap::take_snapshot(dir, log_end) {
            Some(p) => producers = p,
            None => {
                tracing::warn!(dir = %dir.display(), "producer state snapshot unusable; rebuilding from batch headers");
                producers.clear();
                aborted.clear();
                rebuilt = true;
                for seg in &kept {
                    scan_headers(seg, |h, control| {
                        aborted.extend(producers.replay(h, control))
                    })?;
                }
            }
        }
    }

    if kept.is_empty() {
        let base = stored_start.unwrap_or(0).max(0);
        kept.push(Segment::create(dir, base, config)?);
        fsync_dir(dir)?;
    }
    if let Some(active) = kept.last_mut() {
        let first_ts = active.header_at(0)?.map(|h| h.max_timestamp.max(0));
        active.set_roll_base(first_ts);
    }
    let first_base = kept.first().map_or(0, |s| s.base_offset);
    let log_end = kept.last().map_or(0, |s| s.next_offset());
    let log_start_offset = stored_start
        .unwrap_or(first_base)
        .max(first_base)
        .min(log_end);
    Ok(Recovered {
        segments: kept,
        producers,
        aborted: rebuilt.then_some(aborted),
        log_start_offset,
    })
}

/// The segment log files in `dir`, sorted by base offset; removes leftovers of interrupted
/// compactions and atomic writes.
fn list_segments(dir: &Path) -> Result<Vec<(i64, PathBuf)>, LogError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(CLEANED_SUFFIX) || name.ends_with(TMP_SUFFIX) {
            tracing::info!(file = %path.display(), "removing leftover temporary file");
            segment::remove_if_exists(&path)?;
        } else if let Some(base) = segment::parse_log_file_name(name) {
            found.push((base, path));
        } else if name.ends_with(".index") || name.ends_with(".timeindex") {
            // An index whose segment was deleted (crash between the two removals).
            if !path.with_extension("log").exists() {
                tracing::info!(file = %path.display(), "removing orphan index file");
                segment::remove_if_exists(&path)?;
            }
        }
    }
    found.sort_by_key(|(b, _)| *b);
    Ok(found)
}

/// Checks the offset index of a freshly opened segment and returns its last entry if it can be
/// trusted: entries increasing, inside the file, and the last one pointing at a batch header
/// with the offset it claims. Time index entries beyond it are dropped.
fn sane_last_entry(seg: &Segment) -> Result<Option<OffsetEntry>, LogError> {
    let len = seg.file_len()?;
    let entries = seg.offset_index.entries();
    let increasing = entries
        .windows(2)
        .all(|w| w[0].offset < w[1].offset && w[0].position < w[1].position);
    let Some(last) = entries.last().copied() else {
        return Ok(None);
    };
    if !increasing || last.offset < seg.base_offset || last.position as u64 >= len {
        return Ok(None);
    }
    let times = seg.time_index.entries();
    let times_ok = times
        .windows(2)
        .all(|w| w[0].timestamp < w[1].timestamp && w[0].offset <= w[1].offset)
        && times.last().is_none_or(|t| t.offset <= last.offset);
    if !times_ok {
        return Ok(None);
    }
    match seg.header_within(last.position as u64, len) {
        Ok(Some(h)) if h.base_offset == last.offset => Ok(Some(last)),
        _ => Ok(None),
    }
}

/// Scans batches from `from` (an index entry, or the start when `None`, which also resets the
/// indexes), CRC-checking those at or after position `crc_from` or reaching `crc_from_offset`,
/// feeding each valid header (with the marker type of control batches) to `on_batch` and
/// re-indexing. Truncates at the first invalid or incomplete batch; returns true if it did.
fn scan(
    seg: &mut Segment,
    from: Option<OffsetEntry>,
    crc_from: u64,
    crc_from_offset: i64,
    mut on_batch: impl FnMut(&BatchHeader, Option<ControlType>),
) -> Result<bool, LogError> {
    let file_len = seg.file_len()?;
    let mut pos = seg.reset_for_scan(from)?;
    let mut buf = Vec::new();
    let mut problem = None;
    while pos < file_len {
        let h = match seg.header_within(pos, file_len) {
            Ok(Some(h)) => h,
            Ok(None) => {
                problem = Some("incomplete batch header".to_string());
                break;
            }
            Err(e) => {
                problem = Some(e.to_string());
                break;
            }
        };
        if pos + h.total_size() as u64 > file_len {
            problem = Some("incomplete batch".into());
            break;
        }
        if h.base_offset < seg.next_offset() {
            problem = Some(format!(
                "batch offset {} goes backwards (expected >= {})",
                h.base_offset,
                seg.next_offset()
            ));
            break;
        }
        let checked = pos >= crc_from || h.last_offset() >= crc_from_offset;
        if checked || h.is_control() {
            seg.read_batch(pos, &h, &mut buf)?;
        }
        if checked {
            if let Err(e) = check_batch(&buf) {
                problem = Some(e.to_string());
                break;
            }
        }
        seg.track_batch(pos, &h)?;
        on_batch(&h, control_type(&buf, &h));
        pos += h.total_size() as u64;
    }
    let Some(problem) = problem else {
        return Ok(false);
    };
    tracing::warn!(
        segment = %seg.log_path().display(),
        position = pos,
        dropped_bytes = file_len - pos,
        reason = %problem,
        "truncating torn or corrupt log tail"
    );
    seg.truncate_to(pos)?;
    let keep = seg
        .offset_index
        .entries()
        .partition_point(|e| (e.position as u64) < pos);
    seg.offset_index.truncate(keep)?;
    let next = seg.next_offset();
    let keep_t = seg
        .time_index
        .entries()
        .partition_point(|e| e.offset < next);
    seg.time_index.truncate(keep_t)?;
    Ok(true)
}

/// Rebuilds both indexes of a segment whose batches are known to be valid (just written).
pub(crate) fn rebuild_indexes(seg: &mut Segment) -> Result<(), LogError> {
    scan(seg, None, u64::MAX, i64::MAX, |_, _| {})?;
    Ok(())
}

/// Feeds every batch header of an already recovered segment (with the marker type of control
/// batches) to `on_batch`.
pub(crate) fn scan_headers(
    seg: &Segment,
    mut on_batch: impl FnMut(&BatchHeader, Option<ControlType>),
) -> Result<(), LogError> {
    let mut pos = 0u64;
    let mut buf = Vec::new();
    while let Some(h) = seg.header_at(pos)? {
        let control = if h.is_control() {
            seg.read_batch(pos, &h, &mut buf)?;
            control_type(&buf, &h)
        } else {
            None
        };
        on_batch(&h, control);
        pos += h.total_size() as u64;
    }
    Ok(())
}

/// Reads the persisted log start offset, if any.
fn read_log_start(dir: &Path) -> Result<Option<i64>, LogError> {
    let path = dir.join(LOG_START_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io(path, e)),
    }
}

/// Reads the recovery point, if a complete one was written.
fn read_recovery_point(dir: &Path) -> Option<i64> {
    let data = std::fs::read(dir.join(RECOVERY_POINT_FILE)).ok()?;
    let bytes: [u8; 8] = data.as_slice().try_into().ok()?;
    Some(i64::from_be_bytes(bytes))
}

/// Opens (creating) the recovery point file for positioned writes.
pub(crate) fn open_recovery_point(dir: &Path) -> Result<File, LogError> {
    let path = dir.join(RECOVERY_POINT_FILE);
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| LogError::io(path, e))
}

/// Persists the log start offset.
pub(crate) fn write_log_start(dir: &Path, offset: i64) -> Result<(), LogError> {
    write_file_atomically(&dir.join(LOG_START_FILE), offset.to_string().as_bytes())
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content:
/// write a temporary file, fsync it, rename it over, fsync the directory.
pub(crate) fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| LogError::io(&tmp, e))?;
    f.sync_all().map_err(|e| LogError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LogError::io(path, e))?;
    if let Some(dir) = path.parent() {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// Makes directory entries (created, renamed, removed files) durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}
