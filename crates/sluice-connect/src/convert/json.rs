//! Kafka Connect's JSON format: `{"schema": …, "payload": …}` with `schemas.enable`, the bare
//! payload without.

use crate::data::{Datum, Schema};

/// Serializes `datum`; `schema_json` is the schema's JSON form when the envelope is wanted.
pub(super) fn encode(schema_json: Option<&str>, schema: &Schema, datum: &Datum) -> Vec<u8> {
    let payload = datum.to_json(schema);
    match schema_json {
        Some(s) => {
            let mut out = Vec::with_capacity(s.len() + 256);
            out.extend_from_slice(b"{\"schema\":");
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b",\"payload\":");
            // Writing a Value to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, &payload);
            out.push(b'}');
            out
        }
        None => serde_json::to_vec(&payload).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Field, SchemaType};
    use serde_json::{json, Value};

    #[test]
    fn writes_connect_json() {
        let schema = Schema::structure(
            "srv.public.t.Key",
            false,
            vec![
                Field {
                    name: "id".into(),
                    schema: Schema::primitive(SchemaType::Int32, false),
                },
                Field {
                    name: "raw".into(),
                    schema: Schema::primitive(SchemaType::Bytes, true),
                },
            ],
        );
        let datum = Datum::Struct(vec![Datum::Int(7), Datum::Bytes(vec![1, 2])]);
        let schema_json = schema.to_json().to_string();
        let v: Value =
            serde_json::from_slice(&encode(Some(&schema_json), &schema, &datum)).unwrap();
        assert_eq!(v["payload"], json!({"id": 7, "raw": "AQI="}));
        assert_eq!(
            v["schema"]["fields"][0],
            json!({"type": "int32", "optional": false, "field": "id"})
        );
        assert_eq!(v["schema"]["name"], "srv.public.t.Key");
        let bare: Value = serde_json::from_slice(&encode(None, &schema, &datum)).unwrap();
        assert_eq!(bare, json!({"id": 7, "raw": "AQI="}));
    }
}
