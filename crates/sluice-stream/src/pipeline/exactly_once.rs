//! Exactly once, Kafka to Kafka (`delivery.exactly_once: true`): the records a batch of source
//! events becomes and the source offsets after them are written in one Kafka transaction
//! (KIP-98, with the consumer group's metadata for fencing, KIP-447), so a crash or `kill -9`
//! at any point leaves either all of a batch or none of it, and read_committed consumers of
//! the destinations see every event once. Destinations must be topics of the source's cluster
//! (a transaction spans one cluster).
//!
//! A transaction begins with the first event after the last commit; events are transformed
//! and written as they arrive, and the transaction commits, with the offsets after them, 100 ms
//! later (or after 10,000 events), as Kafka Streams does. A failed write aborts it and rewinds
//! the consumer to the batch's first offsets, so the batch is tried again whole.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, Producer as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice_metrics::{Counter, Family};

use super::config::{DestinationKind, PipelineConfig};
use super::run::RunSummary;
use super::source;
use super::transform::{Outcome, Transforms};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::fanout::dead_letter_event;
use crate::sinks::kafka::KafkaConfig;
use crate::sinks::DeliveryError;

/// Events per transaction at most.
const MAX_BATCH: usize = 10_000;
/// Time a transaction stays open collecting events.
const COMMIT_INTERVAL: Duration = Duration::from_millis(100);
/// Transactional calls' timeout.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// An exactly-once pipeline, built and subscribed.
pub(crate) struct ExactlyOnce {
    name: String,
    consumer: StreamConsumer,
    producer: FutureProducer,
    transforms: Transforms,
    destinations: Vec<(String, KafkaConfig)>,
    dead_letter: Option<KafkaConfig>,
    events: Arc<Family<Counter>>,
}

/// Checks what exactly-once needs of `config`.
pub(crate) fn validate(config: &PipelineConfig) -> Result<()> {
    let bootstrap = config.source.kafka.properties.get("bootstrap.servers");
    if config.delivery.policy != crate::Policy::All {
        return Err(Error::Config(
            "exactly_once needs policy: all (every destination is written in one transaction)"
                .into(),
        ));
    }
    for d in config
        .destinations
        .iter()
        .chain(config.delivery.dead_letter.as_deref())
    {
        let DestinationKind::Kafka(k) = d.kind()? else {
            return Err(Error::Config(format!(
                "exactly_once: destination {:?} is not Kafka; a transaction covers Kafka topics only",
                d.name
            )));
        };
        if k.failover.is_some() {
            return Err(Error::Config(format!(
                "exactly_once: destination {:?} has failover; a transaction spans one cluster",
                d.name
            )));
        }
        if d.kafka_properties().get("bootstrap.servers") != bootstrap {
            return Err(Error::Config(format!(
                "exactly_once: destination {:?} is on another cluster than the source (bootstrap.servers differ); a transaction spans one cluster",
                d.name
            )));
        }
    }
    Ok(())
}

impl ExactlyOnce {
    /// The transactional producer and the read_committed consumer of `config`.
    pub(crate) fn start(
        config: &PipelineConfig,
        transforms: Transforms,
        events: Arc<Family<Counter>>,
    ) -> Result<ExactlyOnce> {
        validate(config)?;
        // The transactional calls block: they run in place on a multi-thread runtime.
        if tokio::runtime::Handle::current().runtime_flavor()
            != tokio::runtime::RuntimeFlavor::MultiThread
        {
            return Err(Error::Config(
                "exactly_once pipelines need tokio's multi-thread runtime".into(),
            ));
        }
        let name = config.name.clone().unwrap_or_else(|| "pipeline".to_owned());
        let source_config = &config.source.kafka;
        let consumer = source::subscribe_manual(source_config)?;
        let first = &config.destinations[0];
        let mut client = ClientConfig::new();
        for (k, v) in first.kafka_properties() {
            client.set(k, v);
        }
        let group = source_config
            .properties
            .get("group.id")
            .cloned()
            .unwrap_or_default();
        // Unique per process: instances of one pipeline do not fence each other (offsets are
        // fenced by the group generation instead); a crashed instance's open transaction is
        // aborted by the broker after transaction.timeout.ms.
        client.set(
            "transactional.id",
            format!("sluice-stream-{group}-{name}-{}", uuid::Uuid::new_v4()),
        );
        client.set("enable.idempotence", "true");
        client.set("acks", "all");
        if !first
            .kafka_properties()
            .contains_key("transaction.timeout.ms")
        {
            client.set("transaction.timeout.ms", "10000");
        }
        let producer: FutureProducer = client.create().map_err(|e| Error::Destination {
            destination: first.name.clone(),
            message: format!("cannot create the transactional producer: {e}"),
        })?;
        tokio::task::block_in_place(|| producer.init_transactions(TXN_TIMEOUT)).map_err(|e| {
            Error::Destination {
                destination: first.name.clone(),
                message: format!("the cluster refused transactions: {e}"),
            }
        })?;
        let kafka = |d: &super::DestinationConfig| match d.kind() {
            Ok(DestinationKind::Kafka(k)) => Some(k.clone()),
            _ => None,
        };
        Ok(ExactlyOnce {
            name,
            consumer,
            producer,
            transforms,
            destinations: config
                .destinations
                .iter()
                .filter_map(|d| kafka(d).map(|k| (d.name.clone(), k)))
                .collect(),
            dead_letter: config.delivery.dead_letter.as_deref().and_then(kafka),
            events,
        })
    }

