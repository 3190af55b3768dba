//! Crash-safe small files for the catalogue: write a temp file, fsync, rename, fsync the dir.

use std::io::Write;
use std::path::Path;

use sluice_log::LogError;

/// Replaces `path` with `contents` so that after a crash it holds either the old or the new
/// contents, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), LogError> {
    write_atomic_mode(path, contents, 0o666)
}

/// [`write_atomic`] for a file only the broker's user may read (mode 0600 before any byte
/// is written), such as the SCRAM credentials.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), LogError> {
    write_atomic_mode(path, contents, 0o600)
}

fn write_atomic_mode(path: &Path, contents: &[u8], mode: u32) -> Result<(), LogError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .ok_or_else(|| LogError::io(path, std::io::Error::other("path has no parent directory")))?;
    std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    {
        // A leftover temp file from a crash may have other permissions: start afresh.
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| LogError::io(&tmp, e))?;
        file.write_all(contents)
            .map_err(|e| LogError::io(&tmp, e))?;
        file.sync_all().map_err(|e| LogError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| LogError::io(path, e))?;
    sync_dir(dir)
}

/// fsyncs a directory so that a rename or a new entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

/// Reads `path` as JSON, or `None` if it does not exist.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, LogError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            LogError::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("not valid JSON ({e}); restore it from a backup or remove it"),
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io(path, e)),
    }
}

/// Serializes `value` and writes it with [`write_atomic`].
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), LogError> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| LogError::io(path, std::io::Error::other(e.to_string())))?;
    write_atomic(path, &bytes)
}
