//! Reading the individual records of a v2 batch: produce-time validation, ListOffsets by
//! timestamp and compaction. Fetch never looks at records.
//!
//! One [`RecordReader`] serves every caller. It streams from any [`BufRead`] (a batch's bytes
//! as stored, or a bounded decompressor from [`crate::codec`]), checks each record's framing the
//! way Kafka's `DefaultRecord` reader does (lengths that add up, no null header keys, nothing
//! trailing), and copies out only what a caller asks for: the key, for compaction and compacted
//! topics. Value and header bytes are skipped, never buffered.

use std::io::{self, BufRead};

use bytes::{BufMut, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::batch::BatchHeader;
use crate::codec;
use crate::{CleanupPolicy, LogConfig, LogError};

/// The framing of one record, as read by [`RecordReader::next_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordMeta {
    /// Position of the record in its batch (0-based).
    pub(crate) index: i32,
    /// Offset relative to the batch base offset.
    pub(crate) offset_delta: i32,
    /// Timestamp relative to the batch base timestamp.
    pub(crate) timestamp_delta: i64,
    /// The key is null.
    pub(crate) key_is_null: bool,
    /// The value is null (a tombstone).
    pub(crate) value_is_null: bool,
    /// Bytes of the record including its varint length prefix.
    pub(crate) size: usize,
}

/// Why a batch's records cannot be read.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// The source failed (decompression error or limit, see [`crate::codec::Limited::error`]).
    Input(io::Error),
    /// A record's framing is invalid (Kafka `INVALID_RECORD`).
    Malformed {
        /// Position of the record in its batch.
        index: i32,
        /// What is wrong with it.
        reason: String,
    },
}

impl WalkError {
    /// The log error for this failure, with `input` turning source failures into errors.
    pub(crate) fn into_log_error(self, input: impl FnOnce(io::Error) -> LogError) -> LogError {
        match self {
            WalkError::Input(e) => input(e),
            WalkError::Malformed { index, reason } => LogError::InvalidRecord {
                reason: format!("record {index} of the batch is malformed: {reason}"),
                record_errors: vec![(index, reason)],
            },
        }
    }
}

/// Streams the records of one batch payload.
pub(crate) struct RecordReader<R> {
    input: R,
    count: i32,
    next_index: i32,
    /// Bytes still allowed in the current record's body.
    body_left: usize,
    want_key: bool,
    /// Offset deltas must be 0, 1, 2, ... (a batch as produced; compaction leaves gaps).
    sequential: bool,
    key: Vec<u8>,
}

impl<R: BufRead> RecordReader<R> {
    /// Reads the `count` records of `input`.
    pub(crate) fn new(input: R, count: i32) -> Self {
        RecordReader {
            input,
            count,
            next_index: 0,
            body_left: 0,
            want_key: false,
            sequential: false,
            key: Vec::new(),
        }
    }

    /// Copies each record's key out (see [`RecordReader::key`]).
    pub(crate) fn with_keys(mut self) -> Self {
        self.want_key = true;
        self
    }

    /// With `produced`, requires the offset deltas of a batch as a client sends it: 0, 1, 2, ...
    /// (a stored batch may have gaps, which compaction leaves).
    pub(crate) fn produced(mut self, produced: bool) -> Self {
        self.sequential = produced;
        self
    }

    /// The key of the record last returned (empty when null or not wanted).
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    /// The underlying source.
    pub(crate) fn input(&self) -> &R {
        &self.input
    }

    /// The next record, or `None` after the last one, which also checks that nothing trails it.
    pub(crate) fn next_record(&mut self) -> Result<Option<RecordMeta>, WalkError> {
        let index = self.next_index;
        if index >= self.count {
            return match self.input.fill_buf() {
                Ok([]) => Ok(None),
                Ok(_) => Err(malformed(
                    index,
                    "bytes after the last of the batch's declared records".into(),
                )),
                Err(e) => Err(WalkError::Input(e)),
            };
        }
        self.next_index += 1;
        self.read_record(index).map(Some).map_err(|e| {
            match e.get_ref().and_then(|r| r.downcast_ref::<Malformed>()) {
                Some(Malformed(reason)) => malformed(index, reason.clone()),
                None => WalkError::Input(e),
            }
        })
    }

