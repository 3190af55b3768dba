//! Reading individual records inside a v2 batch, for the few places that need them (ListOffsets
//! by timestamp and compaction). The produce/fetch path never looks at records.
//!
//! Records are parsed from their raw bytes rather than decoded into owned structs, so compaction
//! can copy a kept record verbatim (headers, duplicate header keys and all) into the rewritten
//! batch, which keeps its base offset and base timestamp so the records' deltas stay valid.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

use crate::batch::{BatchHeader, HEADER_SIZE};
use crate::LogError;

/// One record inside a (decompressed) batch payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordView<'a> {
    /// The record's full bytes, including its varint length prefix.
    pub(crate) raw: &'a [u8],
    /// Offset relative to the batch base offset.
    pub(crate) offset_delta: i32,
    /// Timestamp relative to the batch base timestamp.
    pub(crate) timestamp_delta: i64,
    /// The key, `None` for a null key.
    pub(crate) key: Option<&'a [u8]>,
    /// The value, `None` for a tombstone.
    pub(crate) value_is_null: bool,
}

fn corrupt(what: &str) -> LogError {
    LogError::CorruptBatch(format!("malformed record: {what}"))
}

/// Reads a zigzag varint (at most 10 bytes) from the front of `buf`.
fn read_varlong(buf: &mut &[u8]) -> Result<i64, LogError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some((&b, rest)) = buf.split_first() else {
            return Err(corrupt("truncated varint"));
        };
        *buf = rest;
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(corrupt("varint too long"))
}

fn read_varint(buf: &mut &[u8]) -> Result<i32, LogError> {
    let v = read_varlong(buf)?;
    i32::try_from(v).map_err(|_| corrupt("varint out of range"))
}

/// Splits `n` bytes off the front of `buf`.
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], LogError> {
    if buf.len() < n {
        return Err(corrupt("field runs past the end of the record"));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

/// Reads a varint-length-prefixed nullable byte field.
fn read_nullable<'a>(buf: &mut &'a [u8]) -> Result<Option<&'a [u8]>, LogError> {
    let len = read_varint(buf)?;
    match len {
        -1 => Ok(None),
        n if n < 0 => Err(corrupt("negative length")),
        n => take(buf, n as usize).map(Some),
    }
}

/// Parses the record at the front of `buf`, advancing past it.
fn parse_record<'a>(buf: &mut &'a [u8]) -> Result<RecordView<'a>, LogError> {
    let start = *buf;
    let len = read_varint(buf)?;
    if len < 0 {
        return Err(corrupt("negative record length"));
    }
    let mut body = take(buf, len as usize)?;
    let raw = &start[..start.len() - buf.len()];
    let _attributes = take(&mut body, 1)?;
    let timestamp_delta = read_varlong(&mut body)?;
    let offset_delta = read_varint(&mut body)?;
    let key = read_nullable(&mut body)?;
    let value = read_nullable(&mut body)?;
    Ok(RecordView {
        raw,
        offset_delta,
        timestamp_delta,
        key,
        value_is_null: value.is_none(),
    })
}

/// Parses all `count` records of a decompressed payload.
pub(crate) fn parse_records(
    mut payload: &[u8],
    count: i32,
) -> Result<Vec<RecordView<'_>>, LogError> {
    let mut out = Vec::with_capacity(count.clamp(0, 4096) as usize);
    for _ in 0..count {
        out.push(parse_record(&mut payload)?);
    }
    Ok(out)
}

fn codec_error(e: impl std::fmt::Display) -> LogError {
    LogError::CorruptBatch(format!("cannot (de)compress records: {e:#}"))
}

fn decompress_with<D: Decompressor<Bytes>>(mut data: Bytes) -> Result<Bytes, LogError> {
    D::decompress(&mut data, |b| Ok(b.copy_to_bytes(b.remaining()))).map_err(codec_error)
}

/// The records payload of a whole batch, decompressed.
pub(crate) fn decompressed_payload(batch: &[u8], header: &BatchHeader) -> Result<Bytes, LogError> {
    let payload = Bytes::copy_from_slice(batch.get(HEADER_SIZE..).unwrap_or_default());
    match header.codec() {
        0 => Ok(payload),
        1 => decompress_with::<Gzip>(payload),
        2 => decompress_with::<Snappy>(payload),
        3 => decompress_with::<Lz4>(payload),
        4 => decompress_with::<Zstd>(payload),
        c => Err(LogError::CorruptBatch(format!(
            "unknown compression codec {c}"
        ))),
    }
}

fn compress_with<C: Compressor<BytesMut>>(raw: &[u8], out: &mut BytesMut) -> Result<(), LogError> {
    C::compress(out, |b| {
        b.put_slice(raw);
        Ok(())
    })
    .map_err(codec_error)
}

/// Appends `raw` (concatenated records) to `out`, compressed with `codec`.
pub(crate) fn compress_payload(codec: i16, raw: &[u8], out: &mut BytesMut) -> Result<(), LogError> {
    match codec {
        0 => {
            out.put_slice(raw);
            Ok(())
        }
        1 => compress_with::<Gzip>(raw, out),
        2 => compress_with::<Snappy>(raw, out),
        3 => compress_with::<Lz4>(raw, out),
        4 => compress_with::<Zstd>(raw, out),
        c => Err(LogError::CorruptBatch(format!(
            "unknown compression codec {c}"
        ))),
    }
}

/// Offset and timestamp of the first record of `batch` at or after `min_offset` whose timestamp
/// satisfies `pred`. For `LogAppendTime` batches every record carries the batch max timestamp.
pub(crate) fn find_record(
    batch: &[u8],
    header: &BatchHeader,
    min_offset: i64,
    pred: impl Fn(i64) -> bool,
) -> Result<Option<(i64, i64)>, LogError> {
    let payload = decompressed_payload(batch, header)?;
    for r in parse_records(&payload, header.record_count)? {
        let offset = header.base_offset + r.offset_delta as i64;
        let ts = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp + r.timestamp_delta
        };
        if offset >= min_offset && pred(ts) {
            return Ok(Some((offset, ts)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::check_batch;
    use crate::batch::test_util::batch_with;
    use kafka_protocol::records::Compression;

    #[test]
    fn parses_records_of_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = batch_with(
                &[
                    (Some(b"a".to_vec()), Some(b"1".to_vec()), 10),
                    (Some(b"b".to_vec()), None, 20),
                    (None, Some(b"3".to_vec()), 30),
                ],
                -1,
                -1,
                -1,
                c,
            );
            let h = check_batch(&b).unwrap();
            let payload = decompressed_payload(&b, &h).unwrap();
            let recs = parse_records(&payload, h.record_count).unwrap();
            assert_eq!(recs.len(), 3);
            assert_eq!(recs[0].key, Some(&b"a"[..]));
            assert!(recs[1].value_is_null);
            assert_eq!(recs[2].key, None);
            assert_eq!(recs[2].offset_delta, 2);
            assert_eq!(h.base_timestamp + recs[1].timestamp_delta, 20);
            assert_eq!(find_record(&b, &h, 0, |t| t >= 15).unwrap(), Some((1, 20)));
            let mut out = BytesMut::new();
            let raw: Vec<u8> = recs.iter().flat_map(|r| r.raw.to_vec()).collect();
            compress_payload(h.codec(), &raw, &mut out).unwrap();
        }
    }

    #[test]
    fn garbage_payload_is_an_error_not_a_panic() {
        assert!(parse_records(&[0xff; 12], 3).is_err());
        assert!(parse_records(&[], 1).is_err());
    }
}
