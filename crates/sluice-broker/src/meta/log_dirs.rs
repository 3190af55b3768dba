//! The broker's log directories (Kafka's `log.dirs`): where partitions live, which directory a
//! new partition goes to, and the directory names of moves and deletions in progress.
//!
//! A partition lives in exactly one log directory, as `<log dir>/<topic>-<partition>`; the
//! broker finds it there at start (the catalogue does not record which directory, as in
//! Kafka). Names ending in a suffix are work in progress, finished or undone at start:
//! - `<topic>-<partition>.<id>-future`: a copy being made for AlterReplicaLogDirs. Removed: the
//!   partition stays where it was (the move has to be asked for again).
//! - `<topic>-<partition>.<id>-swap`: a complete copy, fsynced, about to replace the live
//!   directory. If the live directory still exists anywhere the crash came before the old one
//!   was moved aside, and the copy is removed; otherwise it becomes the live directory.
//! - `<topic>-<partition>.<id>-delete`: a deleted topic's or a moved partition's old data.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sluice_log::LogError;
use tracing::{info, warn};

use super::{sync_dir, MetaError};

/// Suffix of a partition directory that is being removed.
pub(crate) const DELETED_SUFFIX: &str = "-delete";
/// Suffix of a partition copy in progress.
const FUTURE_SUFFIX: &str = "-future";
/// Suffix of a complete copy that is replacing the live directory.
const SWAP_SUFFIX: &str = "-swap";
/// Longest file name most file systems take; Kafka refuses moves whose copy name is longer.
const MAX_FILE_NAME: usize = 255;

/// The configured log directories, canonical and distinct.
#[derive(Debug, Clone)]
pub struct LogDirs {
    dirs: Vec<PathBuf>,
}

/// `<log_dir>/<topic>-<partition>`.
pub fn partition_dir(log_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    log_dir.join(format!("{topic}-{partition}"))
}

/// `<log_dir>/<topic>-<partition>.<id>-<suffix>`, or `None` if that name is too long.
fn suffixed_dir(log_dir: &Path, topic: &str, partition: i32, suffix: &str) -> Option<PathBuf> {
    let name = format!(
        "{topic}-{partition}.{}{suffix}",
        uuid::Uuid::new_v4().simple()
    );
    (name.len() <= MAX_FILE_NAME).then(|| log_dir.join(name))
}

/// Where a copy of `topic`-`partition` into `log_dir` is made, or `None` if the topic name is
/// too long for that directory name (INVALID_TOPIC_EXCEPTION, as in Kafka).
pub(crate) fn future_dir(log_dir: &Path, topic: &str, partition: i32) -> Option<PathBuf> {
    suffixed_dir(log_dir, topic, partition, FUTURE_SUFFIX)
}

/// True when a copy of `topic`-`partition` gets a directory name of legal length.
pub fn copy_name_fits(topic: &str, partition: i32) -> bool {
    future_dir(Path::new(""), topic, partition).is_some()
}

