//! The Kafka source: a consumer group whose offsets the pipeline stores itself.

use std::collections::BTreeMap;

use bytes::Bytes;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::ClientConfig;

use super::config::KafkaSourceConfig;
use crate::error::{Error, Result};
use crate::event::Event;

/// Consumer properties the pipeline's guarantee depends on; a file cannot change them.
const FIXED: &[(&str, &str)] = &[
    // Offsets are committed in the background, but only those the pipeline stored: the
    // ones every destination acknowledged.
    ("enable.auto.commit", "true"),
    ("enable.auto.offset.store", "false"),
];

/// Subscribes a consumer for `config`.
pub(crate) fn subscribe(config: &KafkaSourceConfig) -> Result<StreamConsumer> {
    let mut props: BTreeMap<&str, &str> = config
        .properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    props.entry("auto.offset.reset").or_insert("earliest");
    props.entry("auto.commit.interval.ms").or_insert("1000");
    props.extend(FIXED.iter().copied());
    let mut client = ClientConfig::new();
    for (k, v) in props {
        client.set(k, v);
    }
    let consumer: StreamConsumer = client
        .create()
        .map_err(|e| Error::Source(format!("cannot create the consumer: {e}")))?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| Error::Source(format!("cannot subscribe to {topics:?}: {e}")))?;
    Ok(consumer)
}

/// A consumed record as an event.
pub(crate) fn event(m: &BorrowedMessage<'_>) -> Event {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    (
                        h.key.to_owned(),
                        Bytes::copy_from_slice(h.value.unwrap_or_default()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Event {
        key: m.key().map(Bytes::copy_from_slice),
        value: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
        headers,
        timestamp_ms: m.timestamp().to_millis(),
    }
}
