//! Where group state is persisted: the partitions of `__consumer_offsets`.
//!
//! The coordinator appends Kafka-format key/value records as ordinary v2 record batches (the
//! write happens synchronously, so the log order matches the coordinator's order), then awaits
//! durability *after* releasing its lock. [`MemoryOffsetsLog`] keeps the same encoded batches in
//! memory for unit tests and for brokers built without a data directory.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};
use sluice_log::{AppendOutcome, CleanupPolicy, LogError};

use crate::durability::{DurabilityError, Flusher};
use crate::meta::{MetaError, Metadata};
use crate::partition::Partition;

use super::records::RecordFormatError;

/// Name of Kafka's internal offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Why group state could not be loaded or persisted.
#[derive(Debug, thiserror::Error)]
pub enum GroupStoreError {
    /// Reading or writing a `__consumer_offsets` partition failed.
    #[error("__consumer_offsets partition {partition}: {source}")]
    Log {
        /// The partition involved.
        partition: i32,
        /// The log error.
        #[source]
        source: LogError,
    },
    /// Creating or finding the `__consumer_offsets` topic failed.
    #[error("cannot create or open the __consumer_offsets topic: {0}; check the data directory")]
    Topic(#[from] MetaError),
    /// A partition is missing (damaged catalogue, or the broker is shutting down).
    #[error("__consumer_offsets partition {0} is not available; the broker may be shutting down")]
    MissingPartition(i32),
    /// A batch could not be encoded or decoded.
    #[error("__consumer_offsets partition {partition}: bad record batch: {reason}")]
    Batch {
        /// The partition involved.
        partition: i32,
        /// What the codec reported.
        reason: String,
    },
    /// A record's key or value does not decode.
    #[error("__consumer_offsets partition {partition}: {source}")]
    Record {
        /// The partition involved.
        partition: i32,
        /// The format error.
        #[source]
        source: RecordFormatError,
    },
    /// The write could not be made durable.
    #[error("__consumer_offsets partition {partition}: {source}")]
    Sync {
        /// The partition involved.
        partition: i32,
        /// What the flusher reported.
        #[source]
        source: DurabilityError,
    },
}

/// The fsync future behind [`Durable`].
type SyncFuture = Pin<Box<dyn Future<Output = Result<(), GroupStoreError>> + Send>>;

/// A pending fsync; awaiting it makes the appended records durable.
pub struct Durable(Option<SyncFuture>);

impl Durable {
    /// Nothing to wait for.
    pub fn done() -> Self {
        Durable(None)
    }

    /// Waits until the write is durable.
    pub async fn wait(self) -> Result<(), GroupStoreError> {
        match self.0 {
            Some(fut) => fut.await,
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Durable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Durable(pending)"
        } else {
            "Durable(done)"
        })
    }
}

/// One key/value pair to write; `None` value is a tombstone.
pub type KeyValue = (Bytes, Option<Bytes>);

/// Storage backend of the coordinator: the partitions of `__consumer_offsets`.
pub trait OffsetsLog: Send + Sync + fmt::Debug {
    /// Number of partitions groups are spread over.
    fn partitions(&self) -> i32;

    /// Writes `records` to `partition` as one batch (no fsync) and returns the durability wait.
    fn append(
        &self,
        partition: i32,
        records: &[KeyValue],
        now_ms: i64,
    ) -> Result<Durable, GroupStoreError>;

    /// Calls `visit` with every record of `partition`, oldest first.
    fn replay(
        &self,
        partition: i32,
        visit: &mut dyn FnMut(Bytes, Option<Bytes>),
    ) -> Result<(), GroupStoreError>;
}

