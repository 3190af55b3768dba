//! Where the coordinators persist their state: the partitions of an internal compacted topic
//! (`__consumer_offsets` for groups, `__transaction_state` for transactions).
//!
//! A coordinator appends Kafka-format key/value records as ordinary v2 record batches (the
//! write happens synchronously, so the log order matches the coordinator's order), then awaits
//! durability *after* releasing its lock. Transactional offset commits are written as
//! transactional batches under the producer's id and epoch and settled by the markers the
//! transaction coordinator writes, exactly as in Kafka, so replay sees them as [`LogEntry`]s.
//! [`MemoryStateLog`] keeps the same encoded batches in memory for unit tests and for brokers
//! built without a data directory.

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
use sluice_log::{AppendOutcome, CleanupPolicy, ControlType, LogError, TxnMarker};

pub mod format;

use crate::durability::{DurabilityError, Flusher};
use crate::meta::{MetaError, Metadata};
use crate::partition::Partition;

/// Why coordinator state could not be loaded or persisted.
#[derive(Debug, thiserror::Error)]
pub enum StateLogError {
    /// Reading or writing a partition failed.
    #[error("{topic} partition {partition}: {source}")]
    Log {
        /// The internal topic.
        topic: &'static str,
        /// The partition involved.
        partition: i32,
        /// The log error.
        #[source]
        source: LogError,
    },
    /// Creating or finding the topic failed.
    #[error("cannot create or open the {topic} topic: {source}; check the data directory")]
    Topic {
        /// The internal topic.
        topic: &'static str,
        /// What the catalogue reported.
        #[source]
        source: MetaError,
    },
    /// A partition is missing (damaged catalogue, or the broker is shutting down).
    #[error("{topic} partition {partition} is not available; the broker may be shutting down")]
    MissingPartition {
        /// The internal topic.
        topic: &'static str,
        /// The partition involved.
        partition: i32,
    },
    /// A batch could not be encoded or decoded.
    #[error("{topic} partition {partition}: bad record batch: {reason}")]
    Batch {
        /// The internal topic.
        topic: &'static str,
        /// The partition involved.
        partition: i32,
        /// What the codec reported.
        reason: String,
    },
    /// The write could not be made durable.
    #[error("{topic} partition {partition}: {source}")]
    Sync {
        /// The internal topic.
        topic: &'static str,
        /// The partition involved.
        partition: i32,
        /// What the flusher reported.
        #[source]
        source: DurabilityError,
    },
}

impl StateLogError {
    /// True when the write was refused because the producer epoch is stale (a fenced
    /// producer's transactional offset commit).
    pub fn is_fenced(&self) -> bool {
        matches!(
            self,
            StateLogError::Log {
                source: LogError::InvalidProducerEpoch { .. },
                ..
            }
        )
    }
}

/// The fsync future behind [`Durable`].
type SyncFuture = Pin<Box<dyn Future<Output = Result<(), StateLogError>> + Send>>;

/// A pending fsync; awaiting it makes the appended records durable.
pub struct Durable(Option<SyncFuture>);

impl Durable {
    /// Nothing to wait for.
    pub fn done() -> Self {
        Durable(None)
    }

    /// Waits until the write is durable.
    pub async fn wait(self) -> Result<(), StateLogError> {
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

/// A producer writing transactionally: `(producer id, epoch)`.
pub type TxnProducer = (i64, i16);

/// What replay finds in a state log, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// A key/value record; `producer_id` is set for records written inside a transaction,
    /// which only count once a COMMIT marker for that producer follows.
    Record {
        /// The record key.
        key: Bytes,
        /// The value, `None` for a tombstone.
        value: Option<Bytes>,
        /// The transactional producer, if any.
        producer_id: Option<i64>,
    },
    /// A transaction marker.
    Marker {
        /// Whose transaction ended.
        producer_id: i64,
        /// How it ended.
        control: ControlType,
    },
}

/// Storage backend of a coordinator: the partitions of its internal topic.
pub trait StateLog: Send + Sync + fmt::Debug {
    /// Number of partitions the state is spread over.
    fn partitions(&self) -> i32;