    /// Runs transactions until `shutdown` (the open one is finished first) or a failure that
    /// retrying the batch cannot fix.
    pub(crate) async fn run(self, shutdown: impl Future<Output = ()>) -> Result<RunSummary> {
        let mut summary = RunSummary::default();
        tokio::pin!(shutdown);
        tracing::info!(pipeline = %self.name, "pipeline running, exactly once");
        loop {
            let first = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                m = source::next(&self.consumer, &self.name) => match m {
                    Some(m) => Consumed::from(&m),
                    None => continue,
                },
            };
            let mut batch = Vec::new();
            match self.transact(first, &mut batch).await {
                Ok(done) => {
                    summary.consumed += batch.len() as u64;
                    summary.delivered += done.delivered;
                    summary.filtered += done.filtered;
                    summary.dead_lettered += done.dead_lettered;
                    self.events.with(&["consumed"]).add(batch.len() as u64);
                    self.events.with(&["delivered"]).add(done.delivered);
                    self.events.with(&["filtered"]).add(done.filtered);
                    self.events.with(&["dead_lettered"]).add(done.dead_lettered);
                }
                Err(e) => {
                    let abort = tokio::task::block_in_place(|| {
                        self.producer.abort_transaction(TXN_TIMEOUT)
                    });
                    if let Err(a) = abort {
                        self.events.with(&["failed"]).add(batch.len() as u64);
                        return Err(Error::Source(format!(
                            "transaction failed ({e}) and could not be aborted ({a}); restart to resume from the last commit"
                        )));
                    }
                    if let Error::Delivery(d) = &e {
                        if !d.failure.retriable {
                            self.events.with(&["failed"]).add(batch.len() as u64);
                            return Err(e);
                        }
                    }
                    tracing::warn!(pipeline = %self.name, error = %e, "transaction aborted; the batch is read again");
                    self.rewind(&batch);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        tracing::info!(pipeline = %self.name, ?summary, "pipeline stopped");
        Ok(summary)
    }

    /// One transaction: `first` and whatever arrives within the commit interval, written as
    /// they come, then the offsets after them, then the commit. `batch` collects the
    /// positions read, for a rewind.
    async fn transact(&self, first: Consumed, batch: &mut Vec<Position>) -> Result<Done> {
        // Recorded before anything can fail, so a rewind never skips it.
        batch.push(first.position.clone());
        // The group's generation as of the transaction's start: if a rebalance moves the
        // partitions meanwhile, the offsets are refused (KIP-447) and the batch is aborted.
        let group = self.consumer.group_metadata().ok_or_else(|| {
            Error::Source(
                "the consumer has no group metadata: source.kafka.properties needs group.id".into(),
            )
        })?;
        tokio::task::block_in_place(|| self.producer.begin_transaction())
            .map_err(|e| txn_error("begin", &e))?;
        let mut done = Done::default();
        let mut pending: Vec<DeliveryFuture> = Vec::new();
        let deadline = tokio::time::Instant::now() + COMMIT_INTERVAL;
        self.write(first.event, &mut pending, &mut done).await?;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(Ok(m)) => {
                    let c = Consumed::from(&m);
                    batch.push(c.position);
                    self.write(c.event, &mut pending, &mut done).await?;
                }
                Ok(Err(e)) => tracing::warn!(pipeline = %self.name, error = %e, "source error"),
                Err(_) => break,
            }
        }
        for f in pending {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(txn_error("write", &e)),
                Err(_) => return Err(Error::Source("the producer closed".into())),
            }
        }
        let mut after: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for p in batch.iter() {
            after.insert((p.topic.as_str(), p.partition), p.offset + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), offset) in &after {
            offsets
                .add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(|e| Error::Source(e.to_string()))?;
        }
        tokio::task::block_in_place(|| {
            retrying(|| {
                self.producer
                    .send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT)
            })
            .map_err(|e| txn_error("send offsets", &e))?;
            retrying(|| self.producer.commit_transaction(TXN_TIMEOUT))
                .map_err(|e| txn_error("commit", &e))
        })?;
        Ok(done)
    }

    /// Transforms one event and hands what it becomes to the producer.
    async fn write(
        &self,
        event: Event,
        pending: &mut Vec<DeliveryFuture>,
        done: &mut Done,
    ) -> Result<()> {
        match self.transforms.apply(event.clone()) {
            Ok(Outcome::Dropped) => done.filtered += 1,
            Ok(Outcome::Send(event, targets)) => {
                for (name, k) in &self.destinations {
                    if targets.as_ref().is_none_or(|t| t.contains(name)) {
                        pending.push(self.send(k, &event).await?);
                    }
                }
                done.delivered += 1;
            }
            Err(e) => {
                let failure = e.delivery_error();
                let Some(dlq) = &self.dead_letter else {
                    return Err(Error::from(failure));
                };
                pending.push(self.send(dlq, &dead_letter_event(&event, &failure)).await?);
                done.delivered += 1;
                done.dead_lettered += 1;
            }
        }
        Ok(())
    }

    async fn send(&self, k: &KafkaConfig, event: &Event) -> Result<DeliveryFuture> {
        crate::sinks::kafka::send_record(&self.producer, crate::sinks::kafka::record(k, event))
            .await
            .map_err(|e| txn_error("write", &e))
    }

    /// Moves the consumer back to the first offset of each partition in `batch`.
    fn rewind(&self, batch: &[Position]) {
        let mut first: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for p in batch {
            first
                .entry((p.topic.as_str(), p.partition))
                .or_insert(p.offset);
        }
        for ((topic, partition), offset) in first {
            if let Err(e) = self.consumer.seek(
                topic,
                partition,
                Offset::Offset(offset),
                Duration::from_secs(10),
            ) {
                // The partition moved to another member, which starts from the last commit.
                tracing::debug!(%topic, partition, error = %e, "rewind skipped");
            }
        }
    }
}

