//! PostgreSQL's frontend/backend protocol (version 3.0): framing of what the server sends and
//! encoding of the few messages a change-data-capture client sends. Everything here reads
//! network input, so every length is checked against the bytes present and against
//! [`MAX_MESSAGE_BYTES`] before anything is allocated.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::PgError;

/// Largest backend message accepted. A row may hold a large value (one `bytea` may be up to
/// 1 GiB in PostgreSQL), but a client that follows whatever length a peer announces can be
/// made to allocate without bound; rows beyond this are refused with a clear error.
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// One message from the server, with its type byte and body (length prefix removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawMessage {
    /// The message type, e.g. `b'D'` for DataRow.
    pub(crate) tag: u8,
    /// The body.
    pub(crate) body: Bytes,
}

/// Takes one complete message off the front of `buf`, or `None` until more bytes arrive.
pub(crate) fn split_message(buf: &mut BytesMut) -> Result<Option<RawMessage>, PgError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let tag = buf[0];
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len < 4 {
        return Err(PgError::Protocol(format!(
            "message {:?} declares length {len}",
            tag as char
        )));
    }
    if len > MAX_MESSAGE_BYTES {
        return Err(PgError::Protocol(format!(
            "message {:?} of {len} bytes is larger than the {MAX_MESSAGE_BYTES} accepted",
            tag as char
        )));
    }
    if buf.len() < 1 + len {
        buf.reserve(1 + len - buf.len());
        return Ok(None);
    }
    buf.advance(5);
    let body = buf.split_to(len - 4).freeze();
    Ok(Some(RawMessage { tag, body }))
}

/// A cursor over a message body whose reads fail, rather than panic, past the end.
pub(crate) struct Reader {
    bytes: Bytes,
}

impl Reader {
    /// Reads `bytes` from the start.
    pub(crate) fn new(bytes: Bytes) -> Self {
        Self { bytes }
    }

    fn need(&self, n: usize, what: &str) -> Result<(), PgError> {
        if self.bytes.remaining() < n {
            return Err(PgError::Protocol(format!(
                "truncated message reading {what}: {n} bytes needed, {} left",
                self.bytes.remaining()
            )));
        }
        Ok(())
    }

    /// One byte.
    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, PgError> {
        self.need(1, what)?;
        Ok(self.bytes.get_u8())
    }

    /// A big-endian i16.
    pub(crate) fn i16(&mut self, what: &str) -> Result<i16, PgError> {
        self.need(2, what)?;
        Ok(self.bytes.get_i16())
    }

    /// A big-endian i32.
    pub(crate) fn i32(&mut self, what: &str) -> Result<i32, PgError> {
        self.need(4, what)?;
        Ok(self.bytes.get_i32())
    }

    /// A big-endian u32.
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, PgError> {
        self.need(4, what)?;
        Ok(self.bytes.get_u32())
    }

    /// A big-endian i64.
    pub(crate) fn i64(&mut self, what: &str) -> Result<i64, PgError> {
        self.need(8, what)?;
        Ok(self.bytes.get_i64())
    }

    /// A big-endian u64.
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, PgError> {
        self.need(8, what)?;
        Ok(self.bytes.get_u64())
    }

    /// `n` raw bytes.
    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> Result<Bytes, PgError> {
        self.need(n, what)?;
        Ok(self.bytes.split_to(n))
    }

    /// A NUL-terminated string (lossy UTF-8: names come from the catalog in the server's
    /// encoding, which a replication client asks to be UTF-8).
    pub(crate) fn cstr(&mut self, what: &str) -> Result<String, PgError> {
        let Some(end) = self.bytes.iter().position(|&b| b == 0) else {
            return Err(PgError::Protocol(format!(
                "unterminated string reading {what}"
            )));
        };
        let s = String::from_utf8_lossy(&self.bytes[..end]).into_owned();
        self.bytes.advance(end + 1);
        Ok(s)
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.bytes)
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.remaining()
    }
}

/// The fields of an ErrorResponse or NoticeResponse that a user needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ServerError {
    /// Severity (`ERROR`, `FATAL`, …).
    pub(crate) severity: String,
    /// SQLSTATE code, e.g. `42P01`.
    pub(crate) code: String,
    /// The primary message.
    pub(crate) message: String,
    /// Detail, when the server gave one.
    pub(crate) detail: Option<String>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

