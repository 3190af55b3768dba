//! What SQS and SNS share: message attributes made from headers (at most 10, names within
//! AWS's rules) and message bodies that must be XML-safe text.

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

use super::Failure;
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
    let present: Vec<&(String, Bytes)> = event
        .headers
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
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
        for bad in ["AWS.x", "a b", "a..b", ".a"] {
            assert!(
                attributes(&Event::new("v").with_header(bad, "x")).is_err(),
                "{bad}"
            );
        }
    }
}
