//! The logical replication stream (CopyBoth mode): WAL data and keepalives from the server,
//! standby status updates (how far the client has durably taken changes) to it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use super::conn::PgConnection;
use super::wire::{self, Reader};
use super::{Lsn, PgError};

/// Seconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_SECS: u64 = 946_684_800;

/// One message of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplicationMessage {
    /// WAL data: one pgoutput message starting at `start`.
    XLogData {
        /// WAL position of the data.
        start: Lsn,
        /// The server's current end of WAL.
        end: Lsn,
        /// The pgoutput message.
        data: Bytes,
    },
    /// The server is alive; `reply` asks for a status update now.
    Keepalive {
        /// The server's current end of WAL.
        end: Lsn,
        /// Whether the server wants an answer at once.
        reply: bool,
    },
}

/// A connection streaming logical changes.
pub(crate) struct ReplicationStream {
    conn: PgConnection,
}

impl ReplicationStream {
    pub(super) fn new(conn: PgConnection) -> Self {
        Self { conn }
    }

    /// The next message. Cancel-safe.
    pub(crate) async fn recv(&mut self) -> Result<ReplicationMessage, PgError> {
        loop {
            let msg = self.conn.read_message().await?;
            match msg.tag {
                b'd' => return parse_copy_data(msg.body),
                b'E' => return Err(PgError::Server(wire::parse_error(msg.body)?)),
                b'c' => {
                    return Err(PgError::Io(
                        "the server ended the replication stream".into(),
                    ))
                }
                _ => {}
            }
        }
    }

    /// Tells the server that everything up to `flushed` is durable elsewhere, so it may
    /// release the WAL before it (the slot's `confirmed_flush_lsn`).
    pub(crate) async fn send_status(&mut self, flushed: Lsn, reply: bool) -> Result<(), PgError> {
        let mut out = BytesMut::new();
        wire::put_message(&mut out, b'd', |b| {
            b.put_u8(b'r');
            b.put_u64(flushed.0); // written
            b.put_u64(flushed.0); // flushed
            b.put_u64(flushed.0); // applied
            b.put_i64(pg_now_micros());
            b.put_u8(u8::from(reply));
        });
        self.conn.write(&out).await
    }

    /// Ends the stream and closes the connection.
    pub(crate) async fn close(self) {
        self.conn.close().await;
    }
}

fn parse_copy_data(body: Bytes) -> Result<ReplicationMessage, PgError> {
    let mut r = Reader::new(body);
    match r.u8("replication message kind")? {
        b'w' => {
            let start = Lsn(r.u64("WAL start")?);
            let end = Lsn(r.u64("WAL end")?);
            let _clock = r.i64("server clock")?;
            Ok(ReplicationMessage::XLogData {
                start,
                end,
                data: r.rest(),
            })
        }
        b'k' => {
            let end = Lsn(r.u64("WAL end")?);
            let _clock = r.i64("server clock")?;
            let reply = r.u8("reply flag")? == 1;
            Ok(ReplicationMessage::Keepalive { end, reply })
        }
        other => Err(PgError::Protocol(format!(
            "unknown replication message {:?}",
            other as char
        ))),
    }
}

/// Microseconds since PostgreSQL's epoch.
fn pg_now_micros() -> i64 {
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let since_pg = since_unix.saturating_sub(Duration::from_secs(PG_EPOCH_OFFSET_SECS));
    i64::try_from(since_pg.as_micros()).unwrap_or(i64::MAX)
}

/// Converts a pgoutput timestamp (µs since 2000-01-01) to µs since the Unix epoch.
pub(crate) fn pg_micros_to_unix_micros(micros: i64) -> i64 {
    micros.saturating_add((PG_EPOCH_OFFSET_SECS as i64) * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_keepalive_and_data() {
        let mut b = BytesMut::new();
        b.put_u8(b'k');
        b.put_u64(42);
        b.put_i64(0);
        b.put_u8(1);
        assert_eq!(
            parse_copy_data(b.freeze()).unwrap(),
            ReplicationMessage::Keepalive {
                end: Lsn(42),
                reply: true
            }
        );
        let mut b = BytesMut::new();
        b.put_u8(b'w');
        b.put_u64(1);
        b.put_u64(2);
        b.put_i64(0);
        b.put_slice(b"B...");
        let ReplicationMessage::XLogData { data, .. } = parse_copy_data(b.freeze()).unwrap() else {
            panic!("not data")
        };
        assert_eq!(&data[..], b"B...");
    }

    #[test]
    fn converts_pg_timestamps() {
        assert_eq!(pg_micros_to_unix_micros(0), 946_684_800_000_000);
        assert_eq!(pg_micros_to_unix_micros(1_500), 946_684_800_001_500);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_copy_data(Bytes::from(bytes));
        }
    }
}
