//! The proxy's Kafka side: one librdkafka producer per principal (its own credentials, so the
//! cluster's ACLs apply to each caller), topic metadata cached briefly, and delivery of a batch
//! of records with one result each.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::ClientConfig;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};

/// Producer settings the proxy applies unless its Kafka settings say otherwise: durable,
/// idempotent, and a short linger because each HTTP request already is a batch.
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("linger.ms", "1"),
    ("compression.type", "lz4"),
    // Keys land on the partitions Java clients (and Confluent's REST Proxy) choose.
    ("partitioner", "murmur2_random"),
    // Metadata lookups must not create the topics they ask about: unknown topics are a 404.
    ("allow.auto.create.topics", "false"),
];

/// How long a topic's partition count is trusted.
const METADATA_TTL: Duration = Duration::from_secs(10);
/// How long a metadata request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Producers kept at once (one per principal); beyond it new principals get a 503.
const MAX_PRODUCERS: usize = 1_000;

/// A record on its way to Kafka.
pub(crate) struct Outgoing {
    /// Partition, or `None` to let the partitioner choose (by key).
    pub(crate) partition: Option<i32>,
    /// Key bytes.
    pub(crate) key: Option<Vec<u8>>,
    /// Value bytes (`None`: a tombstone).
    pub(crate) value: Option<Vec<u8>>,
    /// Headers.
    pub(crate) headers: OwnedHeaders,
    /// Timestamp in ms since the epoch, or `None` for now.
    pub(crate) timestamp: Option<i64>,
}

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// Partition.
    pub(crate) partition: i32,
    /// Offset.
    pub(crate) offset: i64,
    /// The timestamp the record was written with (ms).
    pub(crate) timestamp: Option<i64>,
}

/// Why one record was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed {
    /// What kind of failure.
    pub(crate) kind: FailureKind,
    /// Kafka's error.
    pub(crate) message: String,
}

/// The kinds of record failure clients react to differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The cluster refused the principal (ACLs).
    Authorization,
    /// The principal's login failed.
    Authentication,
    /// Larger than the cluster takes.
    TooLarge,
    /// Sending it again may succeed.
    Retriable,
    /// Anything else.
    Other,
}

impl Failed {
    /// The code REST Proxy clients know for it: 40301, 40101, and 50003 (retriable) or
    /// 50002 (not) like Confluent's proxy; v3 reports a record too large as 413.
    pub(crate) fn code(&self, v3: bool) -> u32 {
        match self.kind {
            FailureKind::Authorization => 40301,
            FailureKind::Authentication => 40101,
            FailureKind::TooLarge if v3 => 413,
            FailureKind::Retriable => 50003,
            FailureKind::TooLarge | FailureKind::Other => 50002,
        }
    }

    /// As a request-level error.
    pub(crate) fn into_api_error(self) -> ApiError {
        let code = self.code(false);
        let status = match self.kind {
            FailureKind::Authorization => axum::http::StatusCode::FORBIDDEN,
            FailureKind::Authentication => axum::http::StatusCode::UNAUTHORIZED,
            _ => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, code, self.message)
    }
}

/// Kafka clients of all principals.
pub(crate) struct Kafka {
    base: BTreeMap<String, String>,
    delivery_timeout: Duration,
    producers: Mutex<HashMap<String, Arc<TopicProducer>>>,
}

impl Kafka {
    /// Clients built from `base` (librdkafka settings: bootstrap servers, security); records
    /// not acknowledged within `delivery_timeout` fail.
    pub(crate) fn new(base: BTreeMap<String, String>, delivery_timeout: Duration) -> Self {
        Kafka {
            base,
            delivery_timeout,
            producers: Mutex::default(),
        }
    }

    /// librdkafka settings for `principal`: the proxy's, then the principal's over them.
    pub(crate) fn settings(&self, principal: &Principal) -> BTreeMap<String, String> {
        let mut props = self.base.clone();
        props.extend(principal.kafka.iter().map(|(k, v)| (k.clone(), v.clone())));
        props
    }

