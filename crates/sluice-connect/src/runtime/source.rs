//! The Kafka side of a source task: records go out through an idempotent producer in order,
//! and a position marker (the source offset after them) comes back only once every record
//! before it has been acknowledged. Nothing is confirmed to the source before that, so a
//! crash loses nothing; the bounded queue between the two halves is the back-pressure.

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sluice_admin::NewTopic;
use tokio::sync::mpsc;

use super::kafka::KafkaSettings;
use super::TaskContext;
use crate::plugin::TaskError;

/// Records and markers in flight at most; beyond it `send` waits.
const MAX_IN_FLIGHT: usize = 100_000;

enum Pending<M> {
    /// A record's delivery and its key + value size.
    Delivery(DeliveryFuture, u64),
    Mark(M),
}

/// How topics the task writes to are created when missing.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopicCreation {
    pub(crate) partitions: Option<i32>,
    pub(crate) replication_factor: Option<i16>,
}

/// The sending half.
pub(crate) struct RecordSender<M> {
    producer: FutureProducer,
    pending: mpsc::Sender<Pending<M>>,
    kafka: KafkaSettings,
    creation: TopicCreation,
    known_topics: HashSet<String>,
}

/// The acknowledged markers, in order; an error ends the stream.
pub(crate) struct Acks<M> {
    rx: mpsc::Receiver<Result<M, TaskError>>,
}

impl<M> Acks<M> {
    /// The next marker whose records are all acknowledged. Cancel-safe.
    pub(crate) async fn next(&mut self) -> Result<M, TaskError> {
        match self.rx.recv().await {
            Some(r) => r,
            None => Err(TaskError::Retriable("the delivery tracker stopped".into())),
        }
    }
}

/// A producer for a task's records and the tracker of their acknowledgements.
pub(crate) fn channel<M: Send + 'static>(
    ctx: &TaskContext,
    creation: TopicCreation,
) -> Result<(RecordSender<M>, Acks<M>), TaskError> {
    let kafka = &ctx.kafka;
    let client_id = format!("connector-producer-{}-{}", ctx.connector, ctx.task);
    let (records, bytes) = ctx.metrics.source_counters(&ctx.connector);
    let producer: FutureProducer = kafka
        .durable_producer_config(&client_id)
        .create()
        .map_err(|e| TaskError::Fatal(format!("cannot create the producer: {e}")))?;
    let (pending_tx, mut pending_rx) = mpsc::channel::<Pending<M>>(MAX_IN_FLIGHT);
    let (acked_tx, acked_rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        while let Some(p) = pending_rx.recv().await {
            let result = match p {
                Pending::Delivery(delivery, size) => match delivery.await {
                    Ok(Ok(_)) => {
                        records.inc();
                        bytes.add(size);
                        continue;
                    }
                    Ok(Err((e, _))) => Err(delivery_error(&e)),
                    Err(_) => Err(TaskError::Retriable("the producer was closed".into())),
                },
                Pending::Mark(m) => Ok(m),
            };
            let failed = result.is_err();
            if acked_tx.send(result).await.is_err() || failed {
                return;
            }
        }
    });
    Ok((
        RecordSender {
            producer,
            pending: pending_tx,
            kafka: kafka.clone(),
            creation,
            known_topics: HashSet::new(),
        },
        Acks { rx: acked_rx },
    ))
}

fn delivery_error(e: &KafkaError) -> TaskError {
    let message = format!("a record was not written: {e}");
    match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::InvalidRecord,
        ) => TaskError::Fatal(message),
        _ => TaskError::Retriable(message),
    }
}

impl<M: Send + 'static> RecordSender<M> {
    /// Queues one record.
    pub(crate) async fn send(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp_ms: Option<i64>,
    ) -> Result<(), TaskError> {
        if !self.known_topics.contains(topic) {
            self.kafka
                .ensure_topic(&NewTopic {
                    name: topic.to_owned(),
                    partitions: self.creation.partitions,
                    replication_factor: self.creation.replication_factor,
                    configs: Vec::new(),
                })
                .await
                .map_err(|e| TaskError::Retriable(e.to_string()))?;
            self.known_topics.insert(topic.to_owned());
        }
        let size = (key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len)) as u64;
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        if let Some(ts) = timestamp_ms {
            record = record.timestamp(ts);
        }
        let delivery = loop {
            match self.producer.send_result(record) {
                Ok(d) => break d,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(delivery_error(&e)),
            }
        };
        self.pending
            .send(Pending::Delivery(delivery, size))
            .await
            .map_err(|_| TaskError::Retriable("the delivery tracker stopped".into()))
    }

    /// Queues a marker, acknowledged once every record before it is.
    pub(crate) async fn mark(&mut self, marker: M) -> Result<(), TaskError> {
        self.pending
            .send(Pending::Mark(marker))
            .await
            .map_err(|_| TaskError::Retriable("the delivery tracker stopped".into()))
    }
}
