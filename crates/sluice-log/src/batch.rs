//! Kafka message format v2 record batch headers: parsing, validation and in-place stamping.
//!
//! Layout (big-endian): baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8
//! | crc u32 | attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64
//! | producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32 | records...
//! The CRC-32C covers everything from `attributes` to the end of the batch.

use crate::LogError;

/// Size of the fixed v2 batch header in bytes.
pub const HEADER_SIZE: usize = 61;
/// Bytes before the `batchLength` field's coverage starts (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;
/// The only message format accepted.
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

/// Attribute bits 0-2: compression codec.
pub const CODEC_MASK: i16 = 0x07;
/// Attribute bit 3: timestamps are `LogAppendTime`.
pub const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
/// Attribute bit 4: the batch belongs to a transaction.
pub const TRANSACTIONAL_BIT: i16 = 1 << 4;
/// Attribute bit 5: the batch holds control records (transaction markers).
pub const CONTROL_BIT: i16 = 1 << 5;

/// Parsed fixed header of a v2 record batch (61 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record (assigned by the log).
    pub base_offset: i64,
    /// Bytes after the `batchLength` field.
    pub batch_length: i32,
    /// Leader epoch stamped by the broker (0 on a single node).
    pub partition_leader_epoch: i32,
    /// Message format version; always 2 once validated.
    pub magic: i8,
    /// Stored CRC-32C of the batch from `attributes` on.
    pub crc: u32,
    /// Codec, timestamp type, transactional and control flags.
    pub attributes: i16,
    /// `lastOffset - baseOffset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the append time for `LogAppendTime`).
    pub max_timestamp: i64,
    /// Idempotent producer id, -1 if none.
    pub producer_id: i64,
    /// Idempotent producer epoch.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

impl BatchHeader {
    /// Parses the fixed header at the start of `buf`, checking only the magic and that the
    /// declared length is plausible (not that the whole batch is present).
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, LogError> {
        if buf.len() <= MAGIC_AT {
            return Err(LogError::CorruptBatch(format!(
                "record batch truncated: {} bytes is shorter than the batch header",
                buf.len()
            )));
        }
        let magic = buf[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(LogError::UnsupportedMagic(magic));
        }
        if buf.len() < HEADER_SIZE {
            return Err(LogError::CorruptBatch(format!(
                "record batch truncated: {} bytes is shorter than the {HEADER_SIZE}-byte header",
                buf.len()
            )));
        }
        let h = BatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET_AT),
            batch_length: be_i32(buf, BATCH_LENGTH_AT),
            partition_leader_epoch: be_i32(buf, LEADER_EPOCH_AT),
            magic,
            crc: be_i32(buf, CRC_AT) as u32,
            attributes: be_i16(buf, ATTRIBUTES_AT),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_AT),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP_AT),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_AT),
            producer_id: be_i64(buf, PRODUCER_ID_AT),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_AT),
            base_sequence: be_i32(buf, BASE_SEQUENCE_AT),
            record_count: be_i32(buf, RECORD_COUNT_AT),
        };
        if (h.batch_length as i64) < (HEADER_SIZE - LOG_OVERHEAD) as i64 {
            return Err(LogError::CorruptBatch(format!(
                "record batch length {} is smaller than the batch header",
                h.batch_length
            )));
        }
        if h.record_count < 0 {
            return Err(LogError::CorruptBatch(format!(
                "negative record count {}",
                h.record_count
            )));
        }
        if h.last_offset_delta < 0 {
            return Err(LogError::CorruptBatch(format!(
                "negative last offset delta {}",
                h.last_offset_delta
            )));
        }
        Ok(h)
    }

    /// Total size of the batch on disk, including the 12-byte offset/length prefix.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the batch's last record (or the last offset it once covered, after compaction).
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Sequence number of the batch's last record (wrapping like Kafka's).
    pub fn last_sequence(&self) -> i32 {
        self.base_sequence.wrapping_add(self.last_offset_delta)
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn codec(&self) -> i16 {
        self.attributes & CODEC_MASK
    }

    /// True if the batch carries broker-assigned `LogAppendTime` timestamps.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// True for transaction marker batches.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// True when the batch belongs to a transaction (data or marker).
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// True when the batch comes from an idempotent producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Computes the CRC-32C a batch should carry (`batch` is the whole batch).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_AT..).unwrap_or_default())
}

