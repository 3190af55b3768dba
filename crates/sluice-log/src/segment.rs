//! A segment: one contiguous run of batches in `<base_offset:020>.log` with its `.index` and
//! `.timeindex`. Only the last segment of a partition (the active one) is appended to.

use std::fs::{File, OpenOptions};
use std::io::IoSlice;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{self, BatchHeader, HEADER_SIZE};
use crate::index::{self, IndexFile, OffsetEntry, TimeEntry};
use crate::partition::relocate::Reopened;
use crate::{LogConfig, LogError};

/// A byte range of one segment file, planned under the partition lock and read (or sent to a
/// socket) after it is released. The file handle is shared, so the range stays readable even
/// if retention deletes the segment meanwhile.
#[derive(Debug, Clone)]
pub struct FileRange {
    pub(crate) file: Arc<File>,
    pub(crate) position: u64,
    pub(crate) len: u64,
}

impl FileRange {
    /// The segment file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the range starts in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty range.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The part of this range `skip` bytes in, at most `len` long.
    pub fn slice(&self, skip: u64, len: u64) -> FileRange {
        let skip = skip.min(self.len);
        FileRange {
            file: Arc::clone(&self.file),
            position: self.position + skip,
            len: len.min(self.len - skip),
        }
    }

    /// Appends the range's bytes to `buf` (one `pread`, no zero-filling).
    pub fn read_into(&self, buf: &mut Vec<u8>) -> Result<(), LogError> {
        crate::fileio::read_exact_at_into(&self.file, buf, self.len as usize, self.position)
            .map_err(|e| LogError::io(format!("segment file at position {}", self.position), e))
    }
}

/// Largest segment file size: positions in the offset index are 32-bit.
pub(crate) const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

/// File name of the log of the segment starting at `base_offset`.
pub(crate) fn log_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

/// Parses a segment log file name back to its base offset.
pub(crate) fn parse_log_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// A segment's files reopened in another directory, ready for [`Segment::install`].
#[derive(Debug)]
pub(crate) struct SegmentFiles {
    log: Reopened,
    offset_index: Reopened,
    time_index: Reopened,
}

/// One segment of a partition log.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Offset of the first record this segment may hold (its file name).
    pub(crate) base_offset: i64,
    log_path: PathBuf,
    file: Arc<File>,
    /// Bytes of valid batches in the log file.
    size: u64,
    pub(crate) offset_index: IndexFile<OffsetEntry>,
    pub(crate) time_index: IndexFile<TimeEntry>,
    /// One past the last offset stored here (`base_offset` when empty).
    next_offset: i64,
    /// Largest batch max timestamp, -1 when empty.
    max_timestamp: i64,
    /// Base offset of the batch carrying `max_timestamp`.
    offset_of_max_timestamp: i64,
    /// Time used for `segment.ms`: the first append's clock, or its batch timestamp after open.
    roll_base_ms: Option<i64>,
    bytes_since_index: u64,
    index_interval: u64,
}

