//! The schema-aware consumer: header filtering before any decode, decoding by schema id
//! (typed or dynamic), latency histogram, completeness audit and dead-lettering.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hdrhistogram::Histogram;
use parking_lot::{Mutex, RwLock};
use prost_reflect::{DynamicMessage, FileDescriptor, ReflectMessage};
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::audit::{Audit, AuditReport, LatencySummary};
use crate::config::{client_config, SdkConfig};
use crate::error::{Error, Result};
use crate::headers::{now_ms, Provenance};
use crate::lint;
use crate::registry::RegistryClient;
use crate::schema::{self, AvroRecord, AvroSchemaCache, JsonRecord};
use crate::wire;

/// Header naming why a dead-lettered record could not be decoded.
pub const DLQ_REASON: &str = "dlq_reason";
/// Header naming where a dead-lettered record came from (`topic/partition@offset`).
pub const DLQ_SOURCE: &str = "dlq_source";

/// A consumed record that passed the header filter; its payload is not decoded yet.
#[derive(Debug, Clone)]
pub struct Received {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// The framed payload (empty for a tombstone).
    pub payload: Vec<u8>,
    /// Provenance headers.
    pub provenance: Provenance,
}

/// A payload decoded without a compile-time type.
#[derive(Debug, Clone)]
pub enum DynamicValue {
    /// A protobuf message described by the registry's descriptor.
    Protobuf(DynamicMessage),
    /// An Avro value converted to JSON.
    Avro(serde_json::Value),
    /// A JSON Schema payload.
    Json(serde_json::Value),
}

/// Counters of a consumer, as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerMetrics {
    /// Records read from Kafka.
    pub received: u64,
    /// Records the header filter dropped before any decoding.
    pub skipped_decodes: u64,
    /// Payloads decoded successfully.
    pub decoded: u64,
    /// Payloads that failed to decode.
    pub undecodable: u64,
    /// Undecodable payloads copied to the dead-letter topic.
    pub dead_lettered: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    skipped: AtomicU64,
    decoded: AtomicU64,
    undecodable: AtomicU64,
    dead_lettered: AtomicU64,
}

enum WriterSchema {
    Protobuf(FileDescriptor),
    Avro(apache_avro::Schema),
    Json,
}

type Filter = Box<dyn Fn(&Provenance) -> bool + Send + Sync>;

/// Schema-aware consumer.
pub struct Consumer {
    inner: StreamConsumer,
    registry: RegistryClient,
    filter: Option<Filter>,
    dead_letter: Option<(FutureProducer, String)>,
    counters: Counters,
    audit: Mutex<Audit>,
    latency: Mutex<Histogram<u64>>,
    writers: RwLock<HashMap<u32, Arc<WriterSchema>>>,
    readers: AvroSchemaCache,
    type_names: RwLock<HashMap<std::any::TypeId, Arc<str>>>,
    config: SdkConfig,
}

impl Consumer {
    /// A consumer in `group` subscribed to `topics`, logging linter findings at start-up.
    pub fn new(config: SdkConfig, group: &str, topics: &[&str]) -> Result<Self> {
        let props = config.consumer_properties(group);
        for f in lint::lint(&props) {
            tracing::warn!(finding = %f, "consumer configuration");
        }
        let inner: StreamConsumer =
            client_config(&props)
                .create()
                .map_err(|source| Error::Kafka {
                    context: "creating the consumer".to_owned(),
                    source,
                })?;
        inner.subscribe(topics).map_err(|source| Error::Kafka {
            context: format!("subscribing to {topics:?}"),
            source,
        })?;
        let latency =
            Histogram::new(3).map_err(|e| Error::Config(format!("latency histogram: {e}")))?;
        Ok(Consumer {
            inner,
            registry: RegistryClient::new(&config.registry_url, config.retry)?,
            filter: None,
            dead_letter: None,
            counters: Counters::default(),
            audit: Mutex::default(),
            latency: Mutex::new(latency),
            writers: RwLock::default(),
            readers: AvroSchemaCache::default(),
            type_names: RwLock::default(),
            config,
        })
    }

    /// Only records whose headers satisfy `keep` are returned; the rest are skipped undecoded.
    pub fn with_filter(
        mut self,
        keep: impl Fn(&Provenance) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.filter = Some(Box::new(keep));
        self
    }

    /// Copies undecodable records to `topic` (with `dlq_reason`/`dlq_source` headers) instead
    /// of only returning an error.
    pub fn with_dead_letter(mut self, topic: &str) -> Result<Self> {
        let producer: FutureProducer = client_config(&self.config.producer_properties())
            .create()
            .map_err(|source| Error::Kafka {
            context: "creating the dead-letter producer".to_owned(),
            source,
        })?;
        self.dead_letter = Some((producer, topic.to_owned()));
        Ok(self)
    }