    fn read_record(&mut self, index: i32) -> io::Result<RecordMeta> {
        self.body_left = usize::MAX;
        let (len, prefix) = self.varint()?;
        let len = usize::try_from(len).map_err(|_| invalid(format!("negative length {len}")))?;
        self.body_left = len;
        self.byte()?; // attributes: unused in v2
        let (timestamp_delta, _) = self.varlong()?;
        let (offset_delta, _) = self.varint()?;
        if self.sequential && offset_delta != index {
            return Err(invalid(format!(
                "offset delta {offset_delta} where {index} was expected"
            )));
        }
        let key_len = self.length("key")?;
        self.key.clear();
        if let Some(n) = key_len {
            if self.want_key {
                self.copy_key(n)?;
            } else {
                self.skip(n)?;
            }
        }
        let value_len = self.length("value")?;
        if let Some(n) = value_len {
            self.skip(n)?;
        }
        let (headers, _) = self.varint()?;
        if headers < 0 {
            return Err(invalid(format!("negative header count {headers}")));
        }
        for _ in 0..headers {
            let Some(n) = self.length("header key")? else {
                return Err(invalid("null header key".into()));
            };
            self.skip(n)?;
            if let Some(n) = self.length("header value")? {
                self.skip(n)?;
            }
        }
        if self.body_left != 0 {
            return Err(invalid(format!(
                "declares {len} bytes but its fields take {}",
                len - self.body_left
            )));
        }
        Ok(RecordMeta {
            index,
            offset_delta,
            timestamp_delta,
            key_is_null: key_len.is_none(),
            value_is_null: value_len.is_none(),
            size: prefix + len,
        })
    }

    /// Takes `n` bytes of the current record's body from the budget.
    fn charge(&mut self, n: usize) -> io::Result<()> {
        self.body_left = self
            .body_left
            .checked_sub(n)
            .ok_or_else(|| invalid("fields run past the record's declared length".into()))?;
        Ok(())
    }

    fn byte(&mut self) -> io::Result<u8> {
        self.charge(1)?;
        let b = *self.input.fill_buf()?.first().ok_or_else(past_end)?;
        self.input.consume(1);
        Ok(b)
    }

    /// A zigzag varlong and the bytes it took.
    fn varlong(&mut self) -> io::Result<(i64, usize)> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok((((value >> 1) as i64) ^ -((value & 1) as i64), i + 1));
            }
        }
        Err(invalid("varint longer than 10 bytes".into()))
    }

    fn varint(&mut self) -> io::Result<(i32, usize)> {
        let (v, n) = self.varlong()?;
        let v = i32::try_from(v).map_err(|_| invalid(format!("varint {v} out of range")))?;
        Ok((v, n))
    }

    /// A nullable length: `None` for -1.
    fn length(&mut self, what: &str) -> io::Result<Option<usize>> {
        match self.varint()?.0 {
            -1 => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| invalid(format!("{what} length {n}"))),
        }
    }

    fn skip(&mut self, mut n: usize) -> io::Result<()> {
        self.charge(n)?;
        while n > 0 {
            let available = self.input.fill_buf()?.len();
            if available == 0 {
                return Err(past_end());
            }
            let step = available.min(n);
            self.input.consume(step);
            n -= step;
        }
        Ok(())
    }

    fn copy_key(&mut self, mut n: usize) -> io::Result<()> {
        self.charge(n)?;
        while n > 0 {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Err(past_end());
            }
            let step = buf.len().min(n);
            self.key.extend_from_slice(&buf[..step]);
            self.input.consume(step);
            n -= step;
        }
        Ok(())
    }
}

/// A framing problem found by the reader itself (as opposed to one of its source).
#[derive(Debug)]
struct Malformed(String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Malformed {}

fn malformed(index: i32, reason: String) -> WalkError {
    WalkError::Malformed { index, reason }
}

fn invalid(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Malformed(reason))
}

fn past_end() -> io::Error {
    invalid("runs past the end of the batch".into())
}

/// Reads every record of `batch` through `visit`, streaming and bounded by
/// `max_uncompressed_bytes`; the uncompressed fast path reads the stored bytes in place.
/// `produced` checks the stricter framing of a batch as a client sends it.
pub(crate) fn for_each_record(
    batch: &[u8],
    header: &BatchHeader,
    max_uncompressed_bytes: u64,
    produced: bool,
    mut visit: impl FnMut(&RecordMeta),
) -> Result<(), LogError> {
    fn drain<R: BufRead>(
        reader: &mut RecordReader<R>,
        visit: &mut impl FnMut(&RecordMeta),
    ) -> Result<(), WalkError> {
        while let Some(meta) = reader.next_record()? {
            visit(&meta);
        }
        Ok(())
    }
    if header.codec() == 0 {
        let payload = batch.get(crate::batch::HEADER_SIZE..).unwrap_or_default();
        let mut reader = RecordReader::new(payload, header.record_count).produced(produced);
        return drain(&mut reader, &mut visit)
            .map_err(|e| e.into_log_error(|io| LogError::CorruptBatch(io.to_string())));
    }
    let input = codec::payload_reader(batch, header, max_uncompressed_bytes)?;
    let mut reader = RecordReader::new(input, header.record_count).produced(produced);
    drain(&mut reader, &mut visit).map_err(|e| e.into_log_error(|io| reader.input().error(io)))
}

