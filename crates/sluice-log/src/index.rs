//! Sparse per-segment indexes, Kafka style.
//!
//! - Offset index (`.index`): 8-byte entries `relativeOffset u32 | position u32`, mapping the
//!   base offset of a batch to its byte position in the segment. An entry is added when at least
//!   `index.interval.bytes` were appended since the previous one, so a lookup is a binary search
//!   followed by a scan of at most about one interval of batch headers.
//! - Time index (`.timeindex`): 12-byte entries `timestamp i64 | relativeOffset u32`: the largest
//!   timestamp seen so far in the segment and the base offset of the batch that carried it.
//!   Entries are added with offset index entries, only when the timestamp grew, so they are
//!   strictly increasing in both fields.
//!
//! Both are kept in memory (they are small) and mirrored to their files with positioned writes;
//! the files are not fsynced on the hot path because recovery validates and rebuilds them.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::partition::relocate::Reopened;
use crate::LogError;

/// A fixed-size index entry with offsets stored relative to the segment's base offset.
pub(crate) trait IndexEntry: Copy + std::fmt::Debug {
    /// Bytes per entry on disk.
    const SIZE: usize;
    /// Serializes the entry.
    fn encode(&self, base_offset: i64, out: &mut [u8]);
    /// Deserializes an entry of exactly `SIZE` bytes.
    fn decode(bytes: &[u8], base_offset: i64) -> Self;
}

/// Offset index entry: a batch's base offset and its byte position in the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) offset: i64,
    pub(crate) position: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, base_offset: i64, out: &mut [u8]) {
        let rel = (self.offset - base_offset) as u32;
        out[..4].copy_from_slice(&rel.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8], base_offset: i64) -> Self {
        let rel = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let position = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        OffsetEntry {
            offset: base_offset + rel as i64,
            position,
        }
    }
}

/// Time index entry: the largest timestamp so far and the base offset of the batch holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    pub(crate) offset: i64,
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, base_offset: i64, out: &mut [u8]) {
        let rel = (self.offset - base_offset) as u32;
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&rel.to_be_bytes());
    }
    fn decode(b: &[u8], base_offset: i64) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        let rel = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            offset: base_offset + rel as i64,
        }
    }
}

