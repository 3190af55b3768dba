//! The token replay cache: the id of every accepted token until the token could no longer be
//! accepted anyway, in memory and, when KSS has a state directory, in an append-only file that
//! survives a restart (a memory-only cache lets every token be replayed once more after one).
//!
//! Ids are kept as SHA-256 digests: fixed-size lines whatever the `jti`, and no text from a
//! token ever reaches the file. Each line is `<forget-after unix seconds> <hex digest>`; a line
//! is fsynced before the token is accepted. The file is rewritten without the forgotten entries
//! whenever it holds more than twice the live ones, so it stays bounded like the memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::files::{open_append_private, write_atomic, FileMode};

/// A token id's digest.
type Digest = [u8; 32];

/// Most remembered token ids; beyond it new tokens are refused until old ones are forgotten (a
/// flood of valid tokens would otherwise grow memory and file without bound).
pub const MAX_ENTRIES: usize = 1_000_000;
/// Forgotten entries are purged from memory at most this often, in seconds.
const PURGE_INTERVAL_SECS: u64 = 30;
/// Lines the file may hold beyond twice the live entries before it is rewritten.
const COMPACT_SLACK: usize = 4096;

/// Why a token id could not be remembered.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The id was already used.
    #[error("already used")]
    Replayed,
    /// The cache is full.
    #[error("too many live tokens ({MAX_ENTRIES}); retry in a few minutes")]
    Full,
    /// The cache file could not be read or written.
    #[error("the token replay cache {path} cannot be used: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

struct Log {
    path: PathBuf,
    file: File,
    lines: usize,
}

/// Remembered token ids (see the module documentation).
pub struct ReplayCache {
    /// digest -> unix second after which the token is refused as expired anyway.
    seen: HashMap<Digest, u64>,
    log: Option<Log>,
    next_purge: u64,
    max_entries: usize,
}

fn digest(jti: &str) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, jti.as_bytes()).as_ref());
    out
}

fn line(digest: &Digest, forget_after: u64) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{forget_after} {hex}\n")
}

fn parse_line(text: &str) -> Option<(Digest, u64)> {
    let (forget_after, hex) = text.split_once(' ')?;
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((digest, forget_after.parse().ok()?))
}

impl ReplayCache {
    /// A cache that forgets everything when the process ends.
    pub fn in_memory() -> Self {
        ReplayCache {
            seen: HashMap::new(),
            log: None,
            next_purge: 0,
            max_entries: MAX_ENTRIES,
        }
    }