/// The name a live partition directory is moved aside to before it is removed (the rename is
/// atomic, so a crash never leaves a half-removed directory under a live name).
fn aside_dir(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(
        "{name}.{}{DELETED_SUFFIX}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// The live name a `-swap` or `-future` directory name stands for: `t-0.<id>-swap` → `t-0`.
fn live_name(name: &str, suffix: &str) -> Option<String> {
    let stem = name.strip_suffix(suffix)?;
    let (live, id) = stem.rsplit_once('.')?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| live.to_owned())
}

impl LogDirs {
    /// Creates missing directories, checks that they are distinct, and finishes what a crash
    /// interrupted (see the module docs).
    pub fn open(dirs: &[PathBuf]) -> Result<Self, MetaError> {
        let mut canonical: Vec<PathBuf> = Vec::with_capacity(dirs.len());
        for dir in dirs {
            std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
            let dir = std::fs::canonicalize(dir).map_err(|e| LogError::io(dir, e))?;
            if canonical.contains(&dir) {
                return Err(MetaError::InvalidLogDirs(format!(
                    "{} is listed twice",
                    dir.display()
                )));
            }
            canonical.push(dir);
        }
        if canonical.is_empty() {
            return Err(MetaError::InvalidLogDirs("no log directory".to_owned()));
        }
        let log_dirs = LogDirs { dirs: canonical };
        log_dirs.finish_interrupted()?;
        Ok(log_dirs)
    }

    /// The directories, canonical, in configured order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The configured directory a client named (AlterReplicaLogDirs): its absolute path as
    /// DescribeLogDirs reports it, or another absolute path to the same directory.
    pub fn resolve(&self, requested: &str) -> Option<&Path> {
        let requested = Path::new(requested);
        if !requested.is_absolute() {
            return None;
        }
        if let Some(dir) = self.dirs.iter().find(|d| d.as_path() == requested) {
            return Some(dir);
        }
        let canonical = std::fs::canonicalize(requested).ok()?;
        self.dirs
            .iter()
            .find(|d| **d == canonical)
            .map(PathBuf::as_path)
    }

    /// The log directory holding `topic`-`partition` at start. Exactly one must: a partition
    /// in the catalogue without a directory means a log directory was lost or left out of
    /// `log_dirs`, and recreating it empty would silently lose its data.
    pub(crate) fn locate(&self, topic: &str, partition: i32) -> Result<&Path, MetaError> {
        let mut found = self
            .dirs
            .iter()
            .filter(|d| partition_dir(d, topic, partition).is_dir());
        match (found.next(), found.next()) {
            (Some(dir), None) => Ok(dir),
            (None, _) => Err(MetaError::InvalidLogDirs(format!(
                "partition {topic}-{partition} is in the catalogue but no log directory holds it \
                 (looked in {}); was a log directory lost or removed from log_dirs?",
                self.list()
            ))),
            (Some(a), Some(b)) => Err(MetaError::InvalidLogDirs(format!(
                "partition {topic}-{partition} is in both {} and {}; remove the stale copy",
                a.display(),
                b.display()
            ))),
        }
    }

    fn list(&self) -> String {
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The directory a new partition goes to: the one with the fewest partitions (first in
    /// configured order on a tie), as Kafka chooses. `counts` is updated for the next pick.
    pub(crate) fn choose(&self, counts: &mut HashMap<PathBuf, usize>) -> &Path {
        let dir = self
            .dirs
            .iter()
            .min_by_key(|d| counts.get(d.as_path()).copied().unwrap_or(0))
            .unwrap_or(&self.dirs[0]);
        *counts.entry(dir.clone()).or_default() += 1;
        dir
    }

    /// The configured directory `partition_dir` is in.
    pub(crate) fn owner(&self, partition_dir: &Path) -> Option<&Path> {
        let parent = partition_dir.parent()?;
        self.dirs
            .iter()
            .find(|d| d.as_path() == parent)
            .map(PathBuf::as_path)
    }

    /// Removes `topic`-`partition` from every log directory (leftovers of a crash between a
    /// directory's creation and the catalogue write).
    pub(crate) fn remove_everywhere(&self, topic: &str, partition: i32) {
        for dir in &self.dirs {
            remove_dir(&partition_dir(dir, topic, partition));
        }
    }

    /// Undoes copies, completes swaps and removals a crash interrupted.
    fn finish_interrupted(&self) -> Result<(), MetaError> {
        for dir in &self.dirs {
            let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if live_name(&name, FUTURE_SUFFIX).is_some() {
                    info!(dir = %entry.path().display(), "removing an unfinished partition copy");
                    remove_now(&entry.path());
                } else if let Some(live) = live_name(&name, SWAP_SUFFIX) {
                    if self.dirs.iter().any(|d| d.join(&live).is_dir()) {
                        info!(dir = %entry.path().display(), "removing a partition copy whose switch did not begin");
                        remove_now(&entry.path());
                    } else {
                        let target = dir.join(&live);
                        info!(from = %entry.path().display(), to = %target.display(), "completing an interrupted partition move");
                        std::fs::rename(entry.path(), &target)
                            .map_err(|e| LogError::io(&target, e))?;
                        sync_dir(dir)?;
                    }
                }
            }
        }
        // Removals last: they decide nothing above.
        for dir in &self.dirs {
            let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))?;
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .ends_with(DELETED_SUFFIX)
                {
                    remove_now(&entry.path());
                }
            }
        }
        Ok(())
    }
}

/// Switches directories for a partition move, after the copy at `copy` is complete and
/// fsynced: `copy` becomes `<copy's log dir>/<live name>` and the live directory `current` is
/// moved aside. Each rename is fsynced, in an order that start-up can finish from any crash
/// point (see the module docs). Returns the new live directory and the old one's new name,
/// which the caller removes. A failure before the old directory is moved aside is undone;
/// after it, the switch goes ahead under the `-swap` name.
pub(crate) fn switch_dirs(copy: &Path, current: &Path) -> Result<(PathBuf, PathBuf), LogError> {
    let live = current
        .file_name()
        .ok_or_else(|| LogError::io(current, std::io::Error::other("not a partition directory")))?;
    let copy_parent = copy
        .parent()
        .ok_or_else(|| LogError::io(copy, std::io::Error::other("not a partition directory")))?;
    let copy_name = copy
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let swap = copy.with_file_name(format!(
        "{}{SWAP_SUFFIX}",
        copy_name.strip_suffix(FUTURE_SUFFIX).unwrap_or(&copy_name)
    ));
    let fin = copy_parent.join(live);
    let aside = aside_dir(current);
    rename_synced(copy, &swap)?;
    if let Err(e) = rename_synced(current, &aside) {
        undo(&swap, copy);
        return Err(e);
    }
    if let Err(e) = rename_synced(&swap, &fin) {
        // The old directory is aside and the copy complete: roll forward rather than back. The
        // log lives on under the swap name, which start-up renames to the live one.
        warn!(dir = %swap.display(), error = %e, "could not give a moved partition its name; it stays under this one until the next start");
        return Ok((swap, aside));
    }
    Ok((fin, aside))
}

