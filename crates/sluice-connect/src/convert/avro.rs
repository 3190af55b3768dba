//! Connect schemas as Avro schemas (with the `connect.*` properties Confluent's AvroData
//! writes, so Connect-based readers recover the logical types) and Avro binary encoding of
//! Connect values.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::data::{Datum, Schema, SchemaType};

const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";

/// The Avro schema of `schema`.
pub(super) fn schema_json(schema: &Schema) -> Value {
    to_avro(schema, &mut HashSet::new())
}

/// Avro names are `[A-Za-z_][A-Za-z0-9_]*`; anything else becomes `_` (Debezium's
/// `schema.name.adjustment.mode=avro`).
fn avro_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn full_name(name: &str) -> String {
    name.split('.').map(avro_name).collect::<Vec<_>>().join(".")
}

fn to_avro(schema: &Schema, defined: &mut HashSet<String>) -> Value {
    let inner = non_null(schema, defined);
    if schema.optional {
        json!(["null", inner])
    } else {
        inner
    }
}

fn non_null(schema: &Schema, defined: &mut HashSet<String>) -> Value {
    let primitive = match schema.kind {
        SchemaType::Int16 => "int",
        SchemaType::Int32 => "int",
        SchemaType::Int64 => "long",
        SchemaType::Float32 => "float",
        SchemaType::Float64 => "double",
        SchemaType::Boolean => "boolean",
        SchemaType::String => "string",
        SchemaType::Bytes => "bytes",
        SchemaType::Array => {
            let items = schema
                .items
                .as_deref()
                .map_or(json!("null"), |i| to_avro(i, defined));
            return json!({"type": "array", "items": items});
        }
        SchemaType::Struct => {
            let name = full_name(
                schema
                    .name
                    .as_deref()
                    .unwrap_or("io.confluent.connect.avro.ConnectDefault"),
            );
            // A record is defined once; later uses name it.
            if !defined.insert(name.clone()) {
                return json!(name);
            }
            let (namespace, short) = match name.rsplit_once('.') {
                Some((ns, n)) => (Some(ns.to_owned()), n.to_owned()),
                None => (None, name.clone()),
            };
            let fields: Vec<Value> = schema
                .fields
                .iter()
                .map(|f| {
                    let mut field =
                        json!({"name": avro_name(&f.name), "type": to_avro(&f.schema, defined)});
                    if f.schema.optional {
                        field["default"] = Value::Null;
                    }
                    field
                })
                .collect();
            let mut record = json!({"type": "record", "name": short, "fields": fields});
            if let Some(ns) = namespace {
                record["namespace"] = json!(ns);
            }
            if let Some(n) = &schema.name {
                record["connect.name"] = json!(n);
            }
            return record;
        }
    };
    let mut out = Map::new();
    out.insert("type".into(), json!(primitive));
    if schema.kind == SchemaType::Int16 {
        out.insert("connect.type".into(), json!("int16"));
    }
    if let Some(v) = schema.version {
        out.insert("connect.version".into(), json!(v));
    }
    if !schema.parameters.is_empty() {
        out.insert("connect.parameters".into(), json!(schema.parameters));
    }
    if let Some(name) = &schema.name {
        out.insert("connect.name".into(), json!(name));
        if name == DECIMAL {
            let scale: u32 = schema
                .parameters
                .get("scale")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let precision: u32 = schema
                .parameters
                .get("connect.decimal.precision")
                .and_then(|s| s.parse().ok())
                .unwrap_or(64);
            out.insert("logicalType".into(), json!("decimal"));
            out.insert("precision".into(), json!(precision.max(1)));
            out.insert("scale".into(), json!(scale));
        }
    }
    if out.len() == 1 {
        return json!(primitive);
    }
    Value::Object(out)
}

fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// Appends the Avro binary encoding of `datum` under `schema`.
pub(super) fn encode(schema: &Schema, datum: &Datum, out: &mut Vec<u8>) -> Result<(), String> {
    if schema.optional {
        if *datum == Datum::Null {
            out.push(0); // union branch 0: null
            return Ok(());
        }
        out.push(2); // zig-zag 1: the value branch
    }
    let mismatch = || {
        format!(
            "value {datum:?} does not match schema type {}",
            schema.kind.name()
        )
    };
    match (schema.kind, datum) {
        (SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64, Datum::Int(i)) => {
            put_long(out, *i)
        }
        (SchemaType::Float32, Datum::Float(f)) => out.extend_from_slice(&(*f as f32).to_le_bytes()),
        (SchemaType::Float64, Datum::Float(f)) => out.extend_from_slice(&f.to_le_bytes()),
        (SchemaType::Float32, Datum::Int(i)) => out.extend_from_slice(&(*i as f32).to_le_bytes()),
        (SchemaType::Float64, Datum::Int(i)) => out.extend_from_slice(&(*i as f64).to_le_bytes()),
        (SchemaType::Boolean, Datum::Bool(b)) => out.push(u8::from(*b)),
        (SchemaType::String, Datum::String(s)) => put_bytes(out, s.as_bytes()),
        (SchemaType::Bytes, Datum::Bytes(b)) => put_bytes(out, b),
        (SchemaType::Array, Datum::Array(items)) => {
            let item_schema = schema.items.as_deref().ok_or_else(mismatch)?;
            if !items.is_empty() {
                put_long(out, items.len() as i64);
                for item in items {
                    encode(item_schema, item, out)?;
                }
            }
            out.push(0);
        }
        (SchemaType::Struct, Datum::Struct(values)) => {
            if values.len() != schema.fields.len() {
                return Err(mismatch());
            }
            for (f, v) in schema.fields.iter().zip(values) {
                encode(&f.schema, v, out)?;
            }
        }
        _ => return Err(mismatch()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Field;

    #[test]
    fn zigzag() {
        for (v, bytes) in [
            (0i64, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (64, vec![0x80, 1]),
            (-65, vec![0x81, 1]),
        ] {
            let mut out = Vec::new();
            put_long(&mut out, v);
            assert_eq!(out, bytes, "{v}");
        }
    }

    #[test]
    fn records_are_defined_once_and_optionals_are_unions() {
        let value = Schema::structure(
            "shop-1.public.t.Value",
            true,
            vec![Field {
                name: "my col".into(),
                schema: Schema::primitive(SchemaType::Int32, true),
            }],
        );
        let envelope = Schema::structure(
            "shop-1.public.t.Envelope",
            false,
            vec![
                Field {
                    name: "before".into(),
                    schema: value.clone(),
                },
                Field {
                    name: "after".into(),
                    schema: value,
                },
            ],
        );
        let avro = schema_json(&envelope);
        assert_eq!(avro["name"], "Envelope");
        assert_eq!(avro["namespace"], "shop_1.public.t");
        assert_eq!(avro["fields"][0]["type"][1]["fields"][0]["name"], "my_col");
        assert_eq!(
            avro["fields"][1]["type"],
            json!(["null", "shop_1.public.t.Value"])
        );
        let mut out = Vec::new();
        let datum = Datum::Struct(vec![Datum::Null, Datum::Struct(vec![Datum::Int(3)])]);
        encode(&envelope, &datum, &mut out).unwrap();
        assert_eq!(out, vec![0, 2, 2, 6]);
    }
}
