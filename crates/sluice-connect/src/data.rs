//! Kafka Connect's data model: schemas and the values they describe.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Map, Value};

/// A Connect schema type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchemaType {
    /// 16-bit integer.
    Int16,
    /// 32-bit integer.
    Int32,
    /// 64-bit integer.
    Int64,
    /// 32-bit float.
    Float32,
    /// 64-bit float.
    Float64,
    /// Boolean.
    Boolean,
    /// UTF-8 string.
    String,
    /// Bytes.
    Bytes,
    /// Array of one item schema.
    Array,
    /// Struct of named fields.
    Struct,
}

impl SchemaType {
    /// Connect's name for it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Struct => "struct",
        }
    }
}

/// A field of a struct schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// Field name.
    pub(crate) name: String,
    /// Its schema.
    pub(crate) schema: Schema,
}

/// A Connect schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Schema {
    /// The type.
    pub(crate) kind: SchemaType,
    /// Whether null is allowed.
    pub(crate) optional: bool,
    /// Logical or record name, e.g. `io.debezium.time.Date`.
    pub(crate) name: Option<String>,
    /// Schema version.
    pub(crate) version: Option<i32>,
    /// Parameters, e.g. a decimal's scale.
    pub(crate) parameters: BTreeMap<String, String>,
    /// Struct fields.
    pub(crate) fields: Vec<Field>,
    /// Array items.
    pub(crate) items: Option<Box<Schema>>,
}

impl Schema {
    /// A primitive schema.
    pub(crate) fn primitive(kind: SchemaType, optional: bool) -> Self {
        Self {
            kind,
            optional,
            name: None,
            version: None,
            parameters: BTreeMap::new(),
            fields: Vec::new(),
            items: None,
        }
    }

    /// A named (logical) primitive schema.
    pub(crate) fn named(
        kind: SchemaType,
        optional: bool,
        name: &str,
        version: Option<i32>,
    ) -> Self {
        Self {
            name: Some(name.to_owned()),
            version,
            ..Self::primitive(kind, optional)
        }
    }

    /// A struct schema.
    pub(crate) fn structure(name: &str, optional: bool, fields: Vec<Field>) -> Self {
        Self {
            name: Some(name.to_owned()),
            fields,
            ..Self::primitive(SchemaType::Struct, optional)
        }
    }

    /// An array schema.
    pub(crate) fn array(items: Schema, optional: bool) -> Self {
        Self {
            items: Some(Box::new(items)),
            ..Self::primitive(SchemaType::Array, optional)
        }
    }

    /// With a parameter added.
    pub(crate) fn with_parameter(mut self, key: &str, value: impl Into<String>) -> Self {
        self.parameters.insert(key.to_owned(), value.into());
        self
    }

    /// The schema as JsonConverter writes it in the `schema` part of an envelope.
    pub(crate) fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("type".into(), json!(self.kind.name()));
        if self.kind == SchemaType::Struct {
            let fields = self
                .fields
                .iter()
                .map(|f| {
                    let mut v = f.schema.to_json();
                    if let Value::Object(m) = &mut v {
                        m.insert("field".into(), json!(f.name));
                    }
                    v
                })
                .collect();
            out.insert("fields".into(), Value::Array(fields));
        }
        if let Some(items) = &self.items {
            out.insert("items".into(), items.to_json());
        }
        out.insert("optional".into(), json!(self.optional));
        if let Some(name) = &self.name {
            out.insert("name".into(), json!(name));
        }
        if let Some(version) = self.version {
            out.insert("version".into(), json!(version));
        }
        if !self.parameters.is_empty() {
            out.insert("parameters".into(), json!(self.parameters));
        }
        Value::Object(out)
    }

    /// The value a required field takes when the source has none (a delete under the default
    /// replica identity carries only the key): Connect's zero of the type.
    pub(crate) fn zero(&self) -> Datum {
        match self.kind {
            _ if self.optional => Datum::Null,
            SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64 => Datum::Int(0),
            SchemaType::Float32 | SchemaType::Float64 => Datum::Float(0.0),
            SchemaType::Boolean => Datum::Bool(false),
            SchemaType::String => Datum::String(String::new()),
            SchemaType::Bytes => Datum::Bytes(Vec::new()),
            SchemaType::Array => Datum::Array(Vec::new()),
            SchemaType::Struct => {
                Datum::Struct(self.fields.iter().map(|f| f.schema.zero()).collect())
            }
        }
    }
}

/// A Connect value; structs are positional, in their schema's field order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Datum {
    /// Null.
    Null,
    /// Boolean.
    Bool(bool),
    /// Any integer type.
    Int(i64),
    /// Any float type.
    Float(f64),
    /// String.
    String(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// Array items.
    Array(Vec<Datum>),
    /// Struct fields, in schema order.
    Struct(Vec<Datum>),
}

impl Datum {
    /// The value as JsonConverter writes it (bytes as base64, non-finite floats as strings).
    pub(crate) fn to_json(&self, schema: &Schema) -> Value {
        match self {
            Datum::Null => Value::Null,
            Datum::Bool(b) => json!(b),
            Datum::Int(i) => json!(i),
            Datum::Float(f) if f.is_finite() => json!(f),
            Datum::Float(f) if f.is_nan() => json!("NaN"),
            Datum::Float(f) if *f > 0.0 => json!("Infinity"),
            Datum::Float(_) => json!("-Infinity"),
            Datum::String(s) => json!(s),
            Datum::Bytes(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
            Datum::Array(items) => {
                let item_schema = schema.items.as_deref().unwrap_or(schema);
                Value::Array(items.iter().map(|d| d.to_json(item_schema)).collect())
            }
            Datum::Struct(values) => Value::Object(
                schema
                    .fields
                    .iter()
                    .zip(values)
                    .map(|(f, v)| (f.name.clone(), v.to_json(&f.schema)))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields_get_zero_values() {
        let s = Schema::primitive(SchemaType::String, false);
        assert_eq!(s.zero(), Datum::String(String::new()));
        assert_eq!(
            Schema::primitive(SchemaType::Int64, true).zero(),
            Datum::Null
        );
    }
}