/// An index file and its in-memory copy.
#[derive(Debug)]
pub(crate) struct IndexFile<E: IndexEntry> {
    path: PathBuf,
    file: File,
    base_offset: i64,
    entries: Vec<E>,
    max_entries: usize,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Opens (creating if missing) an index file. Returns the index and whether its content
    /// looked intact; a file with a partial entry is reported as damaged (entries are dropped).
    pub(crate) fn open(
        path: &Path,
        base_offset: i64,
        max_bytes: u32,
    ) -> Result<(Self, bool), LogError> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| LogError::io(path, e))?;
        let data = std::fs::read(path).map_err(|e| LogError::io(path, e))?;
        let intact = existed && data.len() % E::SIZE == 0;
        let entries = if intact {
            data.chunks_exact(E::SIZE)
                .map(|c| E::decode(c, base_offset))
                .collect()
        } else {
            Vec::new()
        };
        Ok((
            IndexFile {
                path: path.to_path_buf(),
                file,
                base_offset,
                entries,
                max_entries: (max_bytes as usize / E::SIZE).max(1),
            },
            intact,
        ))
    }

    /// The entries, in increasing offset order.
    pub(crate) fn entries(&self) -> &[E] {
        &self.entries
    }

    /// The newest entry.
    pub(crate) fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    /// True when no more entries fit under `segment.index.bytes` (the segment must roll).
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// Appends an entry to memory and file.
    pub(crate) fn push(&mut self, entry: E) -> Result<(), LogError> {
        let mut buf = [0u8; 16];
        let bytes = &mut buf[..E::SIZE];
        entry.encode(self.base_offset, bytes);
        let at = (self.entries.len() * E::SIZE) as u64;
        self.file
            .write_all_at(bytes, at)
            .map_err(|e| LogError::io(&self.path, e))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Keeps only the first `n` entries.
    pub(crate) fn truncate(&mut self, n: usize) -> Result<(), LogError> {
        self.entries.truncate(n);
        self.file
            .set_len((n * E::SIZE) as u64)
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Flushes the file to disk.
    pub(crate) fn sync(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Where the file lives.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Length of the file: its entries, nothing preallocated.
    pub(crate) fn file_len(&self) -> u64 {
        (self.entries.len() * E::SIZE) as u64
    }

    /// Opens the copy of this file in `dir` (see [`crate::partition::relocate`]).
    pub(crate) fn reopen_in(&self, dir: &Path) -> Result<Reopened, LogError> {
        crate::partition::relocate::reopen_in(&self.path, dir, false)
    }

    /// Switches to a copy opened by [`Self::reopen_in`], now in `dir`.
    pub(crate) fn install(&mut self, dir: &Path, copy: Reopened) {
        (self.path, self.file) = copy.into_parts(dir);
    }
}

impl IndexFile<OffsetEntry> {
    /// The entry of the last indexed batch starting at or before `offset`, if any.
    pub(crate) fn floor(&self, offset: i64) -> Option<OffsetEntry> {
        let i = self.entries.partition_point(|e| e.offset <= offset);
        i.checked_sub(1).and_then(|i| self.entries.get(i).copied())
    }

    /// The last entry whose position is at or before `position`, if any.
    pub(crate) fn floor_position(&self, position: u64) -> Option<OffsetEntry> {
        let i = self
            .entries
            .partition_point(|e| e.position as u64 <= position);
        i.checked_sub(1).and_then(|i| self.entries.get(i).copied())
    }
}

impl IndexFile<TimeEntry> {
    /// The last entry with a timestamp strictly below `timestamp`, if any: every batch up to
    /// that entry's batch is older than `timestamp`.
    pub(crate) fn last_before(&self, timestamp: i64) -> Option<TimeEntry> {
        let i = self.entries.partition_point(|e| e.timestamp < timestamp);
        i.checked_sub(1).and_then(|i| self.entries.get(i).copied())
    }
}

/// Path of the offset index of the segment whose log file is `log_path`.
pub(crate) fn offset_index_path(log_path: &Path) -> PathBuf {
    log_path.with_extension("index")
}

/// Path of the time index of the segment whose log file is `log_path`.
pub(crate) fn time_index_path(log_path: &Path) -> PathBuf {
    log_path.with_extension("timeindex")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_roundtrip_and_floor() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.index");
        let (mut idx, intact) = IndexFile::<OffsetEntry>::open(&p, 100, 1024).unwrap();
        assert!(!intact);
        for (o, pos) in [(100, 0), (110, 4096), (130, 9000)] {
            idx.push(OffsetEntry {
                offset: o,
                position: pos,
            })
            .unwrap();
        }
        assert_eq!(idx.floor(99), None);
        assert_eq!(idx.floor(115).unwrap().position, 4096);
        assert_eq!(idx.floor(130).unwrap().position, 9000);
        assert_eq!(idx.floor_position(5000).unwrap().offset, 110);
        drop(idx);
        let (idx, intact) = IndexFile::<OffsetEntry>::open(&p, 100, 1024).unwrap();
        assert!(intact);
        assert_eq!(idx.entries().len(), 3);
        assert_eq!(idx.entries()[2].offset, 130);
    }

    #[test]
    fn time_index_last_before_and_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.timeindex");
        let (mut idx, _) = IndexFile::<TimeEntry>::open(&p, 0, 1024).unwrap();
        idx.push(TimeEntry {
            timestamp: 10,
            offset: 0,
        })
        .unwrap();
        idx.push(TimeEntry {
            timestamp: 20,
            offset: 5,
        })
        .unwrap();
        assert_eq!(idx.last_before(10), None);
        assert_eq!(idx.last_before(15).unwrap().offset, 0);
        assert_eq!(idx.last_before(21).unwrap().offset, 5);
        drop(idx);
        let f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all_at(&[1, 2, 3], 24).unwrap();
        let (idx, intact) = IndexFile::<TimeEntry>::open(&p, 0, 1024).unwrap();
        assert!(!intact);
        assert!(idx.entries().is_empty());
    }
}