    /// Writes `records` to `partition` as one batch (no fsync) and returns the durability wait;
    /// with `producer` the batch is transactional under that producer id and epoch (refused if
    /// the epoch is stale).
    fn append(
        &self,
        partition: i32,
        records: &[KeyValue],
        producer: Option<TxnProducer>,
        now_ms: i64,
    ) -> Result<Durable, StateLogError>;

    /// Writes a transaction marker to `partition`.
    fn append_marker(
        &self,
        partition: i32,
        marker: &TxnMarker,
        now_ms: i64,
    ) -> Result<Durable, StateLogError>;

    /// Calls `visit` with every entry of `partition`, oldest first.
    fn replay(&self, partition: i32, visit: &mut dyn FnMut(LogEntry)) -> Result<(), StateLogError>;
}

/// Encodes `records` as one uncompressed v2 batch, as Kafka's coordinators write them.
pub fn encode_batch(
    records: &[KeyValue],
    producer: Option<TxnProducer>,
    now_ms: i64,
) -> Result<BytesMut, String> {
    let (producer_id, producer_epoch) = producer.unwrap_or((NO_PRODUCER_ID, NO_PRODUCER_EPOCH));
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id,
            producer_epoch,
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

/// Decodes the whole batches in `data`, calling `visit` for each entry; returns the offset
/// following the last batch (or `None` if `data` held no complete batch).
pub fn decode_batches(
    mut data: Bytes,
    visit: &mut dyn FnMut(LogEntry),
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
                let control = match record.key.as_deref() {
                    Some([_, _, 0, 0]) => ControlType::Abort,
                    Some([_, _, 0, 1]) => ControlType::Commit,
                    _ => continue,
                };
                visit(LogEntry::Marker {
                    producer_id: record.producer_id,
                    control,
                });
                continue;
            }
            if let Some(key) = record.key {
                visit(LogEntry::Record {
                    key,
                    value: record.value,
                    producer_id: record.transactional.then_some(record.producer_id),
                });
            }
        }
        next = Some(base_offset + i64::from(last_delta) + 1);
    }
    Ok(next)
}

/// A state topic backed by the broker's partition logs, made durable through the broker's
/// group-commit [`Flusher`].
#[derive(Debug)]
pub struct TopicStateLog {
    topic: &'static str,
    /// Weak so that shutdown can close the logs while the coordinator still exists.
    partitions: Vec<Weak<Partition>>,
    flusher: Flusher,
}

impl TopicStateLog {
    /// Opens the internal topic `topic`, creating it (internal, compacted, `partitions`
    /// partitions) on first start. An existing topic keeps its partition count, as in Kafka.
    pub fn open(
        metadata: &Metadata,
        flusher: Flusher,
        topic: &'static str,
        partitions: i32,
        segment_bytes: u64,
    ) -> Result<Self, StateLogError> {
        let configs = BTreeMap::from([
            ("cleanup.policy".to_owned(), "compact".to_owned()),
            ("segment.bytes".to_owned(), segment_bytes.to_string()),
        ]);
        let created = metadata
            .create_internal_topic(topic, partitions, configs)
            .map_err(|source| StateLogError::Topic { topic, source })?;
        if created.log_config.cleanup_policy == CleanupPolicy::Delete {
            tracing::warn!(
                topic,
                "internal topic is not compacted; its state may be removed by retention"
            );
        }
        let partitions = created.partitions.iter().map(Arc::downgrade).collect();
        Ok(TopicStateLog {
            topic,
            partitions,
            flusher,
        })
    }

