//! Writes responses to a client: the size prefix and encoded bytes through a small buffer, and
//! a fetch's record data straight from the segment files.
//!
//! On plaintext listeners large file ranges go to the socket with `sendfile(2)`: the records
//! move from the page cache to the socket inside the kernel, never through the broker's
//! memory. Under TLS (and for small ranges, where one `write` beats `write` + `sendfile`) the
//! bytes are `pread` into the write buffer in chunks of at most 64 KiB, each counted
//! against the broker-wide fetch memory budget until it has been written, so a consumer of
//! gigabytes costs the broker at most one chunk per connection.

use std::io;
use std::os::fd::AsRawFd;

use sluice_log::FileRange;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::handlers::response::{Part, Response};
use crate::memory::{MemoryBudget, Reservation};

/// Most bytes buffered before they are written out.
pub(crate) const CHUNK: usize = 64 * 1024;
/// File ranges at least this large are `sendfile`d on plaintext sockets.
const SENDFILE_MIN: u64 = 16 * 1024;
/// Most bytes one `sendfile` call is asked for (the kernel caps it near 2 GiB anyway).
const SENDFILE_MAX: usize = 1 << 30;

/// A connection's writing half.
pub trait Socket: AsyncWrite + Unpin + Send {
    /// The TCP socket, when bytes written to it go out unchanged (not TLS): file ranges can
    /// then be `sendfile`d to it.
    fn plain_tcp(&self) -> Option<&TcpStream> {
        None
    }
}

impl Socket for tokio::net::tcp::OwnedWriteHalf {
    fn plain_tcp(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

impl<S: AsyncRead + AsyncWrite + Send> Socket for tokio::io::WriteHalf<S> {}

/// Buffers and writes the responses of one connection.
#[derive(Debug)]
pub(crate) struct ResponseWriter<W> {
    socket: W,
    buf: Vec<u8>,
    /// The fetch memory budget, and what of it covers file bytes now in `buf`.
    fetch_memory: MemoryBudget,
    held: Reservation,
}

impl<W: Socket> ResponseWriter<W> {
    pub(crate) fn new(socket: W, fetch_memory: MemoryBudget) -> Self {
        ResponseWriter {
            socket,
            buf: Vec::new(),
            fetch_memory,
            held: Reservation::default(),
        }
    }

    /// Writes one response with its size prefix; some of it may stay buffered until
    /// [`Self::flush`].
    pub(crate) async fn write(&mut self, response: &Response) -> io::Result<()> {
        let len = i32::try_from(response.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, "response larger than 2 GiB")
        })?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        for part in response.parts() {
            match part {
                Part::Bytes(bytes) if self.buf.len() + bytes.len() <= CHUNK => {
                    self.buf.extend_from_slice(bytes);
                }
                Part::Bytes(bytes) => {
                    self.write_buffered().await?;
                    self.socket.write_all(bytes).await?;
                }
                Part::File(range) => self.write_file(range).await?,
            }
        }
        Ok(())
    }

    /// Writes out everything buffered.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        self.write_buffered().await?;
        self.socket.flush().await
    }

    /// Shuts the socket down after a final flush.
    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.socket.shutdown().await
    }

    async fn write_buffered(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.socket.write_all(&self.buf).await?;
            self.buf.clear();
            if self.buf.capacity() > 2 * CHUNK {
                // A large in-memory part passed through; idle connections keep little.
                self.buf.shrink_to(CHUNK);
            }
        }
        self.held = Reservation::default();
        Ok(())
    }

    async fn write_file(&mut self, range: &FileRange) -> io::Result<()> {
        if range.len() >= SENDFILE_MIN && self.socket.plain_tcp().is_some() {
            // Whatever precedes the range must be on the wire first.
            self.write_buffered().await?;
            if let Some(tcp) = self.socket.plain_tcp() {
                return sendfile_all(tcp, range).await;
            }
        }
        let mut done = 0u64;
        while done < range.len() {
            let room = CHUNK.saturating_sub(self.buf.len()) as u64;
            if room == 0 {
                self.write_buffered().await?;
                continue;
            }
            let n = room.min(range.len() - done);
            let more = match self.fetch_memory.try_reserve(n as usize) {
                Some(more) => more,
                None => {
                    // Never wait while holding: write out (and give back) what this connection
                    // holds first, or connections could each hold a chunk and wait for another.
                    self.write_buffered().await?;
                    self.fetch_memory.reserve(n as usize).await
                }
            };
            self.held.merge(more);
            range
                .slice(done, n)
                .read_into(&mut self.buf)
                .map_err(|e| io::Error::other(e.to_string()))?;
            done += n;
        }
        Ok(())
    }
}

