//! Provenance headers stamped on every record, all UTF-8 strings so any client can read them:
//!
//! | header | value |
//! | --- | --- |
//! | `service_id` | the producing service's id |
//! | `event_time` | milliseconds since the Unix epoch, decimal |
//! | `event_type` | the full message name (protobuf full name, Avro full name, JSON Schema `title`) |
//! | `event_id` | a UUIDv7, hyphenated |
//! | `producer_id` | a UUIDv7 naming one producer instance (scope of `producer_seq`) |
//! | `producer_seq` | decimal, 0-based, +1 per record per producer instance and partition |

use rdkafka::message::{BorrowedHeaders, Header, Headers, OwnedHeaders};

/// Header carrying the service id.
pub const SERVICE_ID: &str = "service_id";
/// Header carrying the event time in ms.
pub const EVENT_TIME: &str = "event_time";
/// Header carrying the full message name.
pub const EVENT_TYPE: &str = "event_type";
/// Header carrying the UUIDv7 event id.
pub const EVENT_ID: &str = "event_id";
/// Header naming the producer instance.
pub const PRODUCER_ID: &str = "producer_id";
/// Header carrying the per-producer, per-partition sequence number.
pub const PRODUCER_SEQ: &str = "producer_seq";

/// The provenance of one record, as read from (or written to) its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// `service_id`.
    pub service_id: Option<String>,
    /// `event_time` in ms since the epoch.
    pub event_time_ms: Option<i64>,
    /// `event_type`.
    pub event_type: Option<String>,
    /// `event_id`.
    pub event_id: Option<String>,
    /// `producer_id`.
    pub producer_id: Option<String>,
    /// `producer_seq`.
    pub producer_seq: Option<u64>,
}

impl Provenance {
    /// Reads the provenance headers; absent or malformed ones are `None`.
    pub fn from_headers(headers: Option<&BorrowedHeaders>) -> Self {
        let mut p = Provenance::default();
        let Some(headers) = headers else { return p };
        for h in headers.iter() {
            let Some(v) = h.value.and_then(|v| std::str::from_utf8(v).ok()) else {
                continue;
            };
            match h.key {
                SERVICE_ID => p.service_id = Some(v.to_owned()),
                EVENT_TIME => p.event_time_ms = v.parse().ok(),
                EVENT_TYPE => p.event_type = Some(v.to_owned()),
                EVENT_ID => p.event_id = Some(v.to_owned()),
                PRODUCER_ID => p.producer_id = Some(v.to_owned()),
                PRODUCER_SEQ => p.producer_seq = v.parse().ok(),
                _ => {}
            }
        }
        p
    }

    /// Writes the present fields as headers.
    pub fn to_headers(&self) -> OwnedHeaders {
        let time = self.event_time_ms.map(|t| t.to_string());
        let seq = self.producer_seq.map(|s| s.to_string());
        let fields = [
            (SERVICE_ID, self.service_id.as_deref()),
            (EVENT_TIME, time.as_deref()),
            (EVENT_TYPE, self.event_type.as_deref()),
            (EVENT_ID, self.event_id.as_deref()),
            (PRODUCER_ID, self.producer_id.as_deref()),
            (PRODUCER_SEQ, seq.as_deref()),
        ];
        fields.into_iter().fold(
            OwnedHeaders::new_with_capacity(6),
            |h, (key, value)| match value {
                Some(v) => h.insert(Header {
                    key,
                    value: Some(v),
                }),
                None => h,
            },
        )
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
