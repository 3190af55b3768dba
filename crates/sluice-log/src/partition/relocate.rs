//! Moving a live partition log to another directory (Kafka's AlterReplicaLogDirs): its files
//! are copied in rounds while it keeps taking appends and serving reads, then, under the
//! partition lock, the last bytes are copied and the log switches to the copy.
//!
//! Why a file copy and not a replay of batches into a new log: the copy keeps every byte,
//! index entry and offset exactly as they were, so the moved log is the same log, and nothing
//! (producer state, aborted transactions, the cleaner's progress) has to be derived again.
//!
//! What makes copying without the lock safe: while a copy runs the log is marked relocating
//! ([`PartitionLog::set_relocating`]), so compaction leaves it alone and closed segments do
//! not change. The segment and index files then only grow (a failed append is cut back to
//! where it began, never below a length listed earlier), and retention and DeleteRecords only
//! remove whole files. So the prefix of each file a [`LogFiles`] listing names — taken under
//! the lock — is final, and [`LogCopy::copy_some`] may copy it at leisure. The few small
//! files that are rewritten in place are copied whole at the switch, under the lock, and the
//! copy's recovery point is the log end at the switch (everything below it is fsynced there).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::PartitionLog;
use crate::producer_state::SNAPSHOT_FILE;
use crate::recovery::{self, LOG_START_FILE, RECOVERY_POINT_FILE};
use crate::txn::ABORTED_INDEX_FILE;
use crate::LogError;

/// How one listed file is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// A segment or index file: only grows while the log is relocating, so its listed prefix
    /// can be copied without the lock.
    Growing,
    /// A small file that is rewritten in place or replaced: copied whole at the switch.
    Whole,
    /// The recovery point, written without the lock by the flusher: not copied (a torn read
    /// could give a value too high) but set to the log end at the switch.
    RecoveryPoint,
}

/// One file of a log as listed under the partition lock.
#[derive(Debug, Clone)]
struct ListedFile {
    name: String,
    /// Valid length (for [`FileKind::Growing`] files).
    len: u64,
    kind: FileKind,
}

/// The files of a partition log and their valid lengths at one instant, taken under the
/// partition lock with [`PartitionLog::files`].
#[derive(Debug, Clone)]
pub struct LogFiles {
    files: Vec<ListedFile>,
    log_end_offset: i64,
}

impl LogFiles {
    /// The log end offset when the listing was taken: a copy that has caught up with this
    /// listing holds every record below it.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    fn growing(&self) -> impl Iterator<Item = &ListedFile> {
        self.files.iter().filter(|f| f.kind == FileKind::Growing)
    }
}

/// What has been copied of one file.
#[derive(Debug, Default, Clone, Copy)]
struct Copied {
    len: u64,
    synced: bool,
}

/// A copy of a partition log in progress, from its directory into a new one.
#[derive(Debug)]
pub struct LogCopy {
    source: PathBuf,
    target: PathBuf,
    copied: HashMap<String, Copied>,
}

impl LogCopy {
    /// Starts copying the log in `source` into `target`, a directory that must not exist yet
    /// (it is created here, so a leftover is never mistaken for a copy).
    pub fn start(source: &Path, target: &Path) -> Result<Self, LogError> {
        std::fs::create_dir(target).map_err(|e| LogError::io(target, e))?;
        Ok(LogCopy {
            source: source.to_owned(),
            target: target.to_owned(),
            copied: HashMap::new(),
        })
    }

    /// The directory the copy is written to.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Bytes of segment and index files `files` lists that are not copied yet.
    pub fn remaining(&self, files: &LogFiles) -> u64 {
        files
            .growing()
            .map(|f| f.len.saturating_sub(self.copied_len(&f.name)))
            .sum()
    }

    /// Bytes of the files `files` lists that are already copied.
    pub fn copied_bytes(&self, files: &LogFiles) -> u64 {
        files
            .growing()
            .map(|f| f.len.min(self.copied_len(&f.name)))
            .sum()
    }

    fn copied_len(&self, name: &str) -> u64 {
        self.copied.get(name).map_or(0, |c| c.len)
    }