/// Encodes `records` as one uncompressed v2 batch, as Kafka's coordinator writes them.
pub fn encode_batch(records: &[KeyValue], now_ms: i64) -> Result<BytesMut, String> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: NO_SEQUENCE,
            timestamp: now_ms,
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Decodes the whole batches in `data`, calling `visit` for each data record; returns the offset
/// following the last batch (or `None` if `data` held no complete batch).
pub fn decode_batches(
    mut data: Bytes,
    visit: &mut dyn FnMut(Bytes, Option<Bytes>),
) -> Result<Option<i64>, String> {
    let mut next = None;
    // Batch header: base offset (8), length (4), epoch (4), magic (1), crc (4), attributes (2),
    // last offset delta (4).
    while data.len() >= 27 {
        let base_offset = (&data[0..8]).get_i64();
        let length = (&data[8..12]).get_i32();
        let total =
            usize::try_from(length).map_err(|_| format!("negative batch length {length}"))? + 12;
        if data.len() < total {
            break;
        }
        let last_delta = (&data[23..27]).get_i32();
        let mut batch = data.split_to(total);
        let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| e.to_string())?;
        for record in set.records {
            if record.control {
                continue;
            }
            if let Some(key) = record.key {
                visit(key, record.value);
            }
        }
        next = Some(base_offset + i64::from(last_delta) + 1);
    }
    Ok(next)
}

/// `__consumer_offsets` backed by the broker's partition logs, made durable through the
/// broker's group-commit [`Flusher`].
#[derive(Debug)]
pub struct LogOffsetsLog {
    /// Weak so that shutdown can close the logs while the coordinator still exists.
    partitions: Vec<Weak<Partition>>,
    flusher: Flusher,
}

impl LogOffsetsLog {
    /// Opens `__consumer_offsets`, creating it (internal, compacted, `partitions` partitions)
    /// on first start. An existing topic keeps its partition count, as in Kafka.
    pub fn open(
        metadata: &Metadata,
        flusher: Flusher,
        partitions: i32,
        segment_bytes: u64,
    ) -> Result<Self, GroupStoreError> {
        let configs = BTreeMap::from([
            ("cleanup.policy".to_owned(), "compact".to_owned()),
            ("segment.bytes".to_owned(), segment_bytes.to_string()),
        ]);
        let topic = metadata.create_internal_topic(OFFSETS_TOPIC, partitions, configs)?;
        if topic.log_config.cleanup_policy == CleanupPolicy::Delete {
            tracing::warn!(
                "{OFFSETS_TOPIC} is not compacted; committed offsets may be removed by retention"
            );
        }
        let partitions = topic.partitions.iter().map(Arc::downgrade).collect();
        Ok(LogOffsetsLog {
            partitions,
            flusher,
        })
    }

    fn get(&self, partition: i32) -> Result<Arc<Partition>, GroupStoreError> {
        usize::try_from(partition)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .and_then(Weak::upgrade)
            .ok_or(GroupStoreError::MissingPartition(partition))
    }
}

/// Bytes read per step while loading a partition.
const REPLAY_CHUNK_BYTES: usize = 1 << 20;

