//! The schema-aware producer: registers schemas on first use, frames payloads, chooses the
//! partition itself so `producer_seq` can be assigned per partition before sending.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use prost_reflect::ReflectMessage;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use tokio::sync::Semaphore;

use crate::config::{client_config, SdkConfig};
use crate::error::{Error, Result};
use crate::headers::{now_ms, Provenance};
use crate::lint;
use crate::registry::RegistryClient;
use crate::schema::{self, AvroRecord, AvroSchemaCache, JsonRecord};
use crate::wire;

/// A record framed and stamped, with its partition chosen, ready for [`Producer::send_prepared`].
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Destination topic.
    pub topic: String,
    /// Destination partition.
    pub partition: i32,
    /// Optional key.
    pub key: Option<Vec<u8>>,
    /// Confluent-framed payload.
    pub payload: Vec<u8>,
    /// Provenance headers.
    pub provenance: Provenance,
}

/// Schema-aware producer; share it behind an `Arc` (all methods take `&self`).
pub struct Producer {
    inner: FutureProducer,
    registry: RegistryClient,
    config: SdkConfig,
    producer_id: String,
    partitions: Mutex<HashMap<String, i32>>,
    seqs: Mutex<HashMap<(String, i32), u64>>,
    round_robin: AtomicU64,
    waiting: Semaphore,
    ids: RwLock<HashMap<String, HashMap<String, u32>>>,
    avro: AvroSchemaCache,
}

impl Producer {
    /// Builds a producer (platform defaults under the application's settings), logging any
    /// linter findings for the effective configuration.
    pub fn new(config: SdkConfig) -> Result<Self> {
        let props = config.producer_properties();
        for f in lint::lint(&props) {
            tracing::warn!(finding = %f, "producer configuration");
        }
        let inner: FutureProducer =
            client_config(&props)
                .create()
                .map_err(|source| Error::Kafka {
                    context: "creating the producer".to_owned(),
                    source,
                })?;
        let registry = RegistryClient::new(&config.registry_url, config.retry)?;
        Ok(Producer {
            inner,
            registry,
            producer_id: uuid::Uuid::now_v7().to_string(),
            partitions: Mutex::default(),
            seqs: Mutex::default(),
            round_robin: AtomicU64::new(0),
            waiting: Semaphore::new(config.buffer_capacity.max(1)),
            ids: RwLock::default(),
            avro: AvroSchemaCache::default(),
            config,
        })
    }

    /// The id written in `producer_id`: one per producer instance.
    pub fn producer_id(&self) -> &str {
        &self.producer_id
    }

    /// Sends a protobuf message, registering its file (imports as references) on first use.
    pub async fn send<T: ReflectMessage>(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        msg: &T,
    ) -> Result<(i32, i64)> {
        let p = self.prepare(topic, key, msg).await?;
        self.send_prepared(&p).await
    }

    /// Sends a serde value as Avro with the type's schema.
    pub async fn send_avro<T: AvroRecord>(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &T,
    ) -> Result<(i32, i64)> {
        let p = self.prepare_avro(topic, key, value).await?;
        self.send_prepared(&p).await
    }

    /// Sends a serde value as JSON with the type's JSON Schema.
    pub async fn send_json<T: JsonRecord>(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &T,
    ) -> Result<(i32, i64)> {
        let p = self.prepare_json(topic, key, value).await?;
        self.send_prepared(&p).await
    }

    /// Frames a protobuf message and assigns its partition and `producer_seq` without sending.
    pub async fn prepare<T: ReflectMessage>(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        msg: &T,
    ) -> Result<Prepared> {
        let desc = msg.descriptor();
        let file = desc.parent_file();
        let subject = self
            .config
            .subject_strategy
            .subject(topic, desc.full_name());
        let id = self
            .schema_id(&subject, desc.full_name(), async {
                let refs = schema::register_proto_dependencies(&self.registry, &file).await?;
                self.registry
                    .register(&subject, "PROTOBUF", &schema::serialized_file(&file), &refs)
                    .await
            })
            .await?;
        let mut payload = Vec::new();
        wire::frame_protobuf(&mut payload, id, &desc, msg);
        self.stamp(topic, key, payload, desc.full_name()).await
    }

