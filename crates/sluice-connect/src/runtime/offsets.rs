//! Source offsets in the offsets topic, in Kafka Connect's layout: key
//! `["<connector>", <source partition>]`, value the source offset, both JSON.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;

use super::kafka::KafkaSettings;
use super::topic_log::{LogRecord, TopicTail};
use crate::error::ConnectError;

/// Offsets read from and written to the offsets topic.
#[derive(Clone)]
pub(crate) struct OffsetStore {
    inner: Arc<Inner>,
}

struct Inner {
    topic: String,
    /// (connector, partition JSON) → offset.
    offsets: Arc<RwLock<HashMap<(String, String), Value>>>,
    tail: TopicTail,
    producer: FutureProducer,
}

fn key(connector: &str, partition: &Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([connector, partition])).unwrap_or_default()
}

impl OffsetStore {
    /// Follows `topic`.
    pub(crate) fn start(
        kafka: &KafkaSettings,
        topic: &str,
        producer: FutureProducer,
    ) -> Result<Self, ConnectError> {
        let offsets: Arc<RwLock<HashMap<(String, String), Value>>> = Arc::default();
        let tail = {
            let offsets = offsets.clone();
            TopicTail::start(
                kafka,
                topic,
                Box::new(move |r: LogRecord<'_>| {
                    let Some(Ok(Value::Array(k))) = r.key.map(serde_json::from_slice::<Value>)
                    else {
                        return;
                    };
                    let (Some(Value::String(connector)), Some(partition)) = (k.first(), k.get(1))
                    else {
                        return;
                    };
                    let id = (connector.clone(), partition.to_string());
                    match r.value.map(serde_json::from_slice::<Value>) {
                        Some(Ok(v)) => {
                            offsets.write().insert(id, v);
                        }
                        None => {
                            offsets.write().remove(&id);
                        }
                        Some(Err(_)) => {}
                    }
                }),
            )?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                topic: topic.to_owned(),
                offsets,
                tail,
                producer,
            }),
        })
    }

    /// The stored offset of `connector`'s source `partition`, after reading the topic to its
    /// end (another worker may have run the task until a moment ago).
    pub(crate) async fn read(
        &self,
        connector: &str,
        partition: &Value,
    ) -> Result<Option<Value>, ConnectError> {
        self.inner.tail.catch_up(Duration::from_secs(60)).await?;
        Ok(self
            .inner
            .offsets
            .read()
            .get(&(connector.to_owned(), partition.to_string()))
            .cloned())
    }

    /// All offsets of `connector`, as `(partition, offset)`.
    pub(crate) fn of(&self, connector: &str) -> Vec<(Value, Value)> {
        self.inner
            .offsets
            .read()
            .iter()
            .filter(|((c, _), _)| c == connector)
            .filter_map(|((_, p), o)| Some((serde_json::from_str(p).ok()?, o.clone())))
            .collect()
    }

    /// Stores an offset; returns once Kafka acknowledged it.
    pub(crate) async fn write(
        &self,
        connector: &str,
        partition: &Value,
        offset: &Value,
    ) -> Result<(), ConnectError> {
        let key = key(connector, partition);
        let value = serde_json::to_vec(offset).map_err(|e| ConnectError::Kafka(e.to_string()))?;
        self.inner
            .producer
            .send(
                FutureRecord::to(&self.inner.topic)
                    .key(&key)
                    .payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| {
                ConnectError::Kafka(format!("cannot store the offset of {connector}: {e}"))
            })?;
        Ok(())
    }
}
