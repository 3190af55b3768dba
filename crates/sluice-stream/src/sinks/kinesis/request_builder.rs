//! Events → one `PutRecords` request.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::config::{KinesisConfig, MAX_PARTITION_KEY_CHARS, MAX_RECORD_BYTES};
use crate::event::Event;
use crate::sinks::Failure;

/// One record ready to send, and its size as Kinesis counts it (data plus partition key).
pub(crate) fn record(config: &KinesisConfig, event: &Event) -> Result<(Value, usize), Failure> {
    let key = config
        .partition_key
        .get(event)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_PARTITION_KEY_CHARS {
        return Err(Failure::permanent(
            "InvalidPartitionKey",
            format!(
                "partition key of {chars} characters; Kinesis takes 1 to {MAX_PARTITION_KEY_CHARS}"
            ),
        ));
    }
    let size = event.value.len() + key.len();
    if size > MAX_RECORD_BYTES {
        return Err(Failure::permanent(
            "TooLarge",
            format!("record of {size} bytes (data and partition key) is over Kinesis's {MAX_RECORD_BYTES}"),
        ));
    }
    let mut r = Map::new();
    r.insert(
        "Data".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(&event.value)),
    );
    r.insert("PartitionKey".into(), Value::String(key));
    if let Some(field) = &config.explicit_hash_key {
        if let Some(h) = field.get(event) {
            if h.parse::<u128>().is_err() {
                return Err(Failure::permanent(
                    "InvalidExplicitHashKey",
                    format!("explicit hash key {h:?} is not a decimal below 2^128"),
                ));
            }
            r.insert("ExplicitHashKey".into(), Value::String(h));
        }
    }
    Ok((Value::Object(r), size))
}

/// The request for `batch`.
pub(crate) fn request(config: &KinesisConfig, batch: &[Event]) -> Result<Value, Failure> {
    let records = batch
        .iter()
        .map(|e| record(config, e).map(|(v, _)| v))
        .collect::<Result<Vec<_>, _>>()?;
    let mut body = json!({ "Records": records });
    if let Some(arn) = &config.stream_arn {
        body["StreamARN"] = Value::String(arn.clone());
    }
    if let Some(name) = &config.stream_name {
        body["StreamName"] = Value::String(name.clone());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::field::Field;

    #[test]
    fn records_and_limits() {
        let mut c = KinesisConfig::new("s");
        let (r, size) = record(&c, &Event::new("abc").with_key("k1")).unwrap_or_default();
        assert_eq!(r["Data"], "YWJj");
        assert_eq!(r["PartitionKey"], "k1");
        assert_eq!(size, 5);
        let (r, _) = record(&c, &Event::new("abc")).unwrap_or_default();
        assert_eq!(
            r["PartitionKey"].as_str().map(str::len),
            Some(36),
            "random key"
        );
        c.explicit_hash_key = Some(Field::Header("h".into()));
        assert!(record(&c, &Event::new("a").with_header("h", "12")).is_ok());
        assert!(record(&c, &Event::new("a").with_header("h", "-1")).is_err());
        let big = Event::new(vec![0u8; MAX_RECORD_BYTES]).with_key("k");
        assert_eq!(
            record(&c, &big).err().map(|f| f.code),
            Some("TooLarge".into())
        );
        let long = Event::new("a").with_key("k".repeat(257));
        assert!(record(&c, &long).is_err());
    }
}
