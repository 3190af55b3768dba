//! Kafka's record formats of the `__transaction_state` topic.
//!
//! Key (version 0): `transactional_id` string. Value version 0: producer id i64, producer epoch
//! i16, transaction timeout i32, status i8, partitions (nullable array of topic string +
//! partition array), last update timestamp i64, start timestamp i64. Version 1 (flexible, as
//! Kafka 4 writes it) is read too: compact strings and arrays, tagged fields skipped. Sluice
//! writes version 0, which every Kafka release reads.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::model::TxnState;
use crate::state_log::format::{
    get_i16, get_i32, get_i64, len_i32, put_str, Reader, RecordFormatError,
};

type Result<T> = std::result::Result<T, RecordFormatError>;

/// The key of a `__transaction_state` record: the transactional id.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(0);
    put_str(&mut buf, transactional_id);
    buf.freeze()
}

/// Decodes a key; `None` for key versions Kafka does not define for this topic.
pub fn decode_key(mut buf: &[u8]) -> Result<Option<String>> {
    let version = get_i16(&mut buf, "key version")?;
    if version != 0 {
        return Ok(None);
    }
    let mut reader = Reader {
        buf,
        flexible: false,
    };
    reader.str("transactional id").map(Some)
}

/// The value of a `__transaction_state` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    /// Current producer id.
    pub producer_id: i64,
    /// Current producer epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// Transaction state.
    pub state: TxnState,
    /// Partitions of the current (or last) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the state last changed (ms since the epoch).
    pub last_update_ms: i64,
    /// When the current transaction began, or -1.
    pub start_ms: i64,
}

impl TxnLogValue {
    /// Encodes as value version 0.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i16(0);
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        buf.put_i32(self.timeout_ms);
        buf.put_i8(self.state.code());
        let mut by_topic: Vec<(&str, Vec<i32>)> = Vec::new();
        for (topic, partition) in &self.partitions {
            match by_topic.last_mut() {
                Some((t, parts)) if *t == topic.as_str() => parts.push(*partition),
                _ => by_topic.push((topic, vec![*partition])),
            }
        }
        buf.put_i32(len_i32(by_topic.len()));
        for (topic, parts) in by_topic {
            put_str(&mut buf, topic);
            buf.put_i32(len_i32(parts.len()));
            for p in parts {
                buf.put_i32(p);
            }
        }
        buf.put_i64(self.last_update_ms);
        buf.put_i64(self.start_ms);
        buf.freeze()
    }

    /// Decodes value version 0 or 1.
    pub fn decode(mut buf: &[u8]) -> Result<Self> {
        let version = get_i16(&mut buf, "value version")?;
        if !(0..=1).contains(&version) {
            return Err(RecordFormatError::UnknownVersion {
                kind: "transaction value",
                version,
            });
        }
        let producer_id = get_i64(&mut buf, "producer id")?;
        let producer_epoch = get_i16(&mut buf, "producer epoch")?;
        let timeout_ms = get_i32(&mut buf, "transaction timeout")?;
        let code = *buf
            .first()
            .ok_or(RecordFormatError::Truncated("transaction status"))?;
        buf = &buf[1..];
        let state = TxnState::from_code(code as i8)
            .ok_or(RecordFormatError::InvalidLength("transaction status"))?;
        let mut reader = Reader {
            buf,
            flexible: version >= 1,
        };
        let mut partitions = BTreeSet::new();
        // A null array (-1, or 0 in the compact form) means no partitions.
        if let Ok(topics) = reader.array_len("transaction partitions") {
            for _ in 0..topics {
                let topic = reader.str("topic")?;
                let count = reader.array_len("partition ids")?;
                for _ in 0..count {
                    let p = get_i32(&mut reader.buf, "partition id")?;
                    partitions.insert((topic.clone(), p));
                }
                reader.skip_tags()?;
            }
        }
        let last_update_ms = get_i64(&mut reader.buf, "last update timestamp")?;
        let start_ms = get_i64(&mut reader.buf, "start timestamp")?;
        reader.skip_tags()?;
        Ok(TxnLogValue {
            producer_id,
            producer_epoch,
            timeout_ms,
            state,
            partitions,
            last_update_ms,
            start_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn key_layout_is_kafkas() {
        assert_eq!(&encode_key("tx")[..], &[0, 0, 0, 2, b't', b'x']);
        assert_eq!(
            decode_key(&encode_key("tx")).unwrap().as_deref(),
            Some("tx")
        );
        assert_eq!(decode_key(&[0, 9, 0, 0]).unwrap(), None);
    }

    #[test]
    fn null_partitions_decode_as_empty() {
        let mut buf = BytesMut::new();
        buf.put_i16(0);
        buf.put_i64(5);
        buf.put_i16(1);
        buf.put_i32(60_000);
        buf.put_i8(0);
        buf.put_i32(-1);
        buf.put_i64(10);
        buf.put_i64(-1);
        let v = TxnLogValue::decode(&buf).unwrap();
        assert!(v.partitions.is_empty());
        assert_eq!(
            (v.producer_id, v.state, v.start_ms),
            (5, TxnState::Empty, -1)
        );
    }

    proptest! {
        #[test]
        fn values_round_trip(pid in any::<i64>(), epoch in any::<i16>(), timeout in any::<i32>(),
                             code in 0i8..8, parts in proptest::collection::btree_set(("[a-z]{1,8}", 0i32..5), 0..6),
                             update in any::<i64>(), start in any::<i64>()) {
            let v = TxnLogValue {
                producer_id: pid,
                producer_epoch: epoch,
                timeout_ms: timeout,
                state: TxnState::from_code(code).unwrap(),
                partitions: parts,
                last_update_ms: update,
                start_ms: start,
            };
            prop_assert_eq!(TxnLogValue::decode(&v.encode()).unwrap(), v);
        }

        #[test]
        fn decoding_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = TxnLogValue::decode(&data);
            let _ = decode_key(&data);
        }
    }
}