    fn get(&self, partition: i32) -> Result<Arc<Partition>, StateLogError> {
        usize::try_from(partition)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .and_then(Weak::upgrade)
            .ok_or(StateLogError::MissingPartition {
                topic: self.topic,
                partition,
            })
    }

    /// The durability wait for everything below `end_offset` of `log`. The partition is
    /// marked dirty at once, so the write is synced even if nobody awaits it.
    fn durable(&self, log: Arc<Partition>, partition: i32, end_offset: i64) -> Durable {
        self.flusher.mark_dirty(&log);
        let flusher = self.flusher.clone();
        let topic = self.topic;
        Durable(Some(Box::pin(async move {
            flusher
                .wait_durable(&log, end_offset)
                .await
                .map_err(|source| StateLogError::Sync {
                    topic,
                    partition,
                    source,
                })
        })))
    }
}

/// Bytes read per step while loading a partition.
const REPLAY_CHUNK_BYTES: usize = 1 << 20;

impl StateLog for TopicStateLog {
    fn partitions(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    fn append(
        &self,
        partition: i32,
        records: &[KeyValue],
        producer: Option<TxnProducer>,
        now_ms: i64,
    ) -> Result<Durable, StateLogError> {
        let topic = self.topic;
        let log = self.get(partition)?;
        let batch =
            encode_batch(records, producer, now_ms).map_err(|reason| StateLogError::Batch {
                topic,
                partition,
                reason,
            })?;
        let outcome = log
            .append_from_coordinator(batch, now_ms)
            .map_err(|source| StateLogError::Log {
                topic,
                partition,
                source,
            })?;
        let end_offset = match outcome {
            AppendOutcome::Appended { last_offset, .. }
            | AppendOutcome::Duplicate { last_offset, .. } => last_offset + 1,
        };
        Ok(self.durable(log, partition, end_offset))
    }

    fn append_marker(
        &self,
        partition: i32,
        marker: &TxnMarker,
        now_ms: i64,
    ) -> Result<Durable, StateLogError> {
        let log = self.get(partition)?;
        let offset = log
            .append_marker(marker, now_ms)
            .map_err(|source| StateLogError::Log {
                topic: self.topic,
                partition,
                source,
            })?;
        Ok(self.durable(log, partition, offset + 1))
    }

    fn replay(&self, partition: i32, visit: &mut dyn FnMut(LogEntry)) -> Result<(), StateLogError> {
        let topic = self.topic;
        let log = self.get(partition)?;
        let (mut offset, end) = log.with_log(|log| (log.log_start_offset(), log.log_end_offset()));
        while offset < end {
            let (data, _, _) =
                log.read(offset, REPLAY_CHUNK_BYTES)
                    .map_err(|source| StateLogError::Log {
                        topic,
                        partition,
                        source,
                    })?;
            let next = decode_batches(data, visit).map_err(|reason| StateLogError::Batch {
                topic,
                partition,
                reason,
            })?;
            match next {
                Some(next) if next > offset => offset = next,
                _ => break,
            }
        }
        Ok(())
    }
}

/// An in-memory state topic holding encoded batches (tests, ephemeral brokers).
#[derive(Debug)]
pub struct MemoryStateLog {
    partitions: Vec<parking_lot::Mutex<Vec<Bytes>>>,
}

/// The name memory logs report in errors.
const MEMORY_TOPIC: &str = "in-memory state log";

impl MemoryStateLog {
    /// An empty log with `partitions` partitions.
    pub fn new(partitions: i32) -> Self {
        MemoryStateLog {
            partitions: (0..partitions.max(1))
                .map(|_| parking_lot::Mutex::new(Vec::new()))
                .collect(),
        }
    }