impl Segment {
    /// Creates a new, empty segment (replacing leftover files of the same name).
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<Self, LogError> {
        let log_path = dir.join(log_file_name(base_offset));
        for p in [
            index::offset_index_path(&log_path),
            index::time_index_path(&log_path),
        ] {
            remove_if_exists(&p)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(|e| LogError::io(&log_path, e))?;
        Self::with_file(log_path, file, base_offset, config).map(|(s, _)| s)
    }

    /// Opens an existing segment without scanning it; recovery fills in the derived state.
    /// Returns the segment and whether both index files looked intact.
    pub(crate) fn open(
        log_path: &Path,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<(Self, bool), LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(log_path)
            .map_err(|e| LogError::io(log_path, e))?;
        Self::with_file(log_path.to_path_buf(), file, base_offset, config)
    }

    fn with_file(
        log_path: PathBuf,
        file: File,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<(Self, bool), LogError> {
        let size = file
            .metadata()
            .map_err(|e| LogError::io(&log_path, e))?
            .len();
        let (offset_index, oi_ok) = IndexFile::open(
            &index::offset_index_path(&log_path),
            base_offset,
            config.segment_index_bytes,
        )?;
        let (time_index, ti_ok) = IndexFile::open(
            &index::time_index_path(&log_path),
            base_offset,
            config.segment_index_bytes,
        )?;
        Ok((
            Segment {
                base_offset,
                log_path,
                file: Arc::new(file),
                size,
                offset_index,
                time_index,
                next_offset: base_offset,
                max_timestamp: -1,
                offset_of_max_timestamp: base_offset,
                roll_base_ms: None,
                bytes_since_index: 0,
                index_interval: config.index_interval_bytes as u64,
            },
            oi_ok && ti_ok,
        ))
    }

    /// Opens the copies of this segment's three files in `dir` (see
    /// [`crate::partition::relocate`]).
    pub(crate) fn reopen_in(&self, dir: &Path) -> Result<SegmentFiles, LogError> {
        Ok(SegmentFiles {
            log: crate::partition::relocate::reopen_in(&self.log_path, dir, false)?,
            offset_index: self.offset_index.reopen_in(dir)?,
            time_index: self.time_index.reopen_in(dir)?,
        })
    }

    /// Switches to copies opened by [`Self::reopen_in`]. Readers and sync handles holding the
    /// old file keep it open until they are done.
    pub(crate) fn install(&mut self, dir: &Path, files: SegmentFiles) {
        let (log_path, file) = files.log.into_parts(dir);
        self.log_path = log_path;
        self.file = Arc::new(file);
        self.offset_index.install(dir, files.offset_index);
        self.time_index.install(dir, files.time_index);
    }

    /// Path of the `.log` file.
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Shared handle of the log file (for fsync and reads outside the partition lock).
    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Bytes of batches in the segment.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// True when the segment holds no batch.
    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// One past the last offset stored here.
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Largest timestamp in the segment and the base offset of its batch (-1 when empty).
    pub(crate) fn max_timestamp(&self) -> (i64, i64) {
        (self.max_timestamp, self.offset_of_max_timestamp)
    }

    /// Applies a new `index.interval.bytes`.
    pub(crate) fn set_index_interval(&mut self, bytes: u32) {
        self.index_interval = bytes as u64;
    }

    /// True if appending `len` bytes of offsets up to `last_offset` needs a new segment first.
    pub(crate) fn needs_roll(
        &self,
        len: u64,
        last_offset: i64,
        now_ms: i64,
        config: &LogConfig,
    ) -> bool {
        if self.is_empty() {
            return false;
        }
        let max_size = config.segment_bytes.min(MAX_SEGMENT_BYTES);
        let too_big = self.size + len > max_size;
        let index_full = self.offset_index.is_full() || self.time_index.is_full();
        let offset_overflow = last_offset - self.base_offset > u32::MAX as i64;
        too_big || index_full || offset_overflow || self.time_expired(now_ms, config)
    }

    /// True when the segment is non-empty and older than `segment.ms`.
    pub(crate) fn time_expired(&self, now_ms: i64, config: &LogConfig) -> bool {
        match self.roll_base_ms {
            Some(base) if !self.is_empty() => now_ms.saturating_sub(base) >= config.segment_ms,
            _ => false,
        }
    }

    /// Writes already validated and stamped batches at the end of the segment: `parts` in
    /// order, `len` bytes in all, with one vectored write. On a failed write the file is cut
    /// back so no partial batch stays behind.
    pub(crate) fn append(
        &mut self,
        parts: &mut [IoSlice<'_>],
        len: usize,
        batches: &[batch::RecordBatchRef],
        now_ms: i64,
    ) -> Result<(), LogError> {
        let start = self.size;
        if let Err(e) = crate::fileio::write_all_vectored_at(&self.file, parts, start) {
            let _ = self.file.set_len(start);
            return Err(LogError::io(&self.log_path, e));
        }
        if self.roll_base_ms.is_none() {
            self.roll_base_ms = Some(now_ms);
        }
        for b in batches {
            self.track_batch(start + b.position as u64, &b.header)?;
        }
        self.size = start + len as u64;
        Ok(())
    }

    /// Accounts for a batch stored at `position`: indexes and offset/timestamp bookkeeping.
    /// Used by append and by recovery scans (which must call it in file order).
    pub(crate) fn track_batch(&mut self, position: u64, h: &BatchHeader) -> Result<(), LogError> {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.base_offset;
        }
        let already_indexed = self
            .offset_index
            .last()
            .is_some_and(|e| e.offset >= h.base_offset);
        if self.bytes_since_index >= self.index_interval && !already_indexed {
            self.offset_index.push(OffsetEntry {
                offset: h.base_offset,
                position: position as u32,
            })?;
            let grew = self
                .time_index
                .last()
                .is_none_or(|e| self.max_timestamp > e.timestamp);
            if grew && self.max_timestamp >= 0 {
                self.time_index.push(TimeEntry {
                    timestamp: self.max_timestamp,
                    offset: self.offset_of_max_timestamp,
                })?;
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += h.total_size() as u64;
        self.next_offset = self.next_offset.max(h.last_offset() + 1);
        self.size = self.size.max(position + h.total_size() as u64);
        Ok(())
    }

    /// Resets the derived state before a recovery scan from index entry `from` (`None` = full
    /// scan from the start, which also empties the indexes); returns the position to scan from.
    pub(crate) fn reset_for_scan(&mut self, from: Option<OffsetEntry>) -> Result<u64, LogError> {
        match from {
            None => {
                self.offset_index.truncate(0)?;
                self.time_index.truncate(0)?;
                self.max_timestamp = -1;
                self.offset_of_max_timestamp = self.base_offset;
                self.next_offset = self.base_offset;
                self.bytes_since_index = 0;
                Ok(0)
            }
            Some(entry) => {
                if let Some(t) = self.time_index.last() {
                    self.max_timestamp = t.timestamp;
                    self.offset_of_max_timestamp = t.offset;
                }
                self.next_offset = entry.offset;
                self.bytes_since_index = 0;
                Ok(entry.position as u64)
            }
        }
    }

    /// Current length of the log file on disk (recovery compares it with the valid size).
    pub(crate) fn file_len(&self) -> Result<u64, LogError> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| LogError::io(&self.log_path, e))?
            .len())
    }

    /// Cuts the log file at `position` (end of the last valid batch) and records the size.
    pub(crate) fn truncate_to(&mut self, position: u64) -> Result<(), LogError> {
        self.file
            .set_len(position)
            .map_err(|e| LogError::io(&self.log_path, e))?;
        self.size = position;
        Ok(())
    }

    /// Sets the roll clock from the first batch after open.
    pub(crate) fn set_roll_base(&mut self, ms: Option<i64>) {
        self.roll_base_ms = ms;
    }

    /// Reads the batch header at `position`, or `None` at/after the end of the segment.
    pub(crate) fn header_at(&self, position: u64) -> Result<Option<BatchHeader>, LogError> {
        self.header_within(position, self.size)
    }

    /// Reads the batch header at `position` when a whole header fits below `limit`.
    pub(crate) fn header_within(
        &self,
        position: u64,
        limit: u64,
    ) -> Result<Option<BatchHeader>, LogError> {
        if position + HEADER_SIZE as u64 > limit {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_SIZE];
        self.file
            .read_exact_at(&mut buf, position)
            .map_err(|e| LogError::io(&self.log_path, e))?;
        BatchHeader::parse(&buf).map(Some)
    }

    /// Reads a whole batch.
    pub(crate) fn read_batch(
        &self,
        position: u64,
        header: &BatchHeader,
        out: &mut Vec<u8>,
    ) -> Result<(), LogError> {
        out.clear();
        out.resize(header.total_size(), 0);
        self.file
            .read_exact_at(out, position)
            .map_err(|e| LogError::io(&self.log_path, e))
    }

    /// Position and header of the batch containing `offset` (or the first one after it, when
    /// `offset` fell into a gap), if this segment has one.
    pub(crate) fn locate(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let mut pos = self
            .offset_index
            .floor(offset)
            .map_or(0, |e| e.position as u64);
        while let Some(h) = self.header_at(pos)? {
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
            pos += h.total_size() as u64;
        }
        Ok(None)
    }

    /// Plans a read of whole batches from the batch containing `offset`, of at most
    /// `max_bytes`, except that with `force_first` the first batch is returned even if larger.
    /// Only the first `visible` bytes of the file may be returned (the rest is above the high
    /// watermark); `visible` always falls on a batch boundary.
    /// Returns `None` when no visible batch in this segment reaches `offset` or nothing fits.
    pub(crate) fn plan_read(
        &self,
        offset: i64,
        max_bytes: u64,
        force_first: bool,
        visible: u64,
    ) -> Result<Option<FileRange>, LogError> {
        let visible = visible.min(self.size);
        let Some((start, first)) = self.locate(offset)? else {
            return Ok(None);
        };
        let first_end = start + first.total_size() as u64;
        if first_end > visible || (!force_first && first.total_size() as u64 > max_bytes) {
            return Ok(None);
        }
        let limit = start.saturating_add(max_bytes);
        let end = if limit >= visible {
            visible
        } else {
            // Jump close to the limit with the index, then walk batch lengths up to it.
            let mut pos = self
                .offset_index
                .floor_position(limit)
                .map_or(first_end, |e| (e.position as u64).max(first_end));
            while let Some(h) = self.header_at(pos)? {
                let next = pos + h.total_size() as u64;
                if next > limit {
                    break;
                }
                pos = next;
            }
            pos
        };
        Ok(Some(FileRange {
            file: Arc::clone(&self.file),
            position: start,
            len: end - start,
        }))
    }

    /// The first batch whose max timestamp is `>= timestamp`, with its position.
    pub(crate) fn find_by_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(u64, BatchHeader)>, LogError> {
        if self.max_timestamp < timestamp {
            return Ok(None);
        }
        let mut pos = match self.time_index.last_before(timestamp) {
            Some(t) => self
                .offset_index
                .floor(t.offset)
                .map_or(0, |e| e.position as u64),
            None => 0,
        };
        while let Some(h) = self.header_at(pos)? {
            if h.max_timestamp >= timestamp {
                return Ok(Some((pos, h)));
            }
            pos += h.total_size() as u64;
        }
        Ok(None)
    }

    /// `fdatasync`s the log file and both indexes.
    pub(crate) fn sync_all(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(|e| LogError::io(&self.log_path, e))?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Deletes the segment's files.
    pub(crate) fn delete_files(&self) -> Result<(), LogError> {
        remove_if_exists(&self.log_path)?;
        self.delete_index_files()
    }

    /// Deletes the index files only (before the log file is replaced).
    pub(crate) fn delete_index_files(&self) -> Result<(), LogError> {
        remove_if_exists(self.offset_index.path())?;
        remove_if_exists(self.time_index.path())
    }
}

/// Removes a file, ignoring that it is already gone.
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_roundtrip() {
        assert_eq!(log_file_name(42), "00000000000000000042.log");
        assert_eq!(parse_log_file_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_log_file_name("42.log"), None);
        assert_eq!(parse_log_file_name("00000000000000000042.index"), None);
    }
}