fn rename_synced(from: &Path, to: &Path) -> Result<(), LogError> {
    std::fs::rename(from, to).map_err(|e| LogError::io(to, e))?;
    if let Some(parent) = to.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

fn undo(from: &Path, to: &Path) {
    if let Err(e) = rename_synced(from, to) {
        warn!(from = %from.display(), to = %to.display(), error = %e, "could not undo a rename of a partition move; start-up will finish it");
    }
}

/// Moves a directory aside and removes it; a missing directory is fine.
pub(crate) fn remove_dir(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let aside = aside_dir(dir);
    let target = match std::fs::rename(dir, &aside) {
        Ok(()) => aside,
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "could not move the partition directory aside; removing in place");
            dir.to_owned()
        }
    };
    remove_now(&target);
    if let Some(parent) = dir.parent() {
        if let Err(e) = sync_dir(parent) {
            warn!(error = %e, "could not fsync the log directory after removing a partition");
        }
    }
}

/// Removes a directory that no live name points at any more.
pub(crate) fn remove_now(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(dir = %dir.display(), error = %e, "could not remove a partition directory; remove it by hand");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_up_finishes_each_interrupted_step() {
        let root = tempfile::tempdir().expect("tempdir");
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        let dirs = LogDirs::open(&[a.clone(), b.clone()]).expect("open");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mkdir = |p: PathBuf| std::fs::create_dir_all(p).expect("mkdir");
        // A copy that never finished; the partition stays in a.
        mkdir(a.join("t-0"));
        mkdir(b.join(format!("t-0.{id}-future")));
        // The switch began but the old directory was not moved aside yet: the copy goes.
        mkdir(a.join("t-1"));
        mkdir(b.join(format!("t-1.{id}-swap")));
        // The old directory was moved aside: the copy becomes live.
        mkdir(a.join(format!("my.topic-2.{id}-delete")));
        mkdir(b.join(format!("my.topic-2.{id}-swap")));
        drop(dirs);
        let dirs = LogDirs::open(&[a.clone(), b.clone()]).expect("reopen");
        let names = |d: &Path| {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .expect("list")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&a), ["t-0", "t-1"]);
        assert_eq!(names(&b), ["my.topic-2"]);
        assert_eq!(dirs.locate("t", 0).expect("t-0"), dirs.dirs()[0]);
        assert_eq!(dirs.locate("my.topic", 2).expect("moved"), dirs.dirs()[1]);
        assert!(matches!(
            dirs.locate("t", 9),
            Err(MetaError::InvalidLogDirs(_))
        ));
        mkdir(b.join("t-0"));
        assert!(dirs.locate("t", 0).is_err(), "two live copies are refused");
    }

    #[test]
    fn switching_renames_in_an_order_start_up_can_finish() {
        let root = tempfile::tempdir().expect("tempdir");
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        let dirs = LogDirs::open(&[a.clone(), b.clone()]).expect("open");
        std::fs::create_dir_all(a.join("t-0")).expect("live");
        std::fs::write(a.join("t-0/old"), b"old").expect("file");
        let copy = future_dir(&dirs.dirs()[1], "t", 0).expect("name");
        std::fs::create_dir_all(&copy).expect("copy");
        std::fs::write(copy.join("new"), b"new").expect("file");
        let (live, aside) = switch_dirs(&copy, &dirs.dirs()[0].join("t-0")).expect("switch");
        assert_eq!(live, dirs.dirs()[1].join("t-0"));
        assert!(live.join("new").exists() && aside.join("old").exists());
        assert!(!copy.exists() && !dirs.dirs()[0].join("t-0").exists());
        assert_eq!(dirs.owner(&live), Some(dirs.dirs()[1].as_path()));
        // A name too long for a copy directory is refused up front.
        assert!(future_dir(&a, &"x".repeat(249), 0).is_none());
    }

    #[test]
    fn new_partitions_go_to_the_emptiest_directory() {
        let root = tempfile::tempdir().expect("tempdir");
        let paths: Vec<PathBuf> = ["a", "b", "c"]
            .iter()
            .map(|n| root.path().join(n))
            .collect();
        let dirs = LogDirs::open(&paths).expect("open");
        let mut counts = HashMap::from([(dirs.dirs()[0].clone(), 2)]);
        let picks: Vec<PathBuf> = (0..4)
            .map(|_| dirs.choose(&mut counts).to_owned())
            .collect();
        assert_eq!(
            picks,
            [
                &dirs.dirs()[1],
                &dirs.dirs()[2],
                &dirs.dirs()[1],
                &dirs.dirs()[2]
            ]
            .map(|p| p.clone())
        );
        assert!(LogDirs::open(&[paths[0].clone(), paths[0].join("../a")]).is_err());
        let requested = dirs.dirs()[1].join("../b").to_string_lossy().into_owned();
        assert_eq!(dirs.resolve(&requested), Some(dirs.dirs()[1].as_path()));
        assert_eq!(dirs.resolve("/nowhere"), None);
        assert_eq!(
            dirs.resolve("b"),
            None,
            "relative paths are refused, as in Kafka"
        );
    }
}
