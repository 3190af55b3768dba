//! The SDK's provenance headers (`service_id`, `event_time`, `event_type`, `event_id`) on
//! every record the proxy writes, unless the caller set them: consumers then know who sent a
//! browser's click and when, exactly as for records from the SDK's own producer.

use rdkafka::message::{Header, OwnedHeaders};
use sluice_sdk::headers::{EVENT_ID, EVENT_TIME, EVENT_TYPE, SERVICE_ID};

/// Now, in ms since the epoch, as the `event_time` header writes it.
pub(crate) fn received_now() -> String {
    sluice_sdk::headers::now_ms().to_string()
}

/// The caller's headers followed by whichever provenance headers it did not set; `event_time`
/// is `received` (ms, decimal: one formatting per request, not per record).
pub(crate) fn stamp(
    caller: &[(String, Option<Vec<u8>>)],
    service_id: &str,
    event_type: Option<&str>,
    received: &str,
) -> OwnedHeaders {
    let has = |name: &str| caller.iter().any(|(n, _)| n == name);
    let mut headers = OwnedHeaders::new_with_capacity(caller.len() + 4);
    for (name, value) in caller {
        headers = headers.insert(Header {
            key: name.as_str(),
            value: value.as_deref(),
        });
    }
    let mut id = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut id);
    let ours = [
        (SERVICE_ID, Some(service_id)),
        (EVENT_TIME, Some(received)),
        (EVENT_TYPE, event_type),
        (EVENT_ID, Some(&*id)),
    ];
    for (name, value) in ours {
        if let Some(value) = value.filter(|_| !has(name)) {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Headers;

    fn names(h: &OwnedHeaders) -> Vec<(String, Option<Vec<u8>>)> {
        h.iter()
            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
            .collect()
    }

    #[test]
    fn adds_what_is_missing_and_keeps_what_the_caller_set() {
        let caller = vec![
            ("event_id".to_owned(), Some(b"mine".to_vec())),
            ("trace".to_owned(), None),
        ];
        let h = names(&stamp(&caller, "web", Some("Click"), "1700000000000"));
        let keys: Vec<_> = h.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "event_id",
                "trace",
                "service_id",
                "event_time",
                "event_type"
            ]
        );
        assert_eq!(h[0].1.as_deref(), Some(&b"mine"[..]));
        assert_eq!(h[2].1.as_deref(), Some(&b"web"[..]));
        let no_type = names(&stamp(&[], "web", None, "1"));
        assert_eq!(no_type.len(), 3);
    }
}
