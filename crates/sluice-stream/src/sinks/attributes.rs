//! What SQS and SNS share: message attributes made from headers (at most 10, names within
//! AWS's rules), message bodies that must be XML-safe text, FIFO group and deduplication ids,
//! and batch answers read entry by entry.

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

use super::field::Field;
use super::{Failure, Receipt};
use crate::event::Event;

/// Message attributes per message, in SQS and SNS.
pub(crate) const MAX_ATTRIBUTES: usize = 10;

/// How a payload becomes a message body.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BodyEncoding {
    /// The payload as text; a payload that is not XML-safe UTF-8 is refused.
    #[default]
    Text,
    /// The payload base64-encoded (any bytes).
    Base64,
}

/// One attribute as the services take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttributeValue {
    /// UTF-8 text: `DataType=String`.
    String(String),
    /// Other bytes, base64: `DataType=Binary`.
    Binary(String),
}

/// The body of `event` in `encoding`, or why it cannot be one.
pub(crate) fn body(event: &Event, encoding: BodyEncoding) -> Result<String, Failure> {
    match encoding {
        BodyEncoding::Base64 => Ok(base64::engine::general_purpose::STANDARD.encode(&event.value)),
        BodyEncoding::Text => {
            let text = std::str::from_utf8(&event.value).map_err(|_| {
                Failure::permanent(
                    "InvalidMessageContents",
                    "payload is not UTF-8 text; set `body: base64` for binary payloads",
                )
            })?;
            if let Some(c) = text.chars().find(|c| !xml_safe(*c)) {
                return Err(Failure::permanent(
                    "InvalidMessageContents",
                    format!(
                        "payload holds U+{:04X}, which SQS/SNS refuse; set `body: base64`",
                        u32::from(c)
                    ),
                ));
            }
            if text.is_empty() {
                return Err(Failure::permanent(
                    "InvalidMessageContents",
                    "empty payload: SQS/SNS refuse empty messages",
                ));
            }
            Ok(text.to_owned())
        }
    }
}