    fn get(&self, partition: i32) -> Result<&parking_lot::Mutex<Vec<Bytes>>, StateLogError> {
        usize::try_from(partition)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .ok_or(StateLogError::MissingPartition {
                topic: MEMORY_TOPIC,
                partition,
            })
    }
}

impl StateLog for MemoryStateLog {
    fn partitions(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    fn append(
        &self,
        partition: i32,
        records: &[KeyValue],
        producer: Option<TxnProducer>,
        now_ms: i64,
    ) -> Result<Durable, StateLogError> {
        let slot = self.get(partition)?;
        let batch =
            encode_batch(records, producer, now_ms).map_err(|reason| StateLogError::Batch {
                topic: MEMORY_TOPIC,
                partition,
                reason,
            })?;
        slot.lock().push(batch.freeze());
        Ok(Durable::done())
    }

    fn append_marker(
        &self,
        partition: i32,
        marker: &TxnMarker,
        now_ms: i64,
    ) -> Result<Durable, StateLogError> {
        let slot = self.get(partition)?;
        slot.lock().push(marker.to_batch(now_ms).freeze());
        Ok(Durable::done())
    }

    fn replay(&self, partition: i32, visit: &mut dyn FnMut(LogEntry)) -> Result<(), StateLogError> {
        let batches = self.get(partition)?.lock().clone();
        for batch in batches {
            decode_batches(batch, visit).map_err(|reason| StateLogError::Batch {
                topic: MEMORY_TOPIC,
                partition,
                reason,
            })?;
        }
        Ok(())
    }
}

impl<T: StateLog + ?Sized> StateLog for Arc<T> {
    fn partitions(&self) -> i32 {
        (**self).partitions()
    }

    fn append(
        &self,
        partition: i32,
        records: &[KeyValue],
        producer: Option<TxnProducer>,
        now_ms: i64,
    ) -> Result<Durable, StateLogError> {
        (**self).append(partition, records, producer, now_ms)
    }

    fn append_marker(
        &self,
        partition: i32,
        marker: &TxnMarker,
        now_ms: i64,
    ) -> Result<Durable, StateLogError> {
        (**self).append_marker(partition, marker, now_ms)
    }

    fn replay(&self, partition: i32, visit: &mut dyn FnMut(LogEntry)) -> Result<(), StateLogError> {
        (**self).replay(partition, visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &'static [u8], value: Option<&'static [u8]>, pid: Option<i64>) -> LogEntry {
        LogEntry::Record {
            key: Bytes::from_static(key),
            value: value.map(Bytes::from_static),
            producer_id: pid,
        }
    }

    #[test]
    fn batches_round_trip_with_tombstones() {
        let records = vec![
            (Bytes::from_static(b"k1"), Some(Bytes::from_static(b"v1"))),
            (Bytes::from_static(b"k2"), None),
        ];
        let batch = encode_batch(&records, None, 1000).expect("encodes");
        let mut seen = Vec::new();
        let next = decode_batches(batch.freeze(), &mut |e| seen.push(e)).expect("decodes");
        assert_eq!(
            seen,
            vec![record(b"k1", Some(b"v1"), None), record(b"k2", None, None)]
        );
        assert_eq!(next, Some(2));
    }

    #[test]
    fn memory_log_replays_transactions_and_markers_in_order() {
        let log = MemoryStateLog::new(2);
        log.append(1, &[(Bytes::from_static(b"a"), None)], None, 0)
            .expect("append");
        log.append(1, &[(Bytes::from_static(b"b"), None)], Some((7, 2)), 0)
            .expect("append");
        let marker = TxnMarker {
            producer_id: 7,
            producer_epoch: 2,
            coordinator_epoch: 0,
            control: ControlType::Commit,
        };
        log.append_marker(1, &marker, 0).expect("marker");
        let mut seen = Vec::new();
        log.replay(1, &mut |e| seen.push(e)).expect("replay");
        assert_eq!(
            seen,
            vec![
                record(b"a", None, None),
                record(b"b", None, Some(7)),
                LogEntry::Marker {
                    producer_id: 7,
                    control: ControlType::Commit
                },
            ]
        );
        assert!(log.append(2, &[], None, 0).is_err());
    }
}
