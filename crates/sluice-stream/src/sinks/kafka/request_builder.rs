//! An event → a librdkafka record.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use super::config::KafkaConfig;
use crate::event::Event;
use crate::sinks::Failure;

/// Record overhead librdkafka adds to key, value and headers when it checks the size.
const RECORD_OVERHEAD: usize = 64;

/// The bytes `event` takes as a record, or why the producer would refuse it.
pub(crate) fn size(config: &KafkaConfig, event: &Event) -> Result<usize, Failure> {
    let size = event.size() + RECORD_OVERHEAD;
    let max = config.message_max_bytes();
    if size > max {
        return Err(Failure::permanent(
            "MessageSizeTooLarge",
            format!("record of about {size} bytes is over message.max.bytes={max}"),
        ));
    }
    Ok(size)
}

/// The record for `event`, borrowing its bytes.
pub(crate) fn record<'a>(
    config: &'a KafkaConfig,
    event: &'a Event,
) -> FutureRecord<'a, [u8], [u8]> {
    let headers = event.headers.iter().fold(
        OwnedHeaders::new_with_capacity(event.headers.len()),
        |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value.as_ref()),
            })
        },
    );
    let mut record: FutureRecord<'a, [u8], [u8]> = FutureRecord::to(&config.topic)
        .payload(event.value.as_ref())
        .headers(headers);
    if let Some(k) = &event.key {
        record = record.key(k.as_ref());
    }
    if let Some(p) = config.partition {
        record = record.partition(p);
    }
    if let Some(t) = event.timestamp_ms {
        record = record.timestamp(t);
    }
    record
}