/// Sends all of `range` to `tcp` with `sendfile(2)`, waiting whenever the socket is full.
async fn sendfile_all(tcp: &TcpStream, range: &FileRange) -> io::Result<()> {
    let mut offset = libc::off_t::try_from(range.position())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file position too large"))?;
    let mut left = usize::try_from(range.len()).unwrap_or(usize::MAX);
    let file = range.file().as_raw_fd();
    while left > 0 {
        tcp.writable().await?;
        let sent = tcp.try_io(tokio::io::Interest::WRITABLE, || {
            // SAFETY: both descriptors are open for the duration of the call (the socket is
            // borrowed, the file is held by `range`), and `offset` is a valid `off_t` that the
            // kernel advances by the bytes sent.
            let n = unsafe {
                libc::sendfile(tcp.as_raw_fd(), file, &mut offset, left.min(SENDFILE_MAX))
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            // The planned range is gone (cannot happen: segments are only ever appended to
            // while readable); the response is already announced, so the connection must end.
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file shorter than the planned fetch",
                ))
            }
            Ok(n) => left -= n.min(left),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;

    /// A log holding `batches` record batches of `value_len`-byte values, and a plan reading all
    /// of it.
    fn log_with(dir: &std::path::Path, batches: usize, value_len: usize) -> sluice_log::ReadResult {
        let mut log = sluice_log::PartitionLog::open(dir, sluice_log::LogConfig::default())
            .expect("open log");
        for i in 0..batches {
            let batch = crate::test_support::record_batch(&vec![(i % 251) as u8; value_len]);
            log.append(batch, 1).expect("append");
        }
        log.read(0, usize::MAX).expect("plan")
    }

    /// Header bytes, a large file range, a small one and trailing bytes: what a fetch looks like.
    fn response(read: &sluice_log::ReadResult) -> Response {
        let mut response = Response::from_bytes(Bytes::from_static(b"header"));
        for range in read.ranges() {
            response.push(Part::File(range.clone()));
            response.push(Part::File(range.slice(10, 100)));
        }
        response.push(Part::Bytes(Bytes::from_static(b"trailer")));
        response
    }

    fn expected(response: &Response) -> Vec<u8> {
        let body = response.to_bytes().expect("read");
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    #[tokio::test]
    async fn tls_like_sockets_get_file_ranges_in_budgeted_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let read = log_with(dir.path(), 40, 10_000);
        assert!(read.len() > 4 * CHUNK, "the range spans several chunks");
        let response = response(&read);
        let (client, server) = tokio::io::duplex(8 * 1024);
        let (_, server_write) = tokio::io::split(server);
        // A budget of one chunk: the writer must give it back after every chunk or stall.
        let budget = MemoryBudget::new(CHUNK);
        let mut writer = ResponseWriter::new(server_write, budget.clone());
        let reading = tokio::spawn(async move {
            let mut client = client;
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.expect("read");
            got
        });
        writer.write(&response).await.expect("write");
        writer.shutdown().await.expect("shutdown");
        drop(writer);
        assert_eq!(reading.await.expect("join"), expected(&response));
        assert_eq!(
            budget.available(),
            CHUNK,
            "every chunk's bytes were given back"
        );
    }

    /// Connections never hold fetch memory while waiting for more: two writers that each hold
    /// part of a tiny budget and need more than is left both finish.
    #[tokio::test]
    async fn writers_sharing_a_small_budget_do_not_deadlock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let read = log_with(dir.path(), 2, 2_000);
        let range = read.ranges()[0].clone();
        let mut response = Response::default();
        response.push(Part::File(range.slice(0, 100)));
        response.push(Part::File(range.slice(100, 1_000)));
        let budget = MemoryBudget::new(150);
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let (client, server) = tokio::io::duplex(64);
            let (_, server_write) = tokio::io::split(server);
            let mut writer = ResponseWriter::new(server_write, budget.clone());
            let response = response.clone();
            tasks.push(tokio::spawn(async move {
                writer.write(&response).await.expect("write");
                writer.shutdown().await.expect("shutdown");
            }));
            tokio::spawn(async move {
                let mut client = client;
                let mut sink = Vec::new();
                let _ = client.read_to_end(&mut sink).await;
            });
        }
        let all = futures::future::join_all(tasks);
        tokio::time::timeout(std::time::Duration::from_secs(10), all)
            .await
            .expect("both writers finish");
        assert_eq!(budget.available(), 150);
    }

    #[tokio::test]
    async fn plaintext_sockets_get_file_ranges_by_sendfile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let read = log_with(dir.path(), 40, 10_000);
        let response = response(&read);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let reading = tokio::spawn(async move {
            let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.expect("read");
            got
        });
        let (server, _) = listener.accept().await.expect("accept");
        let (_, server_write) = server.into_split();
        // sendfile draws nothing from the budget; the small ranges are copied within it.
        let budget = MemoryBudget::new(CHUNK);
        let mut writer = ResponseWriter::new(server_write, budget.clone());
        writer.write(&response).await.expect("write");
        writer.shutdown().await.expect("shutdown");
        drop(writer);
        assert_eq!(reading.await.expect("join"), expected(&response));
        assert_eq!(budget.available(), CHUNK);
    }
}
