//! One connection to PostgreSQL: start-up, authentication (trust, password, MD5,
//! SCRAM-SHA-256), the simple query protocol, and the switch into a logical replication
//! stream.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use md5::{Digest, Md5};
use sluice_sasl::{ScramClient, ScramMechanism};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::replication::ReplicationStream;
use super::tls::PgStream;
use super::wire::{self, Column, RawMessage};
use super::{PgConfig, PgError};

/// Most bytes one query's results may hold in memory; snapshots read through a cursor in
/// batches well below it.
const MAX_RESULT_BYTES: usize = 512 << 20;

/// The rows a statement returned.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueryResult {
    /// Result columns (empty for statements that return none).
    pub(crate) columns: Vec<Column>,
    /// Rows of text values; `None` is SQL NULL.
    pub(crate) rows: Vec<Vec<Option<Bytes>>>,
    /// The command tag, e.g. `SELECT 3`.
    pub(crate) tag: String,
}

impl QueryResult {
    /// The text of row `row`, column `col`, when present and not NULL.
    pub(crate) fn text(&self, row: usize, col: usize) -> Option<&str> {
        self.rows
            .get(row)?
            .get(col)?
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
    }
}

/// A connection in the ready state.
pub(crate) struct PgConnection {
    stream: PgStream,
    buf: BytesMut,
}

impl PgConnection {
    /// Connects and authenticates; with `replication` the connection may also run replication
    /// commands (`replication=database`).
    pub(crate) async fn connect(config: &PgConfig, replication: bool) -> Result<Self, PgError> {
        let addr = format!("{}:{}", config.host, config.port);
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| PgError::Io(format!("connecting to {addr} timed out")))?
            .map_err(|e| PgError::Io(format!("cannot connect to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let stream = tokio::time::timeout(
            config.connect_timeout,
            config.tls.negotiate(stream, &config.host),
        )
        .await
        .map_err(|_| PgError::Io(format!("setting up TLS with {addr} timed out")))??;
        let mut conn = Self {
            stream,
            buf: BytesMut::with_capacity(64 << 10),
        };
        let mut params = vec![
            ("user", config.user.as_str()),
            ("database", config.dbname.as_str()),
            ("application_name", config.application_name.as_str()),
            ("client_encoding", "UTF8"),
            // Text values in the formats the type conversions parse.
            ("DateStyle", "ISO, YMD"),
            ("TimeZone", "UTC"),
            ("IntervalStyle", "iso_8601"),
            ("extra_float_digits", "3"),
            ("bytea_output", "hex"),
        ];
        if replication {
            params.push(("replication", "database"));
        }
        conn.write(&wire::startup_message(&params)).await?;
        tokio::time::timeout(config.connect_timeout, conn.authenticate(config))
            .await
            .map_err(|_| PgError::Io(format!("logging in to {addr} timed out")))??;
        Ok(conn)
    }

    async fn authenticate(&mut self, config: &PgConfig) -> Result<(), PgError> {
        let mut scram: Option<ScramClient> = None;
        loop {
            let msg = self.read_message().await?;
            match msg.tag {
                b'R' => {
                    let mut r = wire::Reader::new(msg.body);
                    match r.i32("authentication code")? {
                        0 => {}
                        3 => {
                            let password = config.password()?;
                            self.send_password(password.as_bytes()).await?;
                        }
                        5 => {
                            let salt = r.bytes(4, "MD5 salt")?;
                            let password = config.password()?;
                            self.send_password(md5_password(&config.user, password, &salt).as_bytes())
                                .await?;
                        }
                        10 => {
                            let mut mechanisms = Vec::new();
                            while r.remaining() > 1 {
                                mechanisms.push(r.cstr("SASL mechanism")?);
                            }
                            if !mechanisms.iter().any(|m| m == "SCRAM-SHA-256") {
                                return Err(PgError::Auth(format!(
                                    "the server offers SASL mechanisms {mechanisms:?}; only SCRAM-SHA-256 is supported"
                                )));
                            }
                            let password = config.password()?;
                            let (client, first) =
                                ScramClient::start(ScramMechanism::Sha256, &config.user, password)
                                    .map_err(|e| PgError::Auth(e.to_string()))?;
                            scram = Some(client);
                            let mut out = BytesMut::new();
                            wire::put_message(&mut out, b'p', |b| {
                                wire::put_cstr(b, "SCRAM-SHA-256");
                                b.put_i32(first.len() as i32);
                                b.put_slice(&first);
                            });
                            self.write(&out).await?;
                        }
                        11 => {
                            let client = scram.as_mut().ok_or_else(|| {
                                PgError::Protocol("SASL continue before SASL start".into())
                            })?;
                            let last = client
                                .server_first(&r.rest())
                                .map_err(|e| PgError::Auth(format!("SCRAM: {e}")))?;
                            let mut out = BytesMut::new();
                            wire::put_message(&mut out, b'p', |b| b.put_slice(&last));
                            self.write(&out).await?;
                        }
                        12 => {
                            let client = scram.as_ref().ok_or_else(|| {
                                PgError::Protocol("SASL final before SASL start".into())
                            })?;
                            client
                                .server_final(&r.rest())
                                .map_err(|e| PgError::Auth(format!("SCRAM: {e}")))?;
                        }
                        other => {
                            return Err(PgError::Auth(format!(
                                "the server asks for authentication method {other}, which is not supported (use scram-sha-256, md5, password or trust)"
                            )))
                        }
                    }
                }
                b'E' => return Err(PgError::Server(wire::parse_error(msg.body)?)),
                b'Z' => return Ok(()),
                // ParameterStatus, BackendKeyData, NoticeResponse.
                _ => {}
            }
        }
    }

    async fn send_password(&mut self, password: &[u8]) -> Result<(), PgError> {
        let mut out = BytesMut::new();
        wire::put_message(&mut out, b'p', |b| {
            b.put_slice(password);
            b.put_u8(0);
        });
        self.write(&out).await
    }

    /// Writes `bytes` to the server. The flush matters over TLS: the TLS stream may keep
    /// encrypted bytes buffered when the socket is full, and nothing else would send them
    /// while this side waits for an answer.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), PgError> {
        let io = |e: std::io::Error| PgError::Io(format!("writing to PostgreSQL: {e}"));
        self.stream.write_all(bytes).await.map_err(io)?;
        self.stream.flush().await.map_err(io)
    }

