//! The one way KSS and the sidecar write files: atomically, never through a link planted at the
//! temporary path, private files mode 0600 from their first byte.
//!
//! A predictable temporary name (`.key.pem.tmp-<pid>`) lets anyone who can write to the
//! directory plant a symlink there and have the private key written through it. Here every
//! temporary file gets a random name and is created with `O_CREAT|O_EXCL` (`create_new`), which
//! fails on any existing path, a symlink included, instead of following it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

/// How many fresh temporary names are tried before giving up (a collision with a random name
/// means something is deliberately filling the directory).
const TEMP_ATTEMPTS: usize = 8;

/// Who may read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// Owner only (0600): private keys, the replay cache.
    Private,
    /// World-readable (0644): certificates, client properties.
    Shared,
}

impl FileMode {
    #[cfg(unix)]
    fn bits(self) -> u32 {
        match self {
            FileMode::Private => 0o600,
            FileMode::Shared => 0o644,
        }
    }
}

/// Writes `contents` to `path` atomically: a new file with a random name in the same directory,
/// created exclusively (never following a link), written, fsynced and renamed over `path`, so
/// readers see the old file or the new one, never half of one. A symlink at `path` itself is
/// replaced, not followed.
pub fn write_atomic(path: &Path, contents: &[u8], mode: FileMode) -> io::Result<()> {
    write_atomic_with(path, contents, mode, random_suffix)
}

/// [`write_atomic`] with the temporary names drawn from `suffix` (tests plant files at them).
fn write_atomic_with(
    path: &Path,
    contents: &[u8],
    mode: FileMode,
    mut suffix: impl FnMut() -> io::Result<String>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let (tmp, mut file) = create_temp(dir, &name.to_string_lossy(), mode, &mut suffix)?;
    let result = (|| {
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            // Best effort: makes the rename itself durable.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        // Only ever our own file: it was created exclusively above.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates a new temporary file in `dir`; an existing path (a planted symlink, a leftover) at a
/// drawn name is left alone and another name is drawn.
fn create_temp(
    dir: &Path,
    name: &str,
    mode: FileMode,
    suffix: &mut impl FnMut() -> io::Result<String>,
) -> io::Result<(PathBuf, File)> {
    for _ in 0..TEMP_ATTEMPTS {
        let tmp = dir.join(format!(".{name}.{}.tmp", suffix()?));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // The mode applies at creation, so a private file is never readable by others.
            options.mode(mode.bits());
        }
        #[cfg(not(unix))]
        let _ = mode;
        match options.open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                tracing::warn!(path = %tmp.display(), "something already exists at a fresh temporary path; not touching it, drawing another name");
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "could not create a temporary file in {} after {TEMP_ATTEMPTS} attempts: every name drawn already existed",
            dir.display()
        ),
    ))
}

fn random_suffix() -> io::Result<String> {
    let mut bytes = [0u8; 12];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| io::Error::other("the system random generator failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Opens `path` for appending, creating it (mode 0600) if missing; a symlink at `path` is
/// refused rather than followed.
pub fn open_append_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn private_files_are_0600_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        write_atomic(&path, b"one", FileMode::Private).unwrap();
        write_atomic(&path, b"two", FileMode::Private).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(entries(dir.path()), 1, "no temp file left");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_planted_at_the_temp_path_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let planted = dir.path().join(".key.pem.guessed.tmp");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let mut names = ["guessed", "fresh"].into_iter().map(|s| Ok(s.to_owned()));
        let path = dir.path().join("key.pem");
        write_atomic_with(&path, b"secret", FileMode::Private, || {
            names.next().unwrap()
        })
        .unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        assert!(std::fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[cfg(unix)]
    #[test]
    fn only_collisions_fail_and_touch_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join(".key.pem.same.tmp");
        std::os::unix::fs::symlink("/nonexistent", &planted).unwrap();
        let path = dir.path().join("key.pem");
        let err = write_atomic_with(&path, b"secret", FileMode::Private, || Ok("same".into()))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(!path.exists());
        assert!(std::fs::symlink_metadata(&planted).is_ok(), "left alone");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("cert.pem");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_atomic(&path, b"cert", FileMode::Shared).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&path).unwrap(), b"cert");
    }

    #[cfg(unix)]
    #[test]
    fn append_refuses_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("log");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert!(open_append_private(&path).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }
}
