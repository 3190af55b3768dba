//! The Kafka side of a source task: records go out through an idempotent producer in order,
//! and a position marker (the source offset after them) comes back only once every record
//! before it has been acknowledged. Nothing is confirmed to the source before that, so a
//! crash loses nothing; the bounded queue between the two halves is the back-pressure.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sluice_admin::NewTopic;
use sluice_metrics::Counter;
use tokio::sync::mpsc;

use super::errors::Stage;
use super::kafka::KafkaSettings;
use super::pipeline::Pipeline;
use super::record::SourceRecord;
use super::TaskContext;
use crate::convert;
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
    pipeline: Pipeline,
    connector: String,
    task: u32,
    /// Records skipped under `errors.tolerance=all`.
    skipped: Arc<Counter>,
    /// Records written to the dead-letter topic.
    dead_letters: Arc<Counter>,
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
    pipeline: Pipeline,
) -> Result<(RecordSender<M>, Acks<M>), TaskError> {
    let kafka = &ctx.kafka;
    let client_id = format!("connector-producer-{}-{}", ctx.connector, ctx.task);
    let (records, bytes) = ctx.metrics.source_counters(&ctx.connector);
    let (skipped, dead_letters) = ctx.metrics.error_counters(&ctx.connector);
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
            pipeline,
            connector: ctx.connector.clone(),
            task: ctx.task,
            skipped,
            dead_letters,
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
    /// Transforms, converts and queues one record; a record that fails on the way is
    /// handled as `errors.tolerance` says.
    pub(crate) async fn send(&mut self, record: SourceRecord) -> Result<(), TaskError> {
        // The record as it was is only needed for a dead letter after a failed transform.
        let original = (self.pipeline.errors.dead_letter.is_some()
            && !self.pipeline.transforms.is_empty())
        .then(|| record.clone());
        let record = match self.pipeline.transforms.apply(record) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => {
                let (class, message) = (e.class.clone(), e.to_string());
                return self
                    .failed(Stage::Transformation, &class, message, original.as_ref())
                    .await;
            }
        };
        let key = match self.convert(&record, true).await? {
            Ok(k) => k,
            Err(message) => {
                let class = self.pipeline.converters.key.class();
                return self
                    .failed(Stage::KeyConverter, class, message, Some(&record))
                    .await;
            }
        };
        let value = match self.convert(&record, false).await? {
            Ok(v) => v,
            Err(message) => {
                let class = self.pipeline.converters.value.class();
                return self
                    .failed(Stage::ValueConverter, class, message, Some(&record))
                    .await;
            }
        };
        let creation = self.creation.clone();
        self.produce(
            &record.topic,
            key.as_deref(),
            value.as_deref(),
            record.timestamp_ms,
            &record.headers,
            &creation,
        )
        .await
    }

    /// The key's or value's bytes; the inner error is a record the converter cannot take,
    /// the outer one a failure that is not the record's (an unreachable registry).
    async fn convert(
        &self,
        record: &SourceRecord,
        is_key: bool,
    ) -> Result<Result<Option<Vec<u8>>, String>, TaskError> {
        let (converter, part) = if is_key {
            (&self.pipeline.converters.key, &record.key)
        } else {
            (&self.pipeline.converters.value, &record.value)
        };
        let Some((schema, datum)) = part else {
            return Ok(Ok(None));
        };
        match converter.encode(&record.topic, is_key, schema, datum).await {
            Ok(bytes) => Ok(Ok(bytes)),
            Err(TaskError::Fatal(message)) => Ok(Err(message)),
            Err(retriable) => Err(retriable),
        }
    }

    /// A record failed at `stage`: the task fails, or the record is skipped, logged and
    /// written to the dead-letter topic.
    async fn failed(
        &mut self,
        stage: Stage,
        class: &str,
        message: String,
        record: Option<&SourceRecord>,
    ) -> Result<(), TaskError> {
        let errors = &self.pipeline.errors;
        if !errors.tolerate {
            return Err(TaskError::Fatal(format!(
                "{} ({class}) failed and errors.tolerance is none: {message}",
                stage.name()
            )));
        }
        self.skipped.inc();
        // Schemaless JSON: a failed record has no converted bytes, and a person reads these.
        let json = |part: &Option<super::record::Part>| {
            part.as_ref()
                .map(|(schema, datum)| convert::schemaless_json(&schema.schema, datum))
        };
        let (key, value) = record.map_or((None, None), |r| (json(&r.key), json(&r.value)));
        if errors.log {
            let topic = record.map_or("", |r| r.topic.as_str());
            if errors.log_messages {
                let text = |b: &Option<Vec<u8>>| {
                    b.as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default()
                        .into_owned()
                };
                tracing::warn!(connector = %self.connector, stage = stage.name(), %class, topic, key = %text(&key), value = %text(&value), "skipping a record: {message}");
            } else {
                tracing::warn!(connector = %self.connector, stage = stage.name(), %class, topic, "skipping a record: {message}");
            }
        }
        let (Some(dlq), Some(record)) = (errors.dead_letter.clone(), record) else {
            return Ok(());
        };
        let mut headers = record.headers.clone();
        if dlq.context_headers {
            let context = [
                ("__connect.errors.topic", record.topic.clone()),
                ("__connect.errors.stage", stage.name().to_owned()),
                ("__connect.errors.class.name", class.to_owned()),
                ("__connect.errors.exception.message", message),
                ("__connect.errors.connector.name", self.connector.clone()),
                ("__connect.errors.task.id", self.task.to_string()),
            ];
            headers.extend(
                context
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.into_bytes())),
            );
        }
        let creation = TopicCreation {
            partitions: Some(1),
            replication_factor: dlq.replication_factor,
        };
        self.produce(
            &dlq.topic,
            key.as_deref(),
            value.as_deref(),
            record.timestamp_ms,
            &headers,
            &creation,
        )
        .await?;
        self.dead_letters.inc();
        Ok(())
    }

    /// Queues one record of bytes, untouched by transforms and converters (a heartbeat).
    pub(crate) async fn send_bytes(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<(), TaskError> {
        let creation = self.creation.clone();
        self.produce(topic, key, value, None, &[], &creation).await
    }

    async fn produce(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp_ms: Option<i64>,
        headers: &[(String, Vec<u8>)],
        creation: &TopicCreation,
    ) -> Result<(), TaskError> {
        if !self.known_topics.contains(topic) {
            self.kafka
                .ensure_topic(&NewTopic {
                    name: topic.to_owned(),
                    partitions: creation.partitions,
                    replication_factor: creation.replication_factor,
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
        if !headers.is_empty() {
            let owned = headers.iter().fold(
                OwnedHeaders::new_with_capacity(headers.len()),
                |h, (k, v)| {
                    h.insert(Header {
                        key: k,
                        value: Some(v),
                    })
                },
            );
            record = record.headers(owned);
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