    /// Frames an Avro value and assigns its partition and `producer_seq` without sending.
    pub async fn prepare_avro<T: AvroRecord>(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &T,
    ) -> Result<Prepared> {
        let avro_schema = self.avro.get::<T>()?;
        let name = schema::avro_full_name(&avro_schema);
        let subject = self.config.subject_strategy.subject(topic, &name);
        let id = self
            .schema_id(
                &subject,
                T::schema(),
                self.registry.register(&subject, "AVRO", T::schema(), &[]),
            )
            .await?;
        let ser_err = |e: apache_avro::Error| Error::Serialize {
            type_name: name.clone(),
            reason: e.to_string(),
        };
        let v = apache_avro::to_value(value)
            .and_then(|v| v.resolve(&avro_schema))
            .map_err(ser_err)?;
        let body = apache_avro::to_avro_datum(&avro_schema, v).map_err(ser_err)?;
        let mut payload = Vec::with_capacity(body.len() + 5);
        wire::write_header(&mut payload, id);
        payload.extend_from_slice(&body);
        self.stamp(topic, key, payload, &name).await
    }

    /// Frames a JSON value and assigns its partition and `producer_seq` without sending.
    pub async fn prepare_json<T: JsonRecord>(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &T,
    ) -> Result<Prepared> {
        let parsed: serde_json::Value =
            serde_json::from_str(T::schema()).map_err(|e| Error::InvalidSchema {
                kind: "JSON",
                name: std::any::type_name::<T>().to_owned(),
                reason: e.to_string(),
            })?;
        let name = schema::json_title(&parsed);
        let subject = self.config.subject_strategy.subject(topic, &name);
        let id = self
            .schema_id(
                &subject,
                T::schema(),
                self.registry.register(&subject, "JSON", T::schema(), &[]),
            )
            .await?;
        let mut payload = Vec::with_capacity(64);
        wire::write_header(&mut payload, id);
        serde_json::to_writer(&mut payload, value).map_err(|e| Error::Serialize {
            type_name: name.clone(),
            reason: e.to_string(),
        })?;
        self.stamp(topic, key, payload, &name).await
    }

    /// Sends a prepared record to its partition; returns (partition, offset).
    pub async fn send_prepared(&self, p: &Prepared) -> Result<(i32, i64)> {
        let headers = p.provenance.to_headers();
        let mut record = FutureRecord::<[u8], [u8]>::to(&p.topic)
            .partition(p.partition)
            .payload(&p.payload)
            .headers(headers);
        if let Some(k) = &p.key {
            record = record.key(k);
        }
        match self.inner.send(record, self.config.delivery_timeout).await {
            Ok(d) => Ok((d.partition, d.offset)),
            Err((e, _)) => Err(self.kafka_error(&p.topic, "delivering a record", e)),
        }
    }