    /// Reads the next message. Cancel-safe: bytes read stay in the buffer.
    pub(crate) async fn read_message(&mut self) -> Result<RawMessage, PgError> {
        loop {
            if let Some(msg) = wire::split_message(&mut self.buf)? {
                return Ok(msg);
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| PgError::Io(format!("reading from PostgreSQL: {e}")))?;
            if n == 0 {
                return Err(PgError::Io("PostgreSQL closed the connection".into()));
            }
        }
    }

    /// Runs `sql` (one or more statements) with the simple query protocol and returns each
    /// statement's result; the first server error fails the call once the server is ready
    /// again.
    pub(crate) async fn query(&mut self, sql: &str) -> Result<Vec<QueryResult>, PgError> {
        let mut out = BytesMut::new();
        wire::put_message(&mut out, b'Q', |b| wire::put_cstr(b, sql));
        self.write(&out).await?;
        let mut results = Vec::new();
        let mut current = QueryResult::default();
        let mut error = None;
        let mut bytes = 0usize;
        loop {
            let msg = self.read_message().await?;
            match msg.tag {
                b'T' => current.columns = wire::parse_row_description(msg.body)?,
                b'D' => {
                    bytes += msg.body.len();
                    if bytes > MAX_RESULT_BYTES {
                        error.get_or_insert(PgError::Protocol(format!(
                            "the result of {sql:?} is larger than {MAX_RESULT_BYTES} bytes"
                        )));
                    } else if error.is_none() {
                        current.rows.push(wire::parse_data_row(msg.body)?);
                    }
                }
                b'C' => {
                    current.tag = wire::Reader::new(msg.body).cstr("command tag")?;
                    results.push(std::mem::take(&mut current));
                }
                b'I' => results.push(std::mem::take(&mut current)),
                b'E' => {
                    error.get_or_insert(PgError::Server(wire::parse_error(msg.body)?));
                }
                b'Z' => return error.map_or(Ok(results), Err),
                // Replication commands in a query may answer with COPY; a plain query never.
                b'G' | b'H' | b'W' => {
                    return Err(PgError::Protocol(format!(
                        "{sql:?} started a COPY, which query() does not handle"
                    )))
                }
                _ => {}
            }
        }
    }

    /// Runs `sql` and returns its last result.
    pub(crate) async fn query_one(&mut self, sql: &str) -> Result<QueryResult, PgError> {
        Ok(self.query(sql).await?.pop().unwrap_or_default())
    }

    /// Sends `START_REPLICATION …` and turns the connection into its stream of changes.
    pub(crate) async fn start_replication(
        mut self,
        command: &str,
    ) -> Result<ReplicationStream, PgError> {
        let mut out = BytesMut::new();
        wire::put_message(&mut out, b'Q', |b| wire::put_cstr(b, command));
        self.write(&out).await?;
        loop {
            let msg = self.read_message().await?;
            match msg.tag {
                b'W' => return Ok(ReplicationStream::new(self)),
                b'E' => {
                    let error = wire::parse_error(msg.body)?;
                    // Drain to ReadyForQuery is pointless: the caller drops the connection.
                    return Err(PgError::Server(error));
                }
                _ => {}
            }
        }
    }

    /// Closes the connection politely.
    pub(crate) async fn close(mut self) {
        let mut out = BytesMut::new();
        wire::put_message(&mut out, b'X', |_| {});
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            self.write(&out).await?;
            // TLS: close_notify, so the server sees a clean end rather than a truncation.
            self.stream
                .shutdown()
                .await
                .map_err(|e| PgError::Io(e.to_string()))
        })
        .await;
    }
}

/// `md5` || md5(md5(password || user) || salt), the MD5 method's answer.
fn md5_password(user: &str, password: &str, salt: &[u8]) -> String {
    let inner = hex(&Md5::digest(format!("{password}{user}")));
    let mut outer = Md5::new();
    outer.update(inner.as_bytes());
    outer.update(salt);
    format!("md5{}", hex(&outer.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_answer_matches_postgres() {
        // Python: 'md5' + md5(md5(b'secretalice').hexdigest().encode() + b'salt').hexdigest()
        assert_eq!(
            md5_password("alice", "secret", b"salt"),
            "md5986e2194384c07f4fd1df4b1351b3e68"
        );
    }
}