impl OffsetsLog for LogOffsetsLog {
    fn partitions(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    fn append(
        &self,
        partition: i32,
        records: &[KeyValue],
        now_ms: i64,
    ) -> Result<Durable, GroupStoreError> {
        let log = self.get(partition)?;
        let batch = encode_batch(records, now_ms)
            .map_err(|reason| GroupStoreError::Batch { partition, reason })?;
        let outcome = log
            .append(batch, now_ms)
            .map_err(|source| GroupStoreError::Log { partition, source })?;
        let end_offset = match outcome {
            AppendOutcome::Appended { last_offset, .. }
            | AppendOutcome::Duplicate { last_offset, .. } => last_offset + 1,
        };
        let flusher = self.flusher.clone();
        Ok(Durable(Some(Box::pin(async move {
            flusher
                .wait_durable(&log, end_offset)
                .await
                .map_err(|source| GroupStoreError::Sync { partition, source })
        }))))
    }

    fn replay(
        &self,
        partition: i32,
        visit: &mut dyn FnMut(Bytes, Option<Bytes>),
    ) -> Result<(), GroupStoreError> {
        let log = self.get(partition)?;
        let (mut offset, end) = {
            let guard = log.log.lock();
            (guard.log_start_offset(), guard.log_end_offset())
        };
        while offset < end {
            let (data, _, _) = log
                .read(offset, REPLAY_CHUNK_BYTES)
                .map_err(|source| GroupStoreError::Log { partition, source })?;
            let next = decode_batches(data, visit)
                .map_err(|reason| GroupStoreError::Batch { partition, reason })?;
            match next {
                Some(next) if next > offset => offset = next,
                _ => break,
            }
        }
        Ok(())
    }
}

/// An in-memory `__consumer_offsets` holding encoded batches (tests, ephemeral brokers).
#[derive(Debug)]
pub struct MemoryOffsetsLog {
    partitions: Vec<parking_lot::Mutex<Vec<Bytes>>>,
}

impl MemoryOffsetsLog {
    /// An empty log with `partitions` partitions.
    pub fn new(partitions: i32) -> Self {
        MemoryOffsetsLog {
            partitions: (0..partitions.max(1))
                .map(|_| parking_lot::Mutex::new(Vec::new()))
                .collect(),
        }
    }

    fn get(&self, partition: i32) -> Result<&parking_lot::Mutex<Vec<Bytes>>, GroupStoreError> {
        usize::try_from(partition)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .ok_or(GroupStoreError::MissingPartition(partition))
    }
}

impl OffsetsLog for MemoryOffsetsLog {
    fn partitions(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    fn append(
        &self,
        partition: i32,
        records: &[KeyValue],
        now_ms: i64,
    ) -> Result<Durable, GroupStoreError> {
        let slot = self.get(partition)?;
        let batch = encode_batch(records, now_ms)
            .map_err(|reason| GroupStoreError::Batch { partition, reason })?;
        slot.lock().push(batch.freeze());
        Ok(Durable::done())
    }

    fn replay(
        &self,
        partition: i32,
        visit: &mut dyn FnMut(Bytes, Option<Bytes>),
    ) -> Result<(), GroupStoreError> {
        let batches = self.get(partition)?.lock().clone();
        for batch in batches {
            decode_batches(batch, visit)
                .map_err(|reason| GroupStoreError::Batch { partition, reason })?;
        }
        Ok(())
    }
}

impl<T: OffsetsLog + ?Sized> OffsetsLog for Arc<T> {
    fn partitions(&self) -> i32 {
        (**self).partitions()
    }

    fn append(
        &self,
        partition: i32,
        records: &[KeyValue],
        now_ms: i64,
    ) -> Result<Durable, GroupStoreError> {
        (**self).append(partition, records, now_ms)
    }

    fn replay(
        &self,
        partition: i32,
        visit: &mut dyn FnMut(Bytes, Option<Bytes>),
    ) -> Result<(), GroupStoreError> {
        (**self).replay(partition, visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_with_tombstones() {
        let records = vec![
            (Bytes::from_static(b"k1"), Some(Bytes::from_static(b"v1"))),
            (Bytes::from_static(b"k2"), None),
        ];
        let batch = encode_batch(&records, 1000).expect("encodes");
        let mut seen = Vec::new();
        let next = decode_batches(batch.freeze(), &mut |k, v| seen.push((k, v))).expect("decodes");
        assert_eq!(seen, records);
        assert_eq!(next, Some(2));
    }

    #[test]
    fn memory_log_replays_in_order() {
        let log = MemoryOffsetsLog::new(2);
        for i in 0..3u8 {
            log.append(1, &[(Bytes::from(vec![i]), None)], 0)
                .expect("append");
        }
        let mut keys = Vec::new();
        log.replay(1, &mut |k, _| keys.push(k[0])).expect("replay");
        assert_eq!(keys, vec![0, 1, 2]);
        assert!(log.append(2, &[], 0).is_err());
    }
}