/// Parses the header of the batch at the start of `buf` and checks that the whole batch is
/// present and its CRC matches. Used both on produce and by recovery.
pub fn check_batch(buf: &[u8]) -> Result<BatchHeader, LogError> {
    let h = BatchHeader::parse(buf)?;
    let size = h.total_size();
    let Some(batch) = buf.get(..size) else {
        return Err(LogError::CorruptBatch(format!(
            "record batch truncated: header declares {size} bytes but only {} are present",
            buf.len()
        )));
    };
    let actual = compute_crc(batch);
    if actual != h.crc {
        return Err(LogError::CorruptBatch(format!(
            "CRC mismatch: stored {:#010x}, computed {actual:#010x}",
            h.crc
        )));
    }
    Ok(h)
}

/// A validated record batch inside a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatchRef {
    /// Byte position of the batch in the buffer it was validated in.
    pub position: usize,
    /// The batch's parsed header.
    pub header: BatchHeader,
}

impl RecordBatchRef {
    /// Size of the batch in bytes.
    pub fn size(&self) -> usize {
        self.header.total_size()
    }
}

/// Validates a produce request's record set: one or more complete v2 batches, each with a good
/// CRC, a consistent record count, within `max.message.bytes`, and records that pass Kafka's
/// log validation (see `record::validate_records`). Control batches are refused (only
/// the broker writes transaction markers).
pub fn validate_record_set(
    buf: &[u8],
    config: &crate::LogConfig,
) -> Result<Vec<RecordBatchRef>, LogError> {
    let max_message_bytes = config.max_message_bytes;
    if buf.is_empty() {
        return Err(LogError::CorruptBatch(
            "empty record set: a produce request must carry at least one record batch".into(),
        ));
    }
    let mut batches = Vec::with_capacity(1);
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let h = BatchHeader::parse(rest)?;
        let size = h.total_size();
        if size > max_message_bytes as usize {
            return Err(LogError::MessageTooLarge {
                size,
                max: max_message_bytes,
            });
        }
        check_batch(rest)?;
        if h.record_count == 0 {
            return Err(LogError::CorruptBatch("record batch has no records".into()));
        }
        if h.last_offset_delta != h.record_count - 1 {
            return Err(LogError::CorruptBatch(format!(
                "last offset delta {} does not match record count {}",
                h.last_offset_delta, h.record_count
            )));
        }
        if h.is_control() {
            return Err(LogError::CorruptBatch(
                "clients may not write control batches".into(),
            ));
        }
        crate::record::validate_records(&rest[..size], &h, config)?;
        batches.push(RecordBatchRef {
            position: pos,
            header: h,
        });
        pos += size;
    }
    Ok(batches)
}

