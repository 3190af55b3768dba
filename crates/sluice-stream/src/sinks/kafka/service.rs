//! Records handed to librdkafka and their acknowledgements awaited, one outcome per record.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::ClientConfig;

use super::config::KafkaConfig;
use super::request_builder;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::sinks::{BatchLimits, Failure, Receipt, Service};

/// Records per call: librdkafka batches below, this only bounds one call's futures.
const MAX_RECORDS_PER_CALL: usize = 1000;

/// A Kafka topic as a [`Service`].
#[derive(Clone)]
pub struct KafkaService {
    producer: FutureProducer,
    config: KafkaConfig,
}

impl std::fmt::Debug for KafkaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaService")
            .field("topic", &self.config.topic)
            .finish()
    }
}

impl KafkaService {
    /// A producer for the topic in `config` (properties taken as given).
    pub fn new(config: KafkaConfig) -> Result<KafkaService> {
        let mut client = ClientConfig::new();
        for (k, v) in &config.properties {
            client.set(k, v);
        }
        let producer: FutureProducer = client.create().map_err(|e| Error::Destination {
            destination: format!("kafka topic {}", config.topic),
            message: format!("cannot create the producer: {e}"),
        })?;
        Ok(KafkaService { producer, config })
    }

    /// Whether the cluster answers a metadata request for `topic` within two seconds.
    pub(crate) async fn probe(&self, topic: &str) -> bool {
        let producer = self.producer.clone();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(2))
                .is_ok_and(|m| m.topics().iter().any(|t| t.error().is_none()))
        })
        .await
        .unwrap_or(false)
    }
}

/// Hands `record` to librdkafka, waiting while its queue is full.
pub(crate) async fn send_record(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, [u8], [u8]>,
) -> Result<DeliveryFuture, KafkaError> {
    loop {
        match producer.send_result(record) {
            Ok(f) => return Ok(f),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

impl Service for KafkaService {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: MAX_RECORDS_PER_CALL,
            max_bytes: usize::MAX,
        }
    }

    fn check(&self, event: &Event) -> Result<usize, Failure> {
        request_builder::size(&self.config, event)
    }

    async fn send(&self, batch: &[Event]) -> Result<Vec<Result<Receipt, Failure>>, Failure> {
        let mut futures = Vec::with_capacity(batch.len());
        for event in batch {
            let record = request_builder::record(&self.config, event);
            futures.push(
                send_record(&self.producer, record)
                    .await
                    .map_err(|e| failure(&e)),
            );
        }
        let mut out = Vec::with_capacity(batch.len());
        for f in futures {
            out.push(match f {
                Err(e) => Err(e),
                Ok(f) => match f.await {
                    Ok(Ok(d)) => Ok(Receipt {
                        id: Some(format!(
                            "{}-{}@{}",
                            self.config.topic, d.partition, d.offset
                        )),
                    }),
                    Ok(Err((e, _))) => Err(failure(&e)),
                    Err(_) => Err(Failure::transient(
                        "Closed",
                        "the producer closed before delivery",
                    )),
                },
            });
        }
        Ok(out)
    }
}

/// A librdkafka error as a [`Failure`], retriable when Kafka or librdkafka says so.
pub(crate) fn failure(e: &KafkaError) -> Failure {
    let code = e
        .rdkafka_error_code()
        .map_or_else(|| "KafkaError".to_owned(), |c| format!("{c:?}"));
    let retriable = e
        .rdkafka_error_code()
        .is_some_and(sluice_sdk::error::is_retriable);
    Failure {
        code,
        message: e.to_string(),
        retriable,
    }
}