/// The characters SQS and SNS accept in text.
fn xml_safe(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// The headers of `event` as attributes (empty values have no attribute form and are left
/// out), or why they cannot be.
pub(crate) fn attributes(event: &Event) -> Result<Vec<(&str, AttributeValue)>, Failure> {
    // Kafka allows a header name twice; an attribute name is unique: the last value wins, as
    // Kafka clients' `lastHeader` reads it, at the place of the first.
    let mut present: Vec<&(String, Bytes)> = Vec::with_capacity(event.headers.len());
    for h in event.headers.iter().filter(|(_, v)| !v.is_empty()) {
        match present.iter_mut().find(|(name, _)| *name == h.0) {
            Some(slot) => *slot = h,
            None => present.push(h),
        }
    }
    if present.len() > MAX_ATTRIBUTES {
        return Err(Failure::permanent(
            "TooManyAttributes",
            format!(
                "{} headers, but a message carries at most {MAX_ATTRIBUTES} attributes; set `headers: false` or drop headers in a transform",
                present.len()
            ),
        ));
    }
    present
        .into_iter()
        .map(|(name, value)| {
            if !valid_name(name) {
                return Err(Failure::permanent(
                    "InvalidAttributeName",
                    format!("header {name:?} is not a valid attribute name (letters, digits, _ - . ; not starting with AWS. or Amazon.)"),
                ));
            }
            let v = match std::str::from_utf8(value) {
                Ok(s) if s.chars().all(xml_safe) => AttributeValue::String(s.to_owned()),
                _ => AttributeValue::Binary(base64::engine::general_purpose::STANDARD.encode(value)),
            };
            Ok((name.as_str(), v))
        })
        .collect()
}

/// Bytes the services count for `attrs`: name, type and value of each.
pub(crate) fn attributes_size(attrs: &[(&str, AttributeValue)]) -> usize {
    attrs
        .iter()
        .map(|(n, v)| {
            n.len()
                + match v {
                    AttributeValue::String(s) => "String".len() + s.len(),
                    AttributeValue::Binary(b) => "Binary".len() + b.len() / 4 * 3,
                }
        })
        .sum()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.to_ascii_lowercase().starts_with("aws.")
        && !name.to_ascii_lowercase().starts_with("amazon.")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The `MessageGroupId` and `MessageDeduplicationId` of `event` for a FIFO queue or topic
/// (`target` names it in the error): the group is required; the deduplication id defaults to
/// the SDK's `event_id` header, else the target's content-based deduplication applies.
pub(crate) fn fifo_ids(
    group: Option<&Field>,
    dedup: Option<&Field>,
    event: &Event,
    target: &str,
) -> Result<(String, Option<String>), Failure> {
    let group_id = group.and_then(|f| f.get(event)).ok_or_else(|| {
        Failure::permanent(
            "MissingGroupId",
            format!(
                "FIFO {target} needs a MessageGroupId: set group_id (now {})",
                group.map_or("unset".to_owned(), Field::to_string)
            ),
        )
    })?;
    let dedup_id = match dedup {
        Some(f) => f.get(event),
        None => Field::Header(sluice_sdk::headers::EVENT_ID.to_owned()).get(event),
    };
    Ok((group_id, dedup_id))
}

/// Refuses a random deduplication id: a retry would carry a new one, and a request that timed
/// out after the service took it would then be duplicated — what the id is there to prevent.
pub(crate) fn check_fifo_fields(dedup: Option<&Field>, target: &str) -> crate::Result<()> {
    if dedup == Some(&Field::Random) {
        return Err(crate::Error::Config(format!(
            "{target}: deduplication_id: random defeats deduplication (each retry gets a new id); use header:<name> or key"
        )));
    }
    Ok(())
}

/// `true`, the default of switches that are on unless turned off.
pub(crate) fn yes() -> bool {
    true
}

/// One entry of a batch answer (SQS `SendMessageBatch`, SNS `PublishBatch`), read.
pub(crate) enum Entry {
    /// `Successful`: the entry's index and its message id.
    Delivered(Option<usize>, Option<String>),
    /// `Failed`: index, code, message, and whether it was the sender's fault.
    Failed(Option<usize>, String, String, bool),
}

/// One outcome per entry of a batch of `n` from the answer's entries; an entry the answer
/// does not mention is a failure to retry, never a success.
pub(crate) fn outcomes(
    n: usize,
    entries: impl Iterator<Item = Entry>,
) -> Vec<Result<Receipt, Failure>> {
    let mut out: Vec<Result<Receipt, Failure>> = (0..n)
        .map(|_| {
            Err(Failure::transient(
                "Missing",
                "the answer did not mention this entry",
            ))
        })
        .collect();
    for entry in entries {
        match entry {
            Entry::Delivered(Some(i), id) if i < n => out[i] = Ok(Receipt { id }),
            Entry::Failed(Some(i), code, message, sender_fault) if i < n => {
                out[i] = Err(Failure {
                    retriable: !sender_fault || crate::aws::retriable_code(&code),
                    message,
                    code,
                });
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(
            body(&Event::new("hé"), BodyEncoding::Text).ok().as_deref(),
            Some("hé")
        );
        assert!(body(&Event::new(vec![0xffu8]), BodyEncoding::Text).is_err());
        assert!(body(&Event::new("a\u{0}b"), BodyEncoding::Text).is_err());
        assert_eq!(
            body(&Event::new(vec![0xffu8]), BodyEncoding::Base64)
                .ok()
                .as_deref(),
            Some("/w==")
        );
    }

    #[test]
    fn attribute_rules() {
        let e = Event::new("v")
            .with_header("event_id", "1")
            .with_header("bin", vec![0u8, 0xff])
            .with_header("empty", "");
        let a = attributes(&e).unwrap_or_default();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].1, AttributeValue::Binary("AP8=".into()));
        let many = (0..11).fold(Event::new("v"), |e, i| e.with_header(format!("h{i}"), "x"));
        assert_eq!(
            attributes(&many).err().map(|f| f.code),
            Some("TooManyAttributes".into())
        );
        let twice = Event::new("v")
            .with_header("h", "1")
            .with_header("g", "x")
            .with_header("h", "2");
        let a = attributes(&twice).unwrap_or_default();
        assert_eq!(a.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["h", "g"]);
        assert_eq!(a[0].1, AttributeValue::String("2".into()));
        for bad in ["AWS.x", "a b", "a..b", ".a"] {
            assert!(
                attributes(&Event::new("v").with_header(bad, "x")).is_err(),
                "{bad}"
            );
        }
    }
}
