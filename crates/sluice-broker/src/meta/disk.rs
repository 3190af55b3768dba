//! Space of the file system a directory is on (DescribeLogDirs' total and usable bytes).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `(total, usable)` bytes of the file system holding `dir`; usable is what an unprivileged
/// writer may still use. `None` if it cannot be read.
pub fn space(dir: &Path) -> Option<(u64, u64)> {
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs reads a NUL-terminated path and writes one `statvfs` struct, which is
    // plain data and fully initialised by a successful call; on failure it is not read.
    let stats = unsafe {
        let mut stats: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut stats) != 0 {
            return None;
        }
        stats
    };
    // The field types are u32 on some targets and u64 on others.
    #[allow(clippy::useless_conversion)]
    let (block, blocks, available) = (
        u64::from(stats.f_frsize),
        u64::from(stats.f_blocks),
        u64::from(stats.f_bavail),
    );
    Some((
        blocks.saturating_mul(block),
        available.saturating_mul(block),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_file_system_of_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (total, usable) = space(dir.path()).unwrap();
        assert!(total > 0 && usable <= total);
        assert_eq!(space(&dir.path().join("missing")), None);
    }
}
