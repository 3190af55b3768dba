//! The Kafka source: a consumer group whose offsets the pipeline stores itself.

use std::collections::BTreeMap;

use bytes::Bytes;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::ClientConfig;

use super::config::KafkaSourceConfig;
use crate::error::{Error, Result};
use crate::event::Event;

/// Consumer properties at-least-once depends on; a file cannot change them: offsets are
/// committed in the background, but only those the pipeline stored — the ones every
/// destination acknowledged.
const STORED_COMMITS: &[(&str, &str)] = &[
    ("enable.auto.commit", "true"),
    ("enable.auto.offset.store", "false"),
];

/// Consumer properties exactly-once depends on: offsets are committed only inside the
/// producer's transactions.
const TRANSACTIONAL_COMMITS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("isolation.level", "read_committed"),
];

/// Subscribes a consumer for `config` whose offsets the pipeline stores for commit.
pub(crate) fn subscribe(config: &KafkaSourceConfig) -> Result<StreamConsumer> {
    subscribe_with(config, STORED_COMMITS)
}

/// Subscribes a consumer for `config` whose offsets only transactions commit.
pub(crate) fn subscribe_manual(config: &KafkaSourceConfig) -> Result<StreamConsumer> {
    subscribe_with(config, TRANSACTIONAL_COMMITS)
}

fn subscribe_with(
    config: &KafkaSourceConfig,
    fixed: &[(&'static str, &'static str)],
) -> Result<StreamConsumer> {
    let mut props: BTreeMap<&str, &str> = config
        .properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    props.entry("auto.offset.reset").or_insert("earliest");
    props.entry("auto.commit.interval.ms").or_insert("1000");
    // A destination that pushes back stops the pipeline from polling for as long as it is
    // down (up to its delivery timeout); librdkafka must not take that for a hung consumer
    // and leave the group (its background thread keeps the session alive meanwhile).
    props.entry("max.poll.interval.ms").or_insert("3600000");
    // librdkafka prefetches up to 64 MiB per consumer by default; while a destination pushes
    // back that is memory held for nothing, so a pipeline prefetches 16 MiB.
    props.entry("queued.max.messages.kbytes").or_insert("16384");
    props.extend(fixed.iter().copied());
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

/// The next record, or `None` after a consumer error, which is logged and followed by a short
/// pause: librdkafka retries broker errors itself, so reading goes on.
pub(crate) async fn next<'a>(
    consumer: &'a StreamConsumer,
    pipeline: &str,
) -> Option<BorrowedMessage<'a>> {
    match consumer.recv().await {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(pipeline, error = %e, "source error");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            None
        }
    }
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