/// Kafka's log validation of one produced batch's records: framing (see [`RecordReader`]),
/// decompression within `max_uncompressed_batch_bytes`, and a key on every record of a
/// compacted topic. Keyless records are all named (KIP-467), not just the first.
pub(crate) fn validate_records(
    batch: &[u8],
    header: &BatchHeader,
    config: &LogConfig,
) -> Result<(), LogError> {
    let compacted = config.cleanup_policy != CleanupPolicy::Delete;
    let mut keyless = Vec::new();
    for_each_record(
        batch,
        header,
        config.max_uncompressed_batch_bytes,
        true,
        |meta| {
            if compacted && meta.key_is_null {
                keyless.push(meta.index);
            }
        },
    )?;
    if keyless.is_empty() {
        return Ok(());
    }
    let reason = "compacted topic cannot accept a record without a key";
    Err(LogError::InvalidRecord {
        reason: format!(
            "{reason}: {} of the batch's {} records have none",
            keyless.len(),
            header.record_count
        ),
        record_errors: keyless
            .into_iter()
            .map(|i| (i, reason.to_owned()))
            .collect(),
    })
}

/// Offset and timestamp of the first record of `batch` at or after `min_offset` whose timestamp
/// satisfies `pred`. For `LogAppendTime` batches every record carries the batch max timestamp.
pub(crate) fn find_record(
    batch: &[u8],
    header: &BatchHeader,
    max_uncompressed_bytes: u64,
    min_offset: i64,
    pred: impl Fn(i64) -> bool,
) -> Result<Option<(i64, i64)>, LogError> {
    let mut found = None;
    for_each_record(batch, header, max_uncompressed_bytes, false, |r| {
        let offset = header.base_offset + r.offset_delta as i64;
        let ts = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp + r.timestamp_delta
        };
        if found.is_none() && offset >= min_offset && pred(ts) {
            found = Some((offset, ts));
        }
    })?;
    Ok(found)
}

