//! The unit every destination sends: a key, a value and headers, as a Kafka record has them.

use bytes::Bytes;

/// One event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// Key (Kafka key, Kinesis partition key source, SQS/SNS group id source).
    pub key: Option<Bytes>,
    /// Payload.
    pub value: Bytes,
    /// Headers in order (Kafka headers, SQS/SNS message attributes).
    pub headers: Vec<(String, Bytes)>,
    /// Milliseconds since the epoch, when known.
    pub timestamp_ms: Option<i64>,
}

impl Event {
    /// An event with `value` only.
    pub fn new(value: impl Into<Bytes>) -> Event {
        Event {
            value: value.into(),
            ..Event::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Event {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Event {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Bytes this event holds in memory (what buffers are bounded by).
    pub fn size(&self) -> usize {
        self.value.len()
            + self.key.as_ref().map_or(0, Bytes::len)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    /// The key as text: UTF-8 as is, other bytes as lowercase hex.
    pub fn key_text(&self) -> Option<String> {
        let key = self.key.as_ref()?;
        Some(match std::str::from_utf8(key) {
            Ok(s) => s.to_owned(),
            Err(_) => key.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }
}
