//! Events → one `SendMessageBatch` request.

use serde_json::{json, Map, Value};

use super::config::SqsConfig;
use crate::event::Event;
use crate::sinks::attributes::{self, AttributeValue};
use crate::sinks::Failure;

/// One entry ready to send, and its size as SQS counts it.
pub(crate) fn entry(
    config: &SqsConfig,
    event: &Event,
    id: usize,
) -> Result<(Value, usize), Failure> {
    let body = attributes::body(event, config.body)?;
    let attrs = if config.headers {
        attributes::attributes(event)?
    } else {
        Vec::new()
    };
    let size = body.len() + attributes::attributes_size(&attrs);
    if size > config.message_limit() {
        return Err(Failure::permanent(
            "TooLarge",
            format!(
                "message of {size} bytes (body and attributes) is over the queue's {} bytes",
                config.message_limit()
            ),
        ));
    }
    let mut e = Map::new();
    e.insert("Id".into(), json!(id.to_string()));
    e.insert("MessageBody".into(), Value::String(body));
    if !attrs.is_empty() {
        let mut m = Map::new();
        for (name, value) in attrs {
            let v = match value {
                AttributeValue::String(s) => json!({"DataType": "String", "StringValue": s}),
                AttributeValue::Binary(b) => json!({"DataType": "Binary", "BinaryValue": b}),
            };
            m.insert(name.to_owned(), v);
        }
        e.insert("MessageAttributes".into(), Value::Object(m));
    }
    if config.is_fifo() {
        let (group, dedup) = attributes::fifo_ids(
            config.group_id.as_ref(),
            config.deduplication_id.as_ref(),
            event,
            "queue",
        )?;
        e.insert("MessageGroupId".into(), Value::String(group));
        if let Some(d) = dedup {
            e.insert("MessageDeduplicationId".into(), Value::String(d));
        }
    }
    Ok((Value::Object(e), size))
}

/// The request for `batch` (every event already passed [`entry`] once).
pub(crate) fn request(config: &SqsConfig, batch: &[Event]) -> Result<Value, Failure> {
    let entries = batch
        .iter()
        .enumerate()
        .map(|(i, e)| entry(config, e, i).map(|(v, _)| v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({"QueueUrl": config.queue_url, "Entries": entries}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_entries_carry_group_and_dedup_ids() {
        let mut c = SqsConfig::new("http://q/123/orders.fifo");
        let e = Event::new("{}")
            .with_key("cust-1")
            .with_header("event_id", "e-1");
        assert_eq!(
            entry(&c, &e, 0).err().map(|f| f.code),
            Some("MissingGroupId".into())
        );
        c.group_id = Some(crate::Field::Key);
        let (v, size) = entry(&c, &e, 3).unwrap_or_default();
        assert_eq!(v["Id"], "3");
        assert_eq!(v["MessageGroupId"], "cust-1");
        assert_eq!(v["MessageDeduplicationId"], "e-1");
        assert_eq!(v["MessageAttributes"]["event_id"]["StringValue"], "e-1");
        assert_eq!(size, 2 + "event_id".len() + "String".len() + 3);
    }

    #[test]
    fn oversized_messages_are_refused() {
        let c = SqsConfig {
            max_message_bytes: Some(10),
            ..SqsConfig::new("http://q/1/q")
        };
        assert!(entry(&c, &Event::new("0123456789"), 0).is_ok());
        assert_eq!(
            entry(&c, &Event::new("0123456789x"), 0)
                .err()
                .map(|f| f.code),
            Some("TooLarge".into())
        );
    }
}