    /// The producer acting for `principal`, created on first use.
    pub(crate) fn producer(&self, principal: &Principal) -> ApiResult<Arc<TopicProducer>> {
        let mut producers = self.producers.lock();
        if let Some(p) = producers.get(&principal.name) {
            return Ok(Arc::clone(p));
        }
        if producers.len() >= MAX_PRODUCERS {
            return Err(ApiError::unavailable(
                "too many principals have producers open",
            ));
        }
        let mut props: BTreeMap<String, String> = PRODUCER_DEFAULTS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        // A record not acknowledged in time fails rather than holding its request.
        props.insert(
            "message.timeout.ms".to_owned(),
            self.delivery_timeout.as_millis().to_string(),
        );
        props.extend(self.settings(principal));
        let producer: FutureProducer = client_config(&props)
            .create()
            .map_err(|e| ApiError::kafka(format!("cannot create a Kafka producer: {e}")))?;
        let p = Arc::new(TopicProducer {
            producer,
            partitions: RwLock::default(),
        });
        producers.insert(principal.name.clone(), Arc::clone(&p));
        Ok(p)
    }

    /// Flushes every producer (on shutdown: acknowledged requests are written already; this
    /// only waits for records of requests still being answered).
    pub(crate) fn flush(&self, timeout: Duration) {
        for p in self.producers.lock().values() {
            let _ = p.producer.flush(timeout);
        }
    }
}

/// librdkafka configuration from properties.
pub(crate) fn client_config(props: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in props {
        config.set(k, v);
    }
    config
}

/// A producer and what it knows of topics.
pub(crate) struct TopicProducer {
    producer: FutureProducer,
    partitions: RwLock<HashMap<String, (i32, Instant)>>,
}

impl TopicProducer {
    /// How many partitions `topic` has: 404 when it does not exist, 403 when the principal
    /// may not see it.
    pub(crate) async fn partitions(&self, topic: &str) -> ApiResult<i32> {
        if let Some((n, at)) = self.partitions.read().get(topic) {
            if at.elapsed() < METADATA_TTL {
                return Ok(*n);
            }
        }
        let n = topic_partitions(self.producer.clone(), topic).await?;
        let mut cache = self.partitions.write();
        if cache.len() >= 10_000 {
            cache.clear();
        }
        cache.insert(topic.to_owned(), (n, Instant::now()));
        Ok(n)
    }

    /// The cluster's id.
    pub(crate) async fn cluster_id(&self) -> ApiResult<String> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_cluster_id(METADATA_TIMEOUT))
            .await
            .map_err(|e| ApiError::kafka(format!("metadata task failed: {e}")))?
            .ok_or_else(|| ApiError::kafka_retriable("the cluster did not tell its id"))
    }

    /// Every topic the principal may see.
    pub(crate) async fn topics(&self) -> ApiResult<Vec<TopicInfo>> {
        metadata(self.producer.clone(), None).await
    }

    /// Sends `records` to `topic` and waits for each one's result, in order.
    pub(crate) async fn send(
        &self,
        topic: &str,
        records: Vec<Outgoing>,
        timeout: Duration,
    ) -> Vec<Result<Delivered, Failed>> {
        let deadline = Instant::now() + timeout;
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            pending.push(self.enqueue(topic, r, deadline).await);
        }
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(match p {
                Ok(future) => delivered(future).await,
                Err(f) => Err(f),
            });
        }
        out
    }

    /// Hands one record to librdkafka, waiting while its queue is full; the future resolves
    /// once Kafka acknowledged it (see [`delivered`]).
    pub(crate) async fn enqueue(
        &self,
        topic: &str,
        r: Outgoing,
        deadline: Instant,
    ) -> Result<rdkafka::producer::DeliveryFuture, Failed> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(r.headers);
        if let Some(k) = &r.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            record = record.payload(v.as_slice());
        }
        if let Some(p) = r.partition {
            record = record.partition(p);
        }
        if let Some(t) = r.timestamp {
            record = record.timestamp(t);
        }
        loop {
            match self.producer.send_result(record) {
                Ok(f) => return Ok(f),
                // librdkafka hands the record back when its queue is full: wait and offer it
                // again (no copy).
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => return Err(failed(&e)),
            }
        }
    }
}