    /// The next record that passes the filter. Every record read feeds the audit and latency
    /// histogram, filtered or not.
    pub async fn next(&self) -> Result<Received> {
        loop {
            let m = self.inner.recv().await.map_err(|e| {
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::TopicAuthorizationFailed) {
                    Error::Authorization {
                        topic: "subscribed topics".to_owned(),
                        principal: format!("User:CN={}", self.config.service_id),
                    }
                } else {
                    Error::Kafka {
                        context: "receiving".to_owned(),
                        source: e,
                    }
                }
            })?;
            let now = now_ms();
            self.counters.received.fetch_add(1, Ordering::Relaxed);
            let provenance = Provenance::from_headers(m.headers());
            if let Some(t) = provenance.event_time_ms {
                self.latency
                    .lock()
                    .saturating_record((now - t).max(0) as u64);
            }
            self.audit
                .lock()
                .observe(m.topic(), m.partition(), &provenance);
            if self.filter.as_ref().is_some_and(|keep| !keep(&provenance)) {
                self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            return Ok(Received {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                provenance,
            });
        }
    }

    /// Decodes a protobuf payload into `T`, after checking that the writer's schema id and
    /// message indexes name `T`'s message (so a record of another type is never misread).
    pub async fn decode<T: ReflectMessage + Default + 'static>(&self, r: &Received) -> Result<T> {
        let framed = match wire::parse(&r.payload) {
            Ok(f) => f,
            Err(e) => return self.finish(r, Err(e.to_string())).await,
        };
        let id = framed.schema_id;
        let expected = self.type_name::<T>();
        let writer = match self.writer_or_reason(id).await? {
            Ok(w) => w,
            Err(reason) => return self.finish(r, Err(reason)).await,
        };
        let WriterSchema::Protobuf(file) = writer.as_ref() else {
            let reason = format!("schema {id} is not a PROTOBUF schema");
            return self.finish(r, Err(reason)).await;
        };
        let out = wire::read_indexes(framed.body)
            .map_err(|e| e.to_string())
            .and_then(|(indexes, body)| match schema::message_at(file, &indexes) {
                Some(m) if m.full_name() == &*expected => {
                    T::decode(body).map_err(|e| e.to_string())
                }
                Some(m) => Err(format!(
                    "the record is a {} but {} was asked for",
                    m.full_name(),
                    expected
                )),
                None => Err(format!(
                    "message indexes {indexes:?} name no message in {}",
                    file.name()
                )),
            });
        self.finish(r, out).await
    }

    fn type_name<T: ReflectMessage + Default + 'static>(&self) -> Arc<str> {
        let key = std::any::TypeId::of::<T>();
        if let Some(n) = self.type_names.read().get(&key) {
            return n.clone();
        }
        let name: Arc<str> = Arc::from(T::default().descriptor().full_name());
        self.type_names.write().insert(key, name.clone());
        name
    }

    /// Decodes an Avro payload into `T`, resolving the writer's schema against `T`'s.
    pub async fn decode_avro<T: AvroRecord>(&self, r: &Received) -> Result<T> {
        let (f, writer) = match self.framed_with_writer(r).await? {
            Ok(found) => found,
            Err(reason) => return self.finish(r, Err(reason)).await,
        };
        let reader = self.readers.get::<T>()?;
        let out = match writer.as_ref() {
            WriterSchema::Avro(w) => {
                let mut body = f.body;
                apache_avro::from_avro_datum(w, &mut body, Some(&reader))
                    .and_then(|v| apache_avro::from_value::<T>(&v))
                    .map_err(|e| e.to_string())
            }
            _ => Err(format!("schema {} is not AVRO", f.schema_id)),
        };
        self.finish(r, out).await
    }

    /// Decodes a JSON payload into `T`.
    pub async fn decode_json<T: JsonRecord>(&self, r: &Received) -> Result<T> {
        let out = wire::parse(&r.payload)
            .map_err(|e| e.to_string())
            .and_then(|f| serde_json::from_slice(f.body).map_err(|e| e.to_string()));
        self.finish(r, out).await
    }

    /// Decodes any payload with the writer's schema from the registry.
    pub async fn decode_dynamic(&self, r: &Received) -> Result<DynamicValue> {
        let (f, writer) = match self.framed_with_writer(r).await? {
            Ok(found) => found,
            Err(reason) => return self.finish(r, Err(reason)).await,
        };
        let out = match writer.as_ref() {
            WriterSchema::Protobuf(file) => wire::read_indexes(f.body)
                .map_err(|e| e.to_string())
                .and_then(|(ix, body)| {
                    let desc = schema::message_at(file, &ix).ok_or_else(|| {
                        format!("message indexes {ix:?} name no message in {}", file.name())
                    })?;
                    DynamicMessage::decode(desc, body).map_err(|e| e.to_string())
                })
                .map(DynamicValue::Protobuf),
            WriterSchema::Avro(w) => {
                let mut body = f.body;
                apache_avro::from_avro_datum(w, &mut body, None)
                    .map_err(|e| e.to_string())
                    .and_then(|v| serde_json::Value::try_from(v).map_err(|e| e.to_string()))
                    .map(DynamicValue::Avro)
            }
            WriterSchema::Json => serde_json::from_slice(f.body)
                .map(DynamicValue::Json)
                .map_err(|e| e.to_string()),
        };
        self.finish(r, out).await
    }

    /// Counters so far.
    pub fn metrics(&self) -> ConsumerMetrics {
        let c = &self.counters;
        ConsumerMetrics {
            received: c.received.load(Ordering::Relaxed),
            skipped_decodes: c.skipped.load(Ordering::Relaxed),
            decoded: c.decoded.load(Ordering::Relaxed),
            undecodable: c.undecodable.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
        }
    }

    /// Completeness audit and latency percentiles so far.
    pub fn report(&self) -> AuditReport {
        let h = self.latency.lock();
        AuditReport {
            producers: self.audit.lock().producers(),
            latency: LatencySummary {
                count: h.len(),
                p50_ms: h.value_at_quantile(0.5),
                p99_ms: h.value_at_quantile(0.99),
                max_ms: h.max(),
            },
        }
    }

    /// Commits the consumed offsets now (auto-commit does it periodically).
    pub fn commit(&self) -> Result<()> {
        self.inner
            .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
            .map_err(|source| Error::Kafka {
                context: "committing offsets".to_owned(),
                source,
            })
    }

    async fn finish<T>(&self, r: &Received, out: std::result::Result<T, String>) -> Result<T> {
        match out {
            Ok(v) => {
                self.counters.decoded.fetch_add(1, Ordering::Relaxed);
                Ok(v)
            }
            Err(reason) => {
                self.counters.undecodable.fetch_add(1, Ordering::Relaxed);
                let dead_letter = self.dead_letter(r, &reason).await;
                Err(Error::Undecodable {
                    topic: r.topic.clone(),
                    partition: r.partition,
                    offset: r.offset,
                    reason,
                    dead_letter,
                })
            }
        }
    }

    async fn dead_letter(&self, r: &Received, reason: &str) -> Option<String> {
        let (producer, topic) = self.dead_letter.as_ref()?;
        let source = format!("{}/{}@{}", r.topic, r.partition, r.offset);
        let mut headers = r.provenance.to_headers();
        for (key, value) in [(DLQ_REASON, reason), (DLQ_SOURCE, source.as_str())] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record = FutureRecord::<[u8], [u8]>::to(topic)
            .payload(&r.payload)
            .headers(headers);
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        match producer.send(record, self.config.delivery_timeout).await {
            Ok(_) => {
                self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                Some(topic.clone())
            }
            Err((e, _)) => {
                tracing::error!(%source, error = %e, "cannot copy an undecodable record to the dead-letter topic");
                None
            }
        }
    }

    /// The writer's schema; `Ok(Err(reason))` when the id is unknown or its schema unusable,
    /// which makes the record undecodable (dead-lettered), unlike an unreachable registry.
    /// Parses `r`'s framing and fetches its writer schema; the inner `Err` is why the record
    /// cannot be decoded (it goes to the dead-letter path), the outer one a registry failure.
    async fn framed_with_writer<'r>(
        &self,
        r: &'r Received,
    ) -> Result<std::result::Result<(wire::Framed<'r>, Arc<WriterSchema>), String>> {
        let f = match wire::parse(&r.payload) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e.to_string())),
        };
        Ok(self.writer_or_reason(f.schema_id).await?.map(|w| (f, w)))
    }

    async fn writer_or_reason(
        &self,
        id: u32,
    ) -> Result<std::result::Result<Arc<WriterSchema>, String>> {
        match self.writer(id).await {
            Ok(w) => Ok(Ok(w)),
            Err(Error::Registry {
                status: 404,
                message,
                ..
            }) => Ok(Err(format!(
                "schema id {id} is unknown to the registry: {message}"
            ))),
            Err(e @ Error::InvalidSchema { .. }) => Ok(Err(e.to_string())),
            Err(e) => Err(e),
        }
    }

    async fn writer(&self, id: u32) -> Result<Arc<WriterSchema>> {
        if let Some(w) = self.writers.read().get(&id) {
            return Ok(w.clone());
        }
        let fetched = self.registry.schema_by_id(id).await?;
        let w = match fetched.schema_type.as_str() {
            "PROTOBUF" => {
                WriterSchema::Protobuf(schema::proto_file(&self.registry, &fetched).await?)
            }
            "JSON" => WriterSchema::Json,
            _ => WriterSchema::Avro(apache_avro::Schema::parse_str(&fetched.schema).map_err(
                |e| Error::InvalidSchema {
                    kind: "AVRO",
                    name: format!("schema id {id}"),
                    reason: e.to_string(),
                },
            )?),
        };
        let w = Arc::new(w);
        self.writers.write().insert(id, w.clone());
        Ok(w)
    }
}