    /// Copies up to about `budget` bytes of what `files` lists and the copy lacks, oldest
    /// segment first; returns how many bytes it copied (0: caught up with `files`). Meant to
    /// run without the partition lock. A file deleted since the listing is skipped.
    pub fn copy_some(&mut self, files: &LogFiles, budget: u64) -> Result<u64, LogError> {
        let mut done = 0;
        for f in files.growing() {
            if done >= budget {
                break;
            }
            let from = self.copied_len(&f.name);
            let to = f.len.min(from.saturating_add(budget - done));
            if to > from {
                match self.copy_growing(&f.name, from, to) {
                    Ok(()) => done += to - from,
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(done)
    }

    /// Copies bytes `from..to` of the file `name`.
    fn copy_growing(&mut self, name: &str, from: u64, to: u64) -> Result<(), LogError> {
        let src_path = self.source.join(name);
        let src = File::open(&src_path).map_err(|e| LogError::io(&src_path, e))?;
        let dst_path = self.target.join(name);
        let dst = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(from == 0)
            .open(&dst_path)
            .map_err(|e| LogError::io(&dst_path, e))?;
        crate::fileio::copy_range(&src, &dst, from, to).map_err(|e| LogError::io(&src_path, e))?;
        // Retention falls back to a segment's modification time when its records carry no
        // timestamps; a move must not make old data look new.
        if let Ok(modified) = src.metadata().and_then(|m| m.modified()) {
            if let Err(e) = dst.set_modified(modified) {
                tracing::debug!(file = %dst_path.display(), error = %e, "cannot keep the modification time of a moved file");
            }
        }
        self.copied.insert(
            name.to_owned(),
            Copied {
                len: to,
                synced: false,
            },
        );
        Ok(())
    }

    /// Makes everything copied so far durable. Run it without the lock before the switch, so
    /// that the switch has little left to sync.
    pub fn sync(&mut self) -> Result<(), LogError> {
        for (name, copied) in &mut self.copied {
            if !copied.synced {
                let path = self.target.join(name);
                File::open(&path)
                    .and_then(|f| f.sync_data())
                    .map_err(|e| LogError::io(&path, e))?;
                copied.synced = true;
            }
        }
        Ok(())
    }

    /// Under the partition lock: completes the copy to exactly `files` (the rest of every
    /// growing file, the small files whole, no file the log no longer has) and makes it durable.
    fn finish(&mut self, files: &LogFiles) -> Result<(), LogError> {
        // Every growing file is created in the copy, even an empty one (a fresh index).
        for f in files.growing() {
            let from = self.copied_len(&f.name);
            let exists = self.copied.contains_key(&f.name);
            if f.len > from || !exists {
                self.copy_growing(&f.name, from, f.len)?;
            }
        }
        for f in files.files.iter().filter(|f| f.kind != FileKind::Growing) {
            let src = self.source.join(&f.name);
            let dst = self.target.join(&f.name);
            if f.kind == FileKind::RecoveryPoint {
                std::fs::write(&dst, files.log_end_offset.to_be_bytes())
                    .map_err(|e| LogError::io(&dst, e))?;
                self.copied.insert(f.name.clone(), Copied::default());
                continue;
            }
            match std::fs::read(&src) {
                Ok(bytes) => {
                    std::fs::write(&dst, bytes).map_err(|e| LogError::io(&dst, e))?;
                    self.copied.insert(f.name.clone(), Copied::default());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(&src, e)),
            }
        }
        // Segments DeleteRecords removed after they were copied.
        let listed: std::collections::HashSet<&str> =
            files.files.iter().map(|f| f.name.as_str()).collect();
        let stale: Vec<String> = self
            .copied
            .keys()
            .filter(|name| !listed.contains(name.as_str()))
            .cloned()
            .collect();
        for name in stale {
            let path = self.target.join(&name);
            std::fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
            self.copied.remove(&name);
        }
        self.sync()?;
        recovery::fsync_dir(&self.target)
    }
}

fn is_not_found(e: &LogError) -> bool {
    matches!(e, LogError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// A file of a log reopened in the directory it was copied to, waiting to be installed.
#[derive(Debug)]
pub(crate) struct Reopened {
    name: OsString,
    file: File,
}

impl Reopened {
    /// The file and its path once the copy's directory is renamed to `dir`. The descriptor was
    /// opened before that rename and follows the file.
    pub(crate) fn into_parts(self, dir: &Path) -> (PathBuf, File) {
        (dir.join(self.name), self.file)
    }
}

/// Opens the copy in `dir` of the log file at `path`: for appending (`append`, the
/// transaction index) or for positioned reads and writes.
pub(crate) fn reopen_in(path: &Path, dir: &Path, append: bool) -> Result<Reopened, LogError> {
    let name = path
        .file_name()
        .ok_or_else(|| LogError::io(path, std::io::Error::other("not a file path")))?
        .to_owned();
    let copy = dir.join(&name);
    let mut options = OpenOptions::new();
    if append {
        options.append(true);
    } else {
        options.read(true).write(true);
    }
    let file = options.open(&copy).map_err(|e| LogError::io(&copy, e))?;
    Ok(Reopened { name, file })
}

impl PartitionLog {
    /// Marks the log as being copied elsewhere (or no longer): compaction skips it meanwhile,
    /// so its closed segments stay as they are (see the module docs).
    pub fn set_relocating(&mut self, relocating: bool) {
        self.relocating = relocating;
    }

    /// True while a copy of the log is in progress.
    pub fn is_relocating(&self) -> bool {
        self.relocating
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lists the log's files and their valid lengths, for [`LogCopy`]. Cheap: no I/O.
    pub fn files(&self) -> LogFiles {
        let mut files = Vec::with_capacity(self.segments.len() * 3 + 4);
        for seg in &self.segments {
            for (path, len) in [
                (seg.log_path(), seg.size()),
                (seg.offset_index.path(), seg.offset_index.file_len()),
                (seg.time_index.path(), seg.time_index.file_len()),
            ] {
                if let Some(name) = path.file_name() {
                    files.push(ListedFile {
                        name: name.to_string_lossy().into_owned(),
                        len,
                        kind: FileKind::Growing,
                    });
                }
            }
        }
        for (name, kind) in [
            (ABORTED_INDEX_FILE, FileKind::Whole),
            (LOG_START_FILE, FileKind::Whole),
            (SNAPSHOT_FILE, FileKind::Whole),
            (RECOVERY_POINT_FILE, FileKind::RecoveryPoint),
        ] {
            files.push(ListedFile {
                name: name.to_owned(),
                len: 0,
                kind,
            });
        }
        LogFiles {
            files,
            log_end_offset: self.log_end_offset(),
        }
    }

    /// Completes `copy` and switches the log to it. Runs under the partition lock, after
    /// [`LogCopy::copy_some`] has caught up (what is left is copied here). Every file is
    /// opened in the copy first; then `swap(copy_dir, current_dir)` renames the directories
    /// and returns the log's new directory. If opening or `swap` fails the log stays where it
    /// was, unchanged; the copy's directory is the caller's to remove.
    pub fn relocate(
        &mut self,
        mut copy: LogCopy,
        swap: impl FnOnce(&Path, &Path) -> Result<PathBuf, LogError>,
    ) -> Result<(), LogError> {
        copy.finish(&self.files())?;
        let target = copy.target();
        let segments = self
            .segments
            .iter()
            .map(|s| s.reopen_in(target))
            .collect::<Result<Vec<_>, _>>()?;
        let aborted = self.aborted.reopen_in(target)?;
        let recovery_point = recovery::open_recovery_point(target)?;
        let dir_handle = File::open(target).map_err(|e| LogError::io(target, e))?;
        let dir = swap(target, &self.dir)?;
        for (seg, files) in self.segments.iter_mut().zip(segments) {
            seg.install(&dir, files);
        }
        self.aborted.install(&dir, aborted);
        self.recovery_point = Arc::new(recovery_point);
        self.dir_handle = Arc::new(dir_handle);
        self.dir_arc = Arc::from(dir.as_path());
        tracing::info!(from = %self.dir.display(), to = %dir.display(), log_end_offset = self.log_end_offset(), "moved partition log");
        self.dir = dir;
        self.relocating = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