fn compress_with<C: Compressor<BytesMut>>(raw: &[u8], out: &mut BytesMut) -> Result<(), LogError> {
    C::compress(out, |b| {
        b.put_slice(raw);
        Ok(())
    })
    .map_err(|e| LogError::CorruptBatch(format!("cannot compress records: {e:#}")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::check_batch;
    use crate::batch::test_util::batch_with;
    use crate::codec::decompress_to_vec;
    use kafka_protocol::records::Compression;

    fn records_of(payload: &[u8], count: i32) -> Result<Vec<(RecordMeta, Vec<u8>)>, WalkError> {
        let mut reader = RecordReader::new(payload, count).with_keys().produced(true);
        let mut out = Vec::new();
        while let Some(meta) = reader.next_record()? {
            out.push((meta, reader.key().to_vec()));
        }
        Ok(out)
    }

    #[test]
    fn reads_records_of_every_codec() {
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
            let payload = decompress_to_vec(&b, &h, 1 << 20).unwrap();
            let recs = records_of(&payload, h.record_count).unwrap();
            assert_eq!(recs.len(), 3);
            assert_eq!(recs[0].1, b"a");
            assert!(recs[1].0.value_is_null);
            assert!(recs[2].0.key_is_null);
            assert_eq!(recs[2].0.offset_delta, 2);
            assert_eq!(h.base_timestamp + recs[1].0.timestamp_delta, 20);
            assert_eq!(recs.iter().map(|r| r.0.size).sum::<usize>(), payload.len());
            let mut out = BytesMut::new();
            compress_payload(h.codec(), &payload, &mut out).unwrap();
        }
    }

    #[test]
    fn garbage_and_lying_lengths_are_malformed_not_panics() {
        assert!(records_of(&[0xff; 12], 3).is_err());
        assert!(matches!(
            records_of(&[], 1),
            Err(WalkError::Malformed { index: 0, .. })
        ));
        let b = batch_with(
            &[(Some(b"k".to_vec()), Some(b"v".to_vec()), 1)],
            -1,
            -1,
            -1,
            Compression::None,
        );
        let payload = b[crate::batch::HEADER_SIZE..].to_vec();
        // A record whose length claims one byte more than its fields take.
        let mut longer = payload.clone();
        longer[0] += 2; // zigzag: +1
        longer.push(0);
        assert!(matches!(
            records_of(&longer, 1),
            Err(WalkError::Malformed { index: 0, .. })
        ));
        // Trailing bytes after the declared records.
        let mut trailing = payload.clone();
        trailing.push(0);
        assert!(records_of(&trailing, 1).is_err());
        // Fewer records than declared.
        assert!(records_of(&payload, 2).is_err());
    }

    /// A batch header for `payload` compressed with `codec`, as if parsed from the wire.
    fn header_for(codec: i16, count: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: codec,
            last_offset_delta: count.max(1) - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: count,
        }
    }

    fn with_header(payload: &[u8]) -> Vec<u8> {
        let mut batch = vec![0u8; crate::batch::HEADER_SIZE];
        batch.extend_from_slice(payload);
        batch
    }

    #[test]
    fn decompression_bombs_stop_at_the_limit() {
        // One record whose value is 8 MiB of zeros: a few KB compressed.
        let value_len = 8usize << 20;
        let mut record = Vec::new();
        let mut body = vec![0u8, 0, 0, 1]; // attributes, ts delta 0, offset delta 0, key null (-1)
        let zigzag = |mut v: u64, out: &mut Vec<u8>| {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        };
        zigzag((value_len as u64) << 1, &mut body);
        body.resize(body.len() + value_len, 0);
        body.push(0); // no headers
        zigzag((body.len() as u64) << 1, &mut record);
        record.extend_from_slice(&body);
        for codec in 1..=4i16 {
            let mut compressed = BytesMut::new();
            compress_payload(codec, &record, &mut compressed).unwrap();
            assert!(compressed.len() < record.len() / 10, "codec {codec}");
            let batch = with_header(&compressed);
            let header = header_for(codec, 1);
            let limited = for_each_record(&batch, &header, 1 << 20, true, |_| {});
            assert!(
                matches!(limited, Err(LogError::UncompressedTooLarge { limit }) if limit == 1 << 20),
                "codec {codec}: {limited:?}"
            );
            let mut seen = 0;
            for_each_record(&batch, &header, 64 << 20, true, |_| seen += 1).unwrap();
            assert_eq!(seen, 1, "codec {codec}");
        }
    }

    #[test]
    fn a_raw_snappy_block_claiming_a_gigabyte_allocates_nothing() {
        // Raw snappy starts with the uncompressed length as a varint: 1 GiB here, then garbage.
        let payload = [0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x01, 0x02];
        let batch = with_header(&payload);
        let result = for_each_record(&batch, &header_for(2, 1), 64 << 20, true, |_| {});
        assert!(
            matches!(result, Err(LogError::UncompressedTooLarge { .. })),
            "{result:?}"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_payloads_of_every_codec_never_panic(
            codec in 0i16..8,
            count in -1i32..5,
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
        ) {
            let batch = with_header(&payload);
            let _ = for_each_record(&batch, &header_for(codec, count), 1 << 16, true, |_| {});
            let _ = crate::codec::decompress_to_vec(&batch, &header_for(codec, count), 1 << 16);
        }

        #[test]
        fn mutated_compressed_batches_never_panic(
            codec in 0i16..5,
            pos in 0usize..4096,
            val in proptest::num::u8::ANY,
            cut in 0usize..4096,
        ) {
            let records: Vec<_> = (0..20u8)
                .map(|i| (Some(vec![i; 3]), Some(vec![i; 50]), i64::from(i)))
                .collect();
            let compression = match codec {
                0 => Compression::None,
                1 => Compression::Gzip,
                2 => Compression::Snappy,
                3 => Compression::Lz4,
                _ => Compression::Zstd,
            };
            let mut b = batch_with(&records, -1, -1, -1, compression).to_vec();
            let header = check_batch(&b).unwrap();
            let p = crate::batch::HEADER_SIZE + pos % (b.len() - crate::batch::HEADER_SIZE);
            b[p] = val;
            b.truncate(crate::batch::HEADER_SIZE + cut % (b.len() - crate::batch::HEADER_SIZE + 1));
            let _ = for_each_record(&b, &header, 1 << 16, true, |_| {});
        }
    }
}