#[derive(Default)]
struct Done {
    delivered: u64,
    filtered: u64,
    dead_lettered: u64,
}

/// Where a consumed record was.
#[derive(Clone)]
struct Position {
    topic: String,
    partition: i32,
    offset: i64,
}

/// A consumed record, detached from the consumer's buffer.
struct Consumed {
    position: Position,
    event: Event,
}

impl From<&rdkafka::message::BorrowedMessage<'_>> for Consumed {
    fn from(m: &rdkafka::message::BorrowedMessage<'_>) -> Consumed {
        Consumed {
            position: Position {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
            },
            event: source::event(m),
        }
    }
}

/// Runs a transactional call again while librdkafka says the same call may succeed (a
/// timeout, a coordinator moving) — aborting then would be refused.
fn retrying(
    mut call: impl FnMut() -> rdkafka::error::KafkaResult<()>,
) -> rdkafka::error::KafkaResult<()> {
    let mut attempts = 0;
    loop {
        match call() {
            Err(rdkafka::error::KafkaError::Transaction(e))
                if e.is_retriable() && !e.txn_requires_abort() && attempts < 5 =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100 << attempts));
            }
            other => return other,
        }
    }
}

/// A failed transactional step: retriable (abort and read the batch again) unless
/// librdkafka says the producer itself is done for.
fn txn_error(step: &str, e: &rdkafka::error::KafkaError) -> Error {
    let mut failure = crate::sinks::kafka::failure(e);
    if let rdkafka::error::KafkaError::Transaction(t) = e {
        failure.retriable = !t.is_fatal();
    }
    Error::from(DeliveryError {
        destination: format!("transaction ({step})"),
        failure,
        attempts: 1,
    })
}
