//! Building blocks of Kafka's internal record formats (`__consumer_offsets`,
//! `__transaction_state`): big-endian fixed fields, classic and compact strings, flexible
//! versions' tagged fields, and the key-to-partition hash.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a record of an internal state topic could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordFormatError {
    /// The buffer ended before the field named here.
    #[error("truncated internal record: missing {0}")]
    Truncated(&'static str),
    /// A string field is not UTF-8.
    #[error("internal record has a non-UTF-8 {0}")]
    InvalidUtf8(&'static str),
    /// A length prefix is negative where null is not allowed, or absurd.
    #[error("internal record has an invalid length for {0}")]
    InvalidLength(&'static str),
    /// The key or value version is not one Kafka defines.
    #[error("unknown internal record {kind} version {version}")]
    UnknownVersion {
        /// "key" or the value type.
        kind: &'static str,
        /// The version found.
        version: i16,
    },
}

pub(crate) type Result<T> = std::result::Result<T, RecordFormatError>;

/// The state-topic partition that stores `key` (a group or transactional id), as Kafka
/// computes it:
/// `Utils.abs(group.hashCode()) % partitions` with Java's `String.hashCode`.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    let hash = java_string_hash(key);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

/// Java's `String.hashCode` (over UTF-16 code units).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// Decoding state shared by the fixed and flexible versions of a value.
pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) flexible: bool,
}

impl Reader<'_> {
    pub(crate) fn str(&mut self, field: &'static str) -> Result<String> {
        if self.flexible {
            get_compact_str(&mut self.buf, field)
        } else {
            get_str(&mut self.buf, field)
        }
    }

    pub(crate) fn nullable_str(&mut self, field: &'static str) -> Result<Option<String>> {
        if self.flexible {
            let len = get_uvarint(&mut self.buf, field)?;
            if len == 0 {
                return Ok(None);
            }
            take_str(&mut self.buf, (len - 1) as usize, field).map(Some)
        } else {
            get_nullable_str(&mut self.buf, field)
        }
    }

    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<Bytes> {
        let len = if self.flexible {
            let len = get_uvarint(&mut self.buf, field)?;
            if len == 0 {
                return Err(RecordFormatError::InvalidLength(field));
            }
            (len - 1) as usize
        } else {
            let len = get_i32(&mut self.buf, field)?;
            usize::try_from(len).map_err(|_| RecordFormatError::InvalidLength(field))?
        };
        let data = take(&mut self.buf, len, field)?;
        Ok(Bytes::copy_from_slice(data))
    }

    pub(crate) fn array_len(&mut self, field: &'static str) -> Result<usize> {
        if self.flexible {
            let len = get_uvarint(&mut self.buf, field)?;
            if len == 0 {
                return Err(RecordFormatError::InvalidLength(field));
            }
            Ok((len - 1) as usize)
        } else {
            let len = get_i32(&mut self.buf, field)?;
            usize::try_from(len).map_err(|_| RecordFormatError::InvalidLength(field))
        }
    }

    /// Skips a flexible struct's tagged fields (no-op for fixed versions).
    pub(crate) fn skip_tags(&mut self) -> Result<()> {
        if !self.flexible {
            return Ok(());
        }
        let count = get_uvarint(&mut self.buf, "tagged fields")?;
        for _ in 0..count {
            get_uvarint(&mut self.buf, "tag")?;
            let len = get_uvarint(&mut self.buf, "tag length")?;
            take(&mut self.buf, len as usize, "tag data")?;
        }
        Ok(())
    }
}

pub(crate) fn len_i16(len: usize) -> i16 {
    // Group ids, topics and metadata are bounded well below i16::MAX by the handlers.
    i16::try_from(len).unwrap_or(i16::MAX)
}

pub(crate) fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

pub(crate) fn put_str(buf: &mut BytesMut, s: &str) {
    let len = len_i16(s.len());
    buf.put_i16(len);
    buf.put_slice(&s.as_bytes()[..len as usize]);
}

pub(crate) fn put_nullable_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_i16(-1),
    }
}

pub(crate) fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(len_i32(b.len()));
    buf.put_slice(b);
}

pub(crate) fn take<'a>(buf: &mut &'a [u8], len: usize, field: &'static str) -> Result<&'a [u8]> {
    if buf.len() < len {
        return Err(RecordFormatError::Truncated(field));
    }
    let (head, tail) = buf.split_at(len);
    *buf = tail;
    Ok(head)
}

pub(crate) fn get_i16(buf: &mut &[u8], field: &'static str) -> Result<i16> {
    if buf.remaining() < 2 {
        return Err(RecordFormatError::Truncated(field));
    }
    Ok(buf.get_i16())
}

pub(crate) fn get_i32(buf: &mut &[u8], field: &'static str) -> Result<i32> {
    if buf.remaining() < 4 {
        return Err(RecordFormatError::Truncated(field));
    }
    Ok(buf.get_i32())
}

pub(crate) fn get_i64(buf: &mut &[u8], field: &'static str) -> Result<i64> {
    if buf.remaining() < 8 {
        return Err(RecordFormatError::Truncated(field));
    }
    Ok(buf.get_i64())
}

pub(crate) fn get_uvarint(buf: &mut &[u8], field: &'static str) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..35).step_by(7) {
        let byte = *buf.first().ok_or(RecordFormatError::Truncated(field))?;
        *buf = &buf[1..];
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(RecordFormatError::InvalidLength(field))
}

pub(crate) fn take_str(buf: &mut &[u8], len: usize, field: &'static str) -> Result<String> {
    let data = take(buf, len, field)?;
    std::str::from_utf8(data)
        .map(str::to_owned)
        .map_err(|_| RecordFormatError::InvalidUtf8(field))
}

pub(crate) fn get_str(buf: &mut &[u8], field: &'static str) -> Result<String> {
    get_nullable_str(buf, field)?.ok_or(RecordFormatError::InvalidLength(field))
}

pub(crate) fn get_nullable_str(buf: &mut &[u8], field: &'static str) -> Result<Option<String>> {
    let len = get_i16(buf, field)?;
    if len < 0 {
        return if len == -1 {
            Ok(None)
        } else {
            Err(RecordFormatError::InvalidLength(field))
        };
    }
    take_str(buf, len as usize, field).map(Some)
}

pub(crate) fn get_compact_str(buf: &mut &[u8], field: &'static str) -> Result<String> {
    let len = get_uvarint(buf, field)?;
    if len == 0 {
        return Err(RecordFormatError::InvalidLength(field));
    }
    take_str(buf, (len - 1) as usize, field)
}
