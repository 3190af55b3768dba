//! Events → the form parameters of one `PublishBatch` request.

use super::config::{SnsConfig, MAX_BYTES};
use crate::event::Event;
use crate::sinks::attributes::{self, AttributeValue};
use crate::sinks::Failure;

/// The parameters of one entry (`PublishBatchRequestEntries.member.<n>.*`), and its size.
pub(crate) fn entry(
    config: &SnsConfig,
    event: &Event,
    n: usize,
) -> Result<(Vec<(String, String)>, usize), Failure> {
    let message = attributes::body(event, config.body)?;
    let attrs = if config.headers {
        attributes::attributes(event)?
    } else {
        Vec::new()
    };
    let size = message.len() + attributes::attributes_size(&attrs);
    if size > MAX_BYTES {
        return Err(Failure::permanent(
            "TooLarge",
            format!(
                "message of {size} bytes (body and attributes) is over SNS's {MAX_BYTES} bytes"
            ),
        ));
    }
    let p = format!("PublishBatchRequestEntries.member.{n}");
    let mut out = vec![
        (format!("{p}.Id"), n.to_string()),
        (format!("{p}.Message"), message),
    ];
    for (i, (name, value)) in attrs.into_iter().enumerate() {
        let a = format!("{p}.MessageAttributes.entry.{}", i + 1);
        out.push((format!("{a}.Name"), name.to_owned()));
        match value {
            AttributeValue::String(s) => {
                out.push((format!("{a}.Value.DataType"), "String".to_owned()));
                out.push((format!("{a}.Value.StringValue"), s));
            }
            AttributeValue::Binary(b) => {
                out.push((format!("{a}.Value.DataType"), "Binary".to_owned()));
                out.push((format!("{a}.Value.BinaryValue"), b));
            }
        }
    }
    if config.is_fifo() {
        let (group, dedup) = attributes::fifo_ids(
            config.group_id.as_ref(),
            config.deduplication_id.as_ref(),
            event,
            "topic",
        )?;
        out.push((format!("{p}.MessageGroupId"), group));
        if let Some(d) = dedup {
            out.push((format!("{p}.MessageDeduplicationId"), d));
        }
    }
    Ok((out, size))
}

/// The parameters for `batch`; entry `n` (1-based) is `batch[n - 1]`.
pub(crate) fn request(
    config: &SnsConfig,
    batch: &[Event],
) -> Result<Vec<(String, String)>, Failure> {
    let mut params = vec![
        ("Action".to_owned(), "PublishBatch".to_owned()),
        ("Version".to_owned(), "2010-03-31".to_owned()),
        ("TopicArn".to_owned(), config.topic_arn.clone()),
    ];
    for (i, e) in batch.iter().enumerate() {
        params.extend(entry(config, e, i + 1)?.0);
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_numbered_from_one_with_attributes() {
        let c = SnsConfig::new("arn:aws:sns:us-east-1:123456789012:t");
        let batch = [
            Event::new("a").with_header("event_type", "Click"),
            Event::new("b"),
        ];
        let params = request(&c, &batch).unwrap_or_default();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            get("PublishBatchRequestEntries.member.1.Message"),
            Some("a")
        );
        assert_eq!(get("PublishBatchRequestEntries.member.2.Id"), Some("2"));
        assert_eq!(
            get("PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue"),
            Some("Click")
        );
        let fifo = SnsConfig::new("arn:aws:sns:us-east-1:1:t.fifo");
        assert!(request(&fifo, &batch).is_err());
    }
}
