//! Where a per-event string comes from (a FIFO group id, a deduplication id, a Kinesis
//! partition key): written `key`, `header:<name>`, `static:<text>` or `random` in a pipeline.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::event::Event;

/// A source of one string per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// The event's key (UTF-8, or hex of other bytes).
    Key,
    /// A header's value (UTF-8, or hex of other bytes).
    Header(String),
    /// The same text for every event.
    Static(String),
    /// A fresh random UUID per event.
    Random,
}

impl Field {
    /// The value for `event`; `None` when the key or header is absent.
    pub fn get(&self, event: &Event) -> Option<String> {
        match self {
            Field::Key => event.key_text(),
            Field::Header(name) => event.header(name).map(|v| match std::str::from_utf8(v) {
                Ok(s) => s.to_owned(),
                Err(_) => v.iter().map(|b| format!("{b:02x}")).collect(),
            }),
            Field::Static(s) => Some(s.clone()),
            Field::Random => Some(uuid::Uuid::new_v4().to_string()),
        }
    }
}

impl FromStr for Field {
    type Err = String;

    fn from_str(s: &str) -> Result<Field, String> {
        match s {
            "key" => Ok(Field::Key),
            "random" => Ok(Field::Random),
            _ => {
                if let Some(h) = s.strip_prefix("header:").filter(|h| !h.is_empty()) {
                    Ok(Field::Header(h.to_owned()))
                } else if let Some(v) = s.strip_prefix("static:").filter(|v| !v.is_empty()) {
                    Ok(Field::Static(v.to_owned()))
                } else {
                    Err(format!(
                        "{s:?} is not a field: use key, header:<name>, static:<text> or random"
                    ))
                }
            }
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Key => f.write_str("key"),
            Field::Header(h) => write!(f, "header:{h}"),
            Field::Static(s) => write!(f, "static:{s}"),
            Field::Random => f.write_str("random"),
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reads() {
        let e = Event::new("v")
            .with_key(vec![0xff_u8, 0x01])
            .with_header("region", "eu");
        assert_eq!(
            "key".parse::<Field>().ok().and_then(|f| f.get(&e)),
            Some("ff01".into())
        );
        assert_eq!(
            "header:region"
                .parse::<Field>()
                .ok()
                .and_then(|f| f.get(&e)),
            Some("eu".into())
        );
        assert_eq!(
            "header:none".parse::<Field>().ok().and_then(|f| f.get(&e)),
            None
        );
        assert_eq!(
            "static:x".parse::<Field>().ok().map(|f| f.to_string()),
            Some("static:x".into())
        );
        assert!("header:".parse::<Field>().is_err());
        assert!("whatever".parse::<Field>().is_err());
    }
}