/// Waits for a record's acknowledgement.
pub(crate) async fn delivered(
    future: rdkafka::producer::DeliveryFuture,
) -> Result<Delivered, Failed> {
    match future.await {
        Ok(Ok(d)) => Ok(Delivered {
            partition: d.partition,
            offset: d.offset,
            timestamp: d.timestamp.to_millis(),
        }),
        Ok(Err((e, _))) => Err(failed(&e)),
        Err(_) => Err(Failed {
            kind: FailureKind::Retriable,
            message: "the producer was closed before the record was delivered".into(),
        }),
    }
}

/// A topic as metadata shows it.
#[derive(Debug, Clone)]
pub(crate) struct TopicInfo {
    /// Name.
    pub(crate) name: String,
    /// Partitions: (id, leader, replicas, in-sync replicas).
    pub(crate) partitions: Vec<(i32, i32, Vec<i32>, Vec<i32>)>,
}

async fn topic_partitions(producer: FutureProducer, topic: &str) -> ApiResult<i32> {
    let topics = metadata(producer, Some(topic.to_owned())).await?;
    let found = topics
        .into_iter()
        .find(|t| t.name == topic)
        .ok_or_else(|| ApiError::topic_not_found(topic))?;
    Ok(found.partitions.len() as i32)
}

/// Reads metadata (blocking in librdkafka, so off the async threads).
async fn metadata(producer: FutureProducer, topic: Option<String>) -> ApiResult<Vec<TopicInfo>> {
    tokio::task::spawn_blocking(move || {
        let md = client_metadata(&producer, topic.as_deref())?;
        let mut out = Vec::with_capacity(md.topics().len());
        for t in md.topics() {
            if let Some(err) = t.error() {
                let code = RDKafkaErrorCode::from(err);
                return Err(match code {
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => {
                        ApiError::topic_not_found(t.name())
                    }
                    RDKafkaErrorCode::TopicAuthorizationFailed => ApiError::forbidden(format!(
                        "Not authorized to access topics: [{}]",
                        t.name()
                    )),
                    other if sluice_sdk::error::is_retriable(other) => {
                        ApiError::kafka_retriable(format!("metadata of {}: {other}", t.name()))
                    }
                    other => ApiError::kafka(format!("metadata of {}: {other}", t.name())),
                });
            }
            out.push(TopicInfo {
                name: t.name().to_owned(),
                partitions: t
                    .partitions()
                    .iter()
                    .map(|p| (p.id(), p.leader(), p.replicas().to_vec(), p.isr().to_vec()))
                    .collect(),
            });
        }
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::kafka(format!("metadata task failed: {e}")))?
}

/// One metadata request (blocking).
fn client_metadata(
    producer: &FutureProducer,
    topic: Option<&str>,
) -> ApiResult<rdkafka::metadata::Metadata> {
    producer
        .client()
        .fetch_metadata(topic, METADATA_TIMEOUT)
        .map_err(|e| match e.rdkafka_error_code() {
            Some(code) if sluice_sdk::error::is_retriable(code) => {
                ApiError::kafka_retriable(format!("cannot read metadata: {e}"))
            }
            _ => ApiError::kafka(format!("cannot read metadata: {e}")),
        })
}

/// Kafka's error as a per-record failure.
pub(crate) fn failed(e: &KafkaError) -> Failed {
    use RDKafkaErrorCode as C;
    let kind = match e.rdkafka_error_code() {
        Some(
            C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed,
        ) => FailureKind::Authorization,
        Some(C::SaslAuthenticationFailed | C::Authentication) => FailureKind::Authentication,
        Some(C::MessageSizeTooLarge | C::MessageBatchTooLarge) => FailureKind::TooLarge,
        Some(code) if sluice_sdk::error::is_retriable(code) => FailureKind::Retriable,
        _ => FailureKind::Other,
    };
    Failed {
        kind,
        message: e.to_string(),
    }
}