/// Parses an ErrorResponse / NoticeResponse body.
pub(crate) fn parse_error(body: Bytes) -> Result<ServerError, PgError> {
    let mut r = Reader::new(body);
    let mut e = ServerError::default();
    loop {
        let field = r.u8("error field type")?;
        if field == 0 {
            return Ok(e);
        }
        let value = r.cstr("error field")?;
        match field {
            b'V' => e.severity = value,
            b'S' if e.severity.is_empty() => e.severity = value,
            b'C' => e.code = value,
            b'M' => e.message = value,
            b'D' => e.detail = Some(value),
            _ => {}
        }
    }
}

/// A result column: its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    /// Column name.
    pub(crate) name: String,
    /// Type OID.
    pub(crate) type_oid: u32,
    /// Type modifier (e.g. numeric precision/scale), -1 when none.
    pub(crate) type_modifier: i32,
}

/// Parses a RowDescription body.
pub(crate) fn parse_row_description(body: Bytes) -> Result<Vec<Column>, PgError> {
    let mut r = Reader::new(body);
    let count = r.i16("column count")?;
    let count = usize::try_from(count)
        .map_err(|_| PgError::Protocol(format!("negative column count {count}")))?;
    // Each column takes at least 19 bytes: no allocation beyond what the message holds.
    let mut columns = Vec::with_capacity(count.min(r.remaining() / 19));
    for _ in 0..count {
        let name = r.cstr("column name")?;
        let _table = r.u32("table oid")?;
        let _attnum = r.i16("attribute number")?;
        let type_oid = r.u32("type oid")?;
        let _size = r.i16("type size")?;
        let type_modifier = r.i32("type modifier")?;
        let _format = r.i16("format")?;
        columns.push(Column {
            name,
            type_oid,
            type_modifier,
        });
    }
    Ok(columns)
}

/// Parses a DataRow body into text values (`None` = SQL NULL).
pub(crate) fn parse_data_row(body: Bytes) -> Result<Vec<Option<Bytes>>, PgError> {
    let mut r = Reader::new(body);
    let count = r.i16("value count")?;
    let count = usize::try_from(count)
        .map_err(|_| PgError::Protocol(format!("negative value count {count}")))?;
    let mut values = Vec::with_capacity(count.min(r.remaining() / 4));
    for _ in 0..count {
        let len = r.i32("value length")?;
        values.push(match usize::try_from(len) {
            Ok(len) => Some(r.bytes(len, "value")?),
            Err(_) => None,
        });
    }
    Ok(values)
}

/// Appends a message with type `tag` whose body `body` writes.
pub(crate) fn put_message(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let at = out.len();
    out.put_u32(0);
    body(out);
    let len = (out.len() - at) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends a NUL-terminated string.
pub(crate) fn put_cstr(out: &mut BytesMut, s: &str) {
    out.put_slice(s.as_bytes());
    out.put_u8(0);
}

/// The StartupMessage (no type byte) with `params`.
pub(crate) fn startup_message(params: &[(&str, &str)]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u32(0);
    out.put_u32(196_608); // protocol 3.0
    for (k, v) in params {
        put_cstr(&mut out, k);
        put_cstr(&mut out, v);
    }
    out.put_u8(0);
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_split_across_reads() {
        let mut out = BytesMut::new();
        put_message(&mut out, b'Z', |b| b.put_u8(b'I'));
        let mut buf = BytesMut::from(&out[..3]);
        assert_eq!(split_message(&mut buf).unwrap(), None);
        buf.extend_from_slice(&out[3..]);
        let msg = split_message(&mut buf).unwrap().unwrap();
        assert_eq!((msg.tag, &msg.body[..]), (b'Z', &b"I"[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn refuses_absurd_lengths() {
        let mut buf = BytesMut::from(&[b'D', 0xff, 0xff, 0xff, 0xff][..]);
        assert!(split_message(&mut buf).is_err());
        let mut buf = BytesMut::from(&[b'D', 0, 0, 0, 2][..]);
        assert!(split_message(&mut buf).is_err());
    }

    #[test]
    fn parses_an_error() {
        let mut body = BytesMut::new();
        for (k, v) in [(b'S', "ERROR"), (b'C', "42P01"), (b'M', "no such table")] {
            body.put_u8(k);
            put_cstr(&mut body, v);
        }
        body.put_u8(0);
        let e = parse_error(body.freeze()).unwrap();
        assert_eq!(e.to_string(), "ERROR 42P01: no such table");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let body = Bytes::from(bytes.clone());
            let _ = parse_error(body.clone());
            let _ = parse_row_description(body.clone());
            let _ = parse_data_row(body);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = split_message(&mut buf) {}
        }
    }
}