    /// Waits until every queued record is delivered or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner
            .flush(timeout)
            .map_err(|e| self.kafka_error("*", "flushing", e))
    }

    /// The schema id for `subject` and `schema` (a record name or schema text): from the
    /// cache, else by running `register` while holding one of the bounded "waiting" slots.
    async fn schema_id<F: std::future::Future<Output = Result<(u32, i32)>>>(
        &self,
        subject: &str,
        schema: &str,
        register: F,
    ) -> Result<u32> {
        if let Some(id) = self
            .ids
            .read()
            .get(subject)
            .and_then(|by_schema| by_schema.get(schema))
        {
            return Ok(*id);
        }
        let _slot = self.waiting.try_acquire().map_err(|_| Error::BufferFull {
            capacity: self.config.buffer_capacity,
        })?;
        let (id, _) = register.await?;
        self.ids
            .write()
            .entry(subject.to_owned())
            .or_default()
            .insert(schema.to_owned(), id);
        Ok(id)
    }

    async fn stamp(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Vec<u8>,
        event_type: &str,
    ) -> Result<Prepared> {
        let partition = self.partition_for(topic, key).await?;
        let seq = {
            let mut seqs = self.seqs.lock();
            let s = seqs.entry((topic.to_owned(), partition)).or_insert(0);
            let cur = *s;
            *s += 1;
            cur
        };
        Ok(Prepared {
            topic: topic.to_owned(),
            partition,
            key: key.map(<[u8]>::to_vec),
            payload,
            provenance: Provenance {
                service_id: Some(self.config.service_id.clone()),
                event_time_ms: Some(now_ms()),
                event_type: Some(event_type.to_owned()),
                event_id: Some(uuid::Uuid::now_v7().to_string()),
                producer_id: Some(self.producer_id.clone()),
                producer_seq: Some(seq),
            },
        })
    }

    /// Kafka's default partitioner for keys (murmur2), round-robin without a key.
    async fn partition_for(&self, topic: &str, key: Option<&[u8]>) -> Result<i32> {
        let count = self.partition_count(topic).await?;
        let n = match key {
            Some(k) => (murmur2(k) & 0x7fff_ffff) % count as u32,
            None => (self.round_robin.fetch_add(1, Ordering::Relaxed) % count as u64) as u32,
        };
        Ok(n as i32)
    }

    async fn partition_count(&self, topic: &str) -> Result<i32> {
        if let Some(n) = self.partitions.lock().get(topic) {
            return Ok(*n);
        }
        let mut last = None;
        for attempt in 0..20u32 {
            let producer = self.inner.clone();
            let t = topic.to_owned();
            let md = tokio::task::spawn_blocking(move || {
                producer
                    .client()
                    .fetch_metadata(Some(&t), Duration::from_secs(5))
                    .map(|m| {
                        m.topics()
                            .first()
                            .map(|t| (t.partitions().len(), t.error()))
                    })
            })
            .await
            .map_err(|e| Error::Config(format!("metadata task failed: {e}")))?;
            match md {
                Ok(Some((n, None))) if n > 0 => {
                    let n = n as i32;
                    self.partitions.lock().insert(topic.to_owned(), n);
                    return Ok(n);
                }
                Ok(Some((_, Some(code)))) => {
                    let code = RDKafkaErrorCode::from(code);
                    if code == RDKafkaErrorCode::TopicAuthorizationFailed {
                        return Err(self.authz(topic));
                    }
                    last = Some(KafkaError::MetadataFetch(code));
                }
                Ok(_) => {}
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt + 1))).await;
        }
        Err(self.kafka_error(
            topic,
            "fetching the topic's partitions",
            last.unwrap_or(KafkaError::MetadataFetch(
                RDKafkaErrorCode::UnknownTopicOrPartition,
            )),
        ))
    }

    fn authz(&self, topic: &str) -> Error {
        Error::Authorization {
            topic: topic.to_owned(),
            principal: format!("User:CN={}", self.config.service_id),
        }
    }

    fn kafka_error(&self, topic: &str, context: &str, e: KafkaError) -> Error {
        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::TopicAuthorizationFailed) {
            return self.authz(topic);
        }
        Error::Kafka {
            context: format!("{context} (topic {topic})"),
            source: e,
        }
    }
}

/// Kafka's murmur2 (the Java client's `Utils.murmur2`), so keys land where other clients put them.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if let Some(&b) = rest.first() {
        h ^= u32::from(b);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn murmur2_matches_java_client() {
        // Values from the Java client's UtilsTest.
        assert_eq!(super::murmur2(b"21") as i32, -973932308);
        assert_eq!(super::murmur2(b"foobar") as i32, -790332482);
        assert_eq!(
            super::murmur2(b"a-little-bit-long-string") as i32,
            -985981536
        );
    }
}