    /// Loads the cache persisted at `path` (created when missing, mode 0600), dropping entries
    /// forgotten by `now`. A torn last line (a crash mid-append, before that token was accepted)
    /// is skipped.
    pub fn open(path: &Path, now: u64) -> Result<Self, ReplayError> {
        let io = |source| ReplayError::Io {
            path: path.to_owned(),
            source,
        };
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let mut seen = HashMap::new();
        let mut skipped = 0usize;
        for text in text.lines() {
            match parse_line(text) {
                Some((digest, forget_after)) if forget_after >= now => {
                    seen.insert(digest, forget_after);
                }
                Some(_) => {}
                None => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(path = %path.display(), skipped, "skipped unreadable lines of the token replay cache");
        }
        let mut cache = ReplayCache {
            seen,
            log: None,
            next_purge: now.saturating_add(PURGE_INTERVAL_SECS),
            max_entries: MAX_ENTRIES,
        };
        cache.log = Some(cache.rewrite(path.to_owned()).map_err(io)?);
        tracing::info!(path = %path.display(), live = cache.seen.len(), "loaded the token replay cache");
        Ok(cache)
    }

    /// Writes the live entries to a new file at `path` and opens it for appending.
    fn rewrite(&self, path: PathBuf) -> std::io::Result<Log> {
        let contents: String = self.seen.iter().map(|(d, f)| line(d, *f)).collect();
        write_atomic(&path, contents.as_bytes(), FileMode::Private)?;
        let file = open_append_private(&path)?;
        Ok(Log {
            path,
            file,
            lines: self.seen.len(),
        })
    }

    /// Remembers `jti` until `forget_after` (unix seconds), or says why not. Persisted before it
    /// returns `Ok`; on a write error nothing is remembered (the token is refused, so it may
    /// be presented again).
    pub fn remember(&mut self, jti: &str, forget_after: u64, now: u64) -> Result<(), ReplayError> {
        let digest = digest(jti);
        if self.seen.contains_key(&digest) {
            return Err(ReplayError::Replayed);
        }
        if now >= self.next_purge || self.seen.len() >= self.max_entries {
            self.purge(now)?;
        }
        if self.seen.len() >= self.max_entries {
            return Err(ReplayError::Full);
        }
        if let Some(log) = &mut self.log {
            let written = log
                .file
                .write_all(line(&digest, forget_after).as_bytes())
                .and_then(|()| log.file.sync_data());
            if let Err(source) = written {
                return Err(ReplayError::Io {
                    path: log.path.clone(),
                    source,
                });
            }
            log.lines += 1;
        }
        self.seen.insert(digest, forget_after);
        Ok(())
    }

    /// Forgets entries past their time and rewrites the file when it has grown well beyond them.
    fn purge(&mut self, now: u64) -> Result<(), ReplayError> {
        self.seen.retain(|_, forget_after| *forget_after >= now);
        self.next_purge = now.saturating_add(PURGE_INTERVAL_SECS);
        let live = self.seen.len();
        let Some(log) = &self.log else {
            return Ok(());
        };
        if log.lines <= 2 * live + COMPACT_SLACK {
            return Ok(());
        }
        let path = log.path.clone();
        let new_log = self
            .rewrite(path.clone())
            .map_err(|source| ReplayError::Io {
                path: path.clone(),
                source,
            })?;
        self.log = Some(new_log);
        Ok(())
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart_until_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let mut cache = ReplayCache::open(&path, 1000).unwrap();
        cache.remember("a", 1100, 1000).unwrap();
        cache.remember("b", 1500, 1000).unwrap();
        assert!(matches!(
            cache.remember("a", 1100, 1001),
            Err(ReplayError::Replayed)
        ));
        drop(cache);
        let mut reopened = ReplayCache::open(&path, 1200).unwrap();
        assert_eq!(reopened.len(), 1, "a is past its time");
        assert!(matches!(
            reopened.remember("b", 1500, 1200),
            Err(ReplayError::Replayed)
        ));
        reopened.remember("a", 1300, 1200).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(" a\n") && text.lines().all(|l| l.len() < 90));
    }

    #[test]
    fn a_torn_or_garbage_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let good = line(&digest("x"), 5000);
        std::fs::write(&path, format!("garbage\n{good}9999 abc")).unwrap();
        let mut cache = ReplayCache::open(&path, 1000).unwrap();
        assert_eq!(cache.len(), 1);
        assert!(matches!(
            cache.remember("x", 5000, 1000),
            Err(ReplayError::Replayed)
        ));
    }

    #[test]
    fn the_file_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let mut cache = ReplayCache::open(&path, 0).unwrap();
        for i in 0..20_000u64 {
            let now = i / 100;
            cache.remember(&format!("t{i}"), now + 5, now).unwrap();
        }
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines <= 2 * cache.len() + COMPACT_SLACK + 1, "{lines}");
        assert!(
            cache.len() <= 100 * (PURGE_INTERVAL_SECS as usize + 6),
            "{}",
            cache.len()
        );
    }

    #[test]
    fn a_full_cache_refuses_until_entries_expire() {
        let mut cache = ReplayCache::in_memory();
        cache.max_entries = 2;
        cache.remember("a", 10, 0).unwrap();
        cache.remember("b", 10, 0).unwrap();
        assert!(matches!(cache.remember("c", 10, 0), Err(ReplayError::Full)));
        cache.remember("c", 20, 11).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_cache_file_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("replay");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        // Loading reads through it (as any reader would) but the rewrite replaces the link.
        let mut cache = ReplayCache::open(&path, 0).unwrap();
        cache.remember("a", 10, 0).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }
}