/// The fixed header of a validated batch with the broker-owned fields stamped: base offset,
/// leader epoch and, for `LogAppendTime`, the timestamps (which requires a new CRC, computed
/// over the new header fields and the unchanged records).
///
/// Every field the broker sets lies in the header, so a produced batch is written as this
/// stamped copy followed by its records straight from the request buffer: the records are
/// never copied in user space.
///
/// # Panics
/// If `batch` is shorter than [`HEADER_SIZE`]; callers pass validated batches only.
pub(crate) fn stamped_header(
    batch: &[u8],
    base_offset: i64,
    log_append_time: Option<i64>,
) -> [u8; HEADER_SIZE] {
    let mut header = [0u8; HEADER_SIZE];
    header.copy_from_slice(&batch[..HEADER_SIZE]);
    header[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    header[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&0i32.to_be_bytes());
    if let Some(now) = log_append_time {
        let attrs = be_i16(&header, ATTRIBUTES_AT) | TIMESTAMP_TYPE_BIT;
        header[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
        header[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&now.to_be_bytes());
        header[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now.to_be_bytes());
        let crc = crc32c::crc32c_append(
            crc32c::crc32c(&header[ATTRIBUTES_AT..]),
            &batch[HEADER_SIZE..],
        );
        header[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
    header
}

/// [`stamped_header`] written over the batch's own header, for batches the broker builds
/// itself (transaction markers).
pub(crate) fn stamp_batch(batch: &mut [u8], base_offset: i64, log_append_time: Option<i64>) {
    let header = stamped_header(batch, base_offset, log_append_time);
    batch[..HEADER_SIZE].copy_from_slice(&header);
}

/// Overwrites the record count of a batch (used by compaction before [`rewrite_crc`]).
pub(crate) fn set_record_count(batch: &mut [u8], count: i32) {
    batch[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
}

/// Overwrites the batch length field (used by compaction after re-compressing records).
pub(crate) fn set_batch_length(batch: &mut [u8], len: i32) {
    batch[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&len.to_be_bytes());
}

/// Recomputes and stores the CRC of a whole batch.
pub(crate) fn rewrite_crc(batch: &mut [u8]) {
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Builds valid v2 batches for tests without going through a client library.
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// One test record: key, value and timestamp.
    pub(crate) type TestRecord = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

    /// Encodes records as one batch with producer fields.
    pub(crate) fn batch_with(
        records: &[TestRecord],
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        compression: Compression,
    ) -> bytes::BytesMut {
        let recs: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v, ts))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder starts a new batch when offset - sequence changes.
                sequence: base_sequence.wrapping_add(i as i32),
                timestamp: *ts,
                key: k.clone().map(Into::into),
                value: v.clone().map(Into::into),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &recs,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("test batch encodes");
        buf
    }

    /// A plain batch of `n` records with timestamps `ts`, keys `k{i}` and values `v{i}`.
    pub(crate) fn simple_batch(n: usize, ts: i64) -> bytes::BytesMut {
        let recs: Vec<TestRecord> = (0..n)
            .map(|i| {
                (
                    Some(format!("k{i}").into_bytes()),
                    Some(format!("v{i}").into_bytes()),
                    ts,
                )
            })
            .collect();
        batch_with(&recs, -1, -1, -1, Compression::None)
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::simple_batch;
    use super::*;
    use proptest::prelude::*;

    fn cfg(max_message_bytes: u32) -> crate::LogConfig {
        crate::LogConfig {
            max_message_bytes,
            ..Default::default()
        }
    }

    #[test]
    fn valid_batch_passes_and_parses() {
        let b = simple_batch(3, 1000);
        let v = validate_record_set(&b, &cfg(1 << 20)).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].header.record_count, 3);
        assert_eq!(v[0].header.last_offset_delta, 2);
        assert_eq!(v[0].size(), b.len());
    }

    #[test]
    fn several_batches_in_one_set() {
        let mut b = simple_batch(3, 1000);
        b.extend_from_slice(&simple_batch(2, 1000));
        let v = validate_record_set(&b, &cfg(1 << 20)).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].position, v[0].size());
    }

    #[test]
    fn rejects_bad_crc_truncation_size_magic() {
        let b = simple_batch(3, 1000);
        let mut bad = b.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            validate_record_set(&bad, &cfg(1 << 20)),
            Err(LogError::CorruptBatch(_))
        ));
        assert!(matches!(
            validate_record_set(&b[..b.len() - 1], &cfg(1 << 20)),
            Err(LogError::CorruptBatch(_))
        ));
        assert!(matches!(
            validate_record_set(&b, &cfg(10)),
            Err(LogError::MessageTooLarge { .. })
        ));
        let mut m = b.clone();
        m[MAGIC_AT] = 1;
        assert!(matches!(
            validate_record_set(&m, &cfg(1 << 20)),
            Err(LogError::UnsupportedMagic(1))
        ));
        assert!(validate_record_set(&[], &cfg(1 << 20)).is_err());
    }

    #[test]
    fn stamping_log_append_time_keeps_crc_valid() {
        let mut b = simple_batch(2, 5);
        stamp_batch(&mut b, 42, Some(777));
        let h = check_batch(&b).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.max_timestamp, 777);
        assert!(h.is_log_append_time());
    }

    #[test]
    fn compacted_topics_refuse_keyless_records_and_name_each() {
        use super::test_util::batch_with;
        use kafka_protocol::records::Compression;
        let compacted = crate::LogConfig {
            cleanup_policy: crate::CleanupPolicy::Compact,
            ..Default::default()
        };
        for codec in [Compression::None, Compression::Zstd] {
            let b = batch_with(
                &[
                    (Some(b"a".to_vec()), Some(b"1".to_vec()), 1),
                    (None, Some(b"2".to_vec()), 1),
                    (Some(b"c".to_vec()), Some(b"3".to_vec()), 1),
                    (None, Some(b"4".to_vec()), 1),
                ],
                -1,
                -1,
                -1,
                codec,
            );
            match validate_record_set(&b, &compacted) {
                Err(LogError::InvalidRecord { record_errors, .. }) => {
                    let indexes: Vec<i32> = record_errors.iter().map(|e| e.0).collect();
                    assert_eq!(indexes, [1, 3]);
                }
                other => panic!("{codec:?}: {other:?}"),
            }
            // The same batch is fine where keys are optional.
            assert!(validate_record_set(&b, &cfg(1 << 20)).is_ok());
        }
    }

    #[test]
    fn unknown_codecs_and_lying_records_are_refused() {
        let mut b = simple_batch(2, 1000);
        b[ATTRIBUTES_AT + 1] |= 7;
        rewrite_crc(&mut b);
        assert!(matches!(
            validate_record_set(&b, &cfg(1 << 20)),
            Err(LogError::CorruptBatch(_))
        ));
        // A gzip flag over uncompressed records.
        let mut b = simple_batch(2, 1000);
        b[ATTRIBUTES_AT + 1] |= 1;
        rewrite_crc(&mut b);
        assert!(matches!(
            validate_record_set(&b, &cfg(1 << 20)),
            Err(LogError::CorruptBatch(_))
        ));
        // The first record claims one byte more (zigzag +2), with a fresh CRC.
        let mut b = simple_batch(2, 1000);
        b[HEADER_SIZE] += 2;
        rewrite_crc(&mut b);
        assert!(matches!(
            validate_record_set(&b, &cfg(1 << 20)),
            Err(LogError::InvalidRecord { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = validate_record_set(&data, &cfg(1 << 20));
            let _ = check_batch(&data);
        }

        #[test]
        fn mutated_valid_batch_never_panics(pos in 0usize..200, val in any::<u8>(), cut in 0usize..200) {
            let mut b = simple_batch(4, 1234).to_vec();
            let p = pos % b.len();
            b[p] = val;
            let c = cut % (b.len() + 1);
            let _ = validate_record_set(&b[..c], &cfg(1 << 20));
        }

        #[test]
        fn any_bit_flip_in_crc_range_is_rejected(bit in 0usize..10_000) {
            let b = simple_batch(4, 1234).to_vec();
            // Bytes from the CRC field on are protected (the CRC itself, then the covered data).
            let covered_bits = (b.len() - CRC_AT) * 8;
            let bit = bit % covered_bits;
            let mut m = b.clone();
            m[CRC_AT + bit / 8] ^= 1 << (bit % 8);
            prop_assert!(validate_record_set(&m, &cfg(1 << 20)).is_err());
        }
    }
}
