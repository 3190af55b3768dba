//! Positioned file I/O the standard library lacks: vectored writes at an offset, reads into
//! memory that is not zero-filled first, and range copies between files.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;

/// Most buffers one `pwritev` call takes (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Writes all of `bufs`, in order, at `position` of `file` (`pwritev`, repeated on short
/// writes). `bufs` is consumed as it is written.
pub(crate) fn write_all_vectored_at(
    file: &File,
    mut bufs: &mut [IoSlice<'_>],
    mut position: u64,
) -> io::Result<()> {
    loop {
        // Drops written and empty leading slices, so a zero-byte write below means a full disk
        // or similar, never a window of empty buffers.
        IoSlice::advance_slices(&mut bufs, 0);
        if bufs.is_empty() {
            return Ok(());
        }
        let count = bufs.len().min(IOV_MAX);
        let offset = libc::off_t::try_from(position)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file position too large"))?;
        // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` on Unix (documented by std),
        // and the first `count` slices are valid for reads for the duration of the call.
        let written = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                bufs.as_ptr().cast::<libc::iovec>(),
                count as libc::c_int,
                offset,
            )
        };
        match written {
            n if n < 0 => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
            0 => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            n => {
                let n = n as usize;
                position += n as u64;
                IoSlice::advance_slices(&mut bufs, n);
            }
        }
    }
}

/// Appends exactly `len` bytes read at `position` of `file` to `buf`, without zero-filling the
/// space first (a fetch reads megabytes; zeroing them would cost as much as the copy itself).
pub(crate) fn read_exact_at_into(
    file: &File,
    buf: &mut Vec<u8>,
    len: usize,
    mut position: u64,
) -> io::Result<()> {
    buf.reserve(len);
    let mut remaining = len;
    while remaining > 0 {
        let spare = &mut buf.spare_capacity_mut()[..remaining];
        let offset = libc::off_t::try_from(position)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file position too large"))?;
        // SAFETY: `spare` is `remaining` writable bytes owned by `buf`; `pread` writes at most
        // that many and reports how many it wrote.
        let read = unsafe {
            libc::pread(
                file.as_raw_fd(),
                spare.as_mut_ptr().cast::<libc::c_void>(),
                remaining,
                offset,
            )
        };
        match read {
            n if n < 0 => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
            0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            n => {
                let n = n as usize;
                // SAFETY: `pread` initialised the first `n` bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + n) };
                remaining -= n;
                position += n as u64;
            }
        }
    }
    Ok(())
}

/// Copies bytes `from..to` of `src` to the same positions of `dst`, in the kernel
/// (`copy_file_range`) where it can, else through a bounded buffer.
pub(crate) fn copy_range(src: &File, dst: &File, from: u64, to: u64) -> io::Result<()> {
    let mut position = from;
    while position < to {
        let chunk = usize::try_from(to - position)
            .unwrap_or(usize::MAX)
            .min(COPY_CHUNK);
        let mut off_in = libc::off64_t::try_from(position)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file position too large"))?;
        let mut off_out = off_in;
        // SAFETY: plain syscall on two open descriptors; the offsets are ours to update.
        let copied = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                chunk,
                0,
            )
        };
        match copied {
            n if n < 0 => {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EINTR) => {}
                    // Not supported between these files (old kernel, some file systems).
                    Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => {
                        return copy_range_buffered(src, dst, position, to);
                    }
                    _ => return Err(err),
                }
            }
            // Some file systems (FUSE, older overlayfs) answer 0 instead of an error; the
            // buffered copy tells a real end of file from that.
            0 => return copy_range_buffered(src, dst, position, to),
            n => position += n as u64,
        }
    }
    Ok(())
}

/// Largest piece one copy step moves (bounds the buffer of the fallback).
const COPY_CHUNK: usize = 1 << 20;

/// [`copy_range`] through user space.
fn copy_range_buffered(src: &File, dst: &File, mut position: u64, to: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = Vec::with_capacity(COPY_CHUNK);
    while position < to {
        let len = usize::try_from(to - position)
            .unwrap_or(usize::MAX)
            .min(COPY_CHUNK);
        buf.clear();
        read_exact_at_into(src, &mut buf, len, position)?;
        dst.write_all_at(&buf, position)?;
        position += len as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_write_then_read_round_trips_across_many_buffers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .expect("open");
        // More buffers than one pwritev takes, of uneven sizes (some empty).
        let chunks: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| vec![(i % 251) as u8; (i % 7) as usize])
            .collect();
        let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
        write_all_vectored_at(&file, &mut slices, 10).expect("write");
        let expected: Vec<u8> = chunks.concat();
        let mut buf = b"prefix".to_vec();
        read_exact_at_into(&file, &mut buf, expected.len(), 10).expect("read");
        assert_eq!(&buf[..6], b"prefix");
        assert_eq!(&buf[6..], &expected[..]);
        let mut past_end = Vec::new();
        let err = read_exact_at_into(&file, &mut past_end, 10, 10 + expected.len() as u64 - 5)
            .expect_err("short file");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn ranges_copy_in_the_kernel_and_through_the_buffer_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(dir.path().join("src"), &data).expect("write");
        let src = File::open(dir.path().join("src")).expect("open");
        for (name, buffered) in [("kernel", false), ("buffered", true)] {
            let dst = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.path().join(name))
                .expect("open");
            let copy = |from, to| {
                if buffered {
                    copy_range_buffered(&src, &dst, from, to)
                } else {
                    copy_range(&src, &dst, from, to)
                }
            };
            // In two steps, the second starting where the first stopped.
            copy(0, 1_234_567).expect("first");
            copy(1_234_567, data.len() as u64).expect("second");
            assert_eq!(std::fs::read(dir.path().join(name)).expect("read"), data);
            let err = copy(data.len() as u64, data.len() as u64 + 1).expect_err("past the end");
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        }
    }
}
