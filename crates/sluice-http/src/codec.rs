//! Embedded data formats (REST Proxy's `binary`, `json`, `avro`, `jsonschema`, `protobuf`, and
//! v3's `string`): JSON from the request to record bytes, and record bytes back to JSON for
//! consumers. Schema formats go through the registry and are framed in Confluent's wire format
//! (magic byte, schema id, protobuf message indexes), so Confluent's deserializers read them.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use parking_lot::RwLock;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde_json::value::RawValue;
use serde_json::Value as Json;
use sluice_sdk::registry::FetchedSchema;
use sluice_sdk::{wire, RegistryClient};

use crate::avro_json::{self, Names};
use crate::error::{ApiError, ApiResult};

/// How record keys or values are embedded in requests and responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Base64 of the raw bytes.
    Binary,
    /// Any JSON value, written as its JSON text.
    Json,
    /// A string, written as UTF-8 (v3 only).
    String,
    /// Avro, through the registry.
    Avro,
    /// JSON validated by a JSON Schema, through the registry.
    JsonSchema,
    /// Protobuf (from its JSON mapping), through the registry.
    Protobuf,
}

impl Format {
    /// The format a v2 media type or consumer `format` names (`binary`, `avro`, ...).
    pub fn from_v2_name(name: &str) -> Option<Self> {
        Some(match name {
            "binary" => Format::Binary,
            "json" => Format::Json,
            "avro" => Format::Avro,
            "jsonschema" => Format::JsonSchema,
            "protobuf" => Format::Protobuf,
            _ => return None,
        })
    }

    /// The name used in v2 media types.
    pub fn v2_name(self) -> &'static str {
        match self {
            Format::Binary => "binary",
            Format::Json => "json",
            Format::String => "string",
            Format::Avro => "avro",
            Format::JsonSchema => "jsonschema",
            Format::Protobuf => "protobuf",
        }
    }

    /// The name v3 uses (`BINARY`, `AVRO`, ...).
    pub fn v3_name(self) -> &'static str {
        match self {
            Format::Binary => "BINARY",
            Format::Json => "JSON",
            Format::String => "STRING",
            Format::Avro => "AVRO",
            Format::JsonSchema => "JSONSCHEMA",
            Format::Protobuf => "PROTOBUF",
        }
    }

    /// The format v3 names `name`.
    pub fn from_v3_name(name: &str) -> Option<Self> {
        Some(match name {
            "BINARY" => Format::Binary,
            "JSON" => Format::Json,
            "STRING" => Format::String,
            "AVRO" => Format::Avro,
            "JSONSCHEMA" => Format::JsonSchema,
            "PROTOBUF" => Format::Protobuf,
            _ => return None,
        })
    }

    /// The registry's `schemaType` of a schema format.
    pub fn schema_type(self) -> Option<&'static str> {
        match self {
            Format::Avro => Some("AVRO"),
            Format::JsonSchema => Some("JSON"),
            Format::Protobuf => Some("PROTOBUF"),
            _ => None,
        }
    }

    fn from_schema_type(t: &str) -> Option<Self> {
        Some(match t {
            "AVRO" => Format::Avro,
            "JSON" => Format::JsonSchema,
            "PROTOBUF" => Format::Protobuf,
            _ => return None,
        })
    }
}

/// A schema ready to write with.
pub(crate) enum Writer {
    /// An Avro schema and the named types it defines.
    Avro(apache_avro::Schema, Names),
    /// A JSON Schema validator and the schema's `title`.
    Json(jsonschema::Validator, Option<String>),
    /// The first message of a protobuf file.
    Protobuf(MessageDescriptor),
}

impl Writer {
    /// The record's full type name, for the `event_type` provenance header.
    pub(crate) fn type_name(&self) -> Option<String> {
        match self {
            Writer::Avro(schema, _) => Some(sluice_sdk::schema::avro_full_name(schema)),
            Writer::Json(_, title) => title.clone(),
            Writer::Protobuf(m) => Some(m.full_name().to_owned()),
        }
    }
}

/// Most compiled schemas kept; past it the cache starts over (ids are stable, so this only
/// costs registry round trips).
const MAX_CACHED: usize = 10_000;

/// Schemas by id from the registry, compiled once.
pub(crate) struct Schemas {
    registry: RegistryClient,
    compiled: RwLock<HashMap<u32, (Format, Arc<Writer>)>>,
}

impl Schemas {
    /// Schemas from `registry`.
    pub(crate) fn new(registry: RegistryClient) -> Self {
        Schemas {
            registry,
            compiled: RwLock::default(),
        }
    }

    /// Registers `text` under `subject` (or finds it registered) and returns its id.
    pub(crate) async fn register(
        &self,
        subject: &str,
        format: Format,
        text: &str,
    ) -> ApiResult<u32> {
        let schema_type = format.schema_type().ok_or_else(|| {
            ApiError::unprocessable(format!("the {} format takes no schema", format.v2_name()))
        })?;
        self.registry
            .register(subject, schema_type, text, &[])
            .await
            .map(|(id, _)| id)
            .map_err(registry_error)
    }

    /// The id of `subject`'s `version` (`-1` or `latest` for the newest).
    pub(crate) async fn subject_version(&self, subject: &str, version: i32) -> ApiResult<u32> {
        let fetched = self
            .registry
            .subject_version(subject, version)
            .await
            .map_err(registry_error)?;
        fetched.id.ok_or_else(|| {
            ApiError::kafka_retriable(format!(
                "the registry's answer for {subject} version {version} has no id"
            ))
        })
    }

    /// The writer for schema `id`, which must be of `format`.
    pub(crate) async fn writer(&self, id: u32, format: Format) -> ApiResult<Arc<Writer>> {
        let (found, writer) = self.any_writer(id).await?;
        if found != format {
            return Err(ApiError::schema_mismatch(format!(
                "schema {id} is {}, not {}",
                found.v3_name(),
                format.v3_name()
            )));
        }
        Ok(writer)
    }

    /// The writer for schema `id`, whatever its format.
    pub(crate) async fn any_writer(&self, id: u32) -> ApiResult<(Format, Arc<Writer>)> {
        if let Some((f, w)) = self.compiled.read().get(&id) {
            return Ok((*f, Arc::clone(w)));
        }
        let fetched = self
            .registry
            .schema_by_id(id)
            .await
            .map_err(registry_error)?;
        let (format, writer) = self.compile(id, &fetched).await?;
        let writer = Arc::new(writer);
        let mut cache = self.compiled.write();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(id, (format, Arc::clone(&writer)));
        Ok((format, writer))
    }

    async fn compile(&self, id: u32, fetched: &FetchedSchema) -> ApiResult<(Format, Writer)> {
        let format = Format::from_schema_type(&fetched.schema_type).ok_or_else(|| {
            ApiError::invalid_schema(format!(
                "schema {id} has unknown type {}",
                fetched.schema_type
            ))
        })?;
        let invalid =
            |e: &dyn std::fmt::Display| ApiError::invalid_schema(format!("schema {id}: {e}"));
        let writer = match format {
            Format::Avro => {
                let schema =
                    apache_avro::Schema::parse_str(&fetched.schema).map_err(|e| invalid(&e))?;
                let names = apache_avro::schema::ResolvedSchema::try_from(&schema)
                    .map_err(|e| invalid(&e))?
                    .get_names()
                    .iter()
                    .map(|(k, v)| (k.clone(), (*v).clone()))
                    .collect();
                Writer::Avro(schema, names)
            }
            Format::JsonSchema => {
                let schema: Json =
                    serde_json::from_str(&fetched.schema).map_err(|e| invalid(&e))?;
                let title = schema
                    .get("title")
                    .and_then(Json::as_str)
                    .map(str::to_owned);
                let validator = jsonschema::validator_for(&schema).map_err(|e| invalid(&e))?;
                Writer::Json(validator, title)
            }
            Format::Protobuf => {
                let file = sluice_sdk::schema::proto_file(&self.registry, fetched)
                    .await
                    .map_err(|e| invalid(&e))?;
                let message = file
                    .messages()
                    .next()
                    .ok_or_else(|| invalid(&"the file defines no message"))?;
                Writer::Protobuf(message)
            }
            _ => return Err(invalid(&"not a schema format")),
        };
        Ok((format, writer))
    }

    /// JSON back from a record's bytes, for consumers reading `format`.
    pub(crate) async fn decode(&self, format: Format, bytes: &[u8]) -> ApiResult<Json> {
        match format {
            Format::Binary => Ok(Json::String(
                base64::engine::general_purpose::STANDARD.encode(bytes),
            )),
            Format::String => Ok(Json::String(String::from_utf8_lossy(bytes).into_owned())),
            Format::Json => serde_json::from_slice(bytes)
                .map_err(|e| ApiError::kafka(format!("a record is not JSON: {e}"))),
            Format::Avro | Format::JsonSchema | Format::Protobuf => {
                let framed = wire::parse(bytes).map_err(|e| {
                    ApiError::kafka(format!("a record is not in the schema wire format: {e}"))
                })?;
                let writer = self.writer(framed.schema_id, format).await?;
                decode_framed(&writer, framed.body).map_err(|e| {
                    ApiError::kafka(format!(
                        "a record does not decode with schema {}: {e}",
                        framed.schema_id
                    ))
                })
            }
        }
    }
}

/// Record bytes for `raw` in a non-schema `format`. JSON is written compact, as Confluent's
/// proxy writes it, by dropping the whitespace between tokens rather than by a round trip
/// through a parsed tree (the proxy's hot path).
pub(crate) fn encode_plain(format: Format, raw: &RawValue) -> ApiResult<Vec<u8>> {
    let text = || {
        serde_json::from_str::<String>(raw.get()).map_err(|_| {
            ApiError::unprocessable(format!("{} data must be a JSON string", format.v2_name()))
        })
    };
    Ok(match format {
        Format::Json => minify(raw.get()),
        Format::String => text()?.into_bytes(),
        Format::Binary => base64::engine::general_purpose::STANDARD
            .decode(text()?)
            .map_err(|e| ApiError::unprocessable(format!("binary data is not base64: {e}")))?,
        f => {
            return Err(ApiError::unprocessable(format!(
                "the {} format needs a schema",
                f.v2_name()
            )))
        }
    })
}

/// Valid JSON text without the whitespace between its tokens (whitespace inside strings stays).
fn minify(json: &str) -> Vec<u8> {
    let bytes = json.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    // Copies runs at a time: up to the next quote or whitespace outside strings, up to the next
    // quote or backslash inside them.
    while i < bytes.len() {
        let run = bytes[i..]
            .iter()
            .position(|b| matches!(b, b'"' | b' ' | b'\n' | b'\r' | b'\t'))
            .unwrap_or(bytes.len() - i);
        out.extend_from_slice(&bytes[i..i + run]);
        i += run;
        match bytes.get(i) {
            Some(b'"') => {
                let start = i;
                i += 1;
                while let Some(rest) = bytes.get(i..) {
                    match rest.iter().position(|b| matches!(b, b'"' | b'\\')) {
                        Some(p) if rest[p] == b'\\' => i += p + 2,
                        Some(p) => {
                            i += p + 1;
                            break;
                        }
                        None => i = bytes.len(),
                    }
                    if i >= bytes.len() {
                        break;
                    }
                }
                let end = i.min(bytes.len());
                out.extend_from_slice(&bytes[start..end]);
                i = end;
            }
            Some(_) => i += 1, // whitespace between tokens
            None => {}
        }
    }
    out
}

/// Framed record bytes for `raw` written with schema `id`.
pub(crate) fn encode_framed(writer: &Writer, id: u32, raw: &RawValue) -> ApiResult<Vec<u8>> {
    let json: Json =
        serde_json::from_str(raw.get()).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let json = &json;
    let mut out = Vec::with_capacity(64);
    wire::write_header(&mut out, id);
    match writer {
        Writer::Avro(schema, names) => {
            let value =
                avro_json::to_avro(json, schema, names).map_err(ApiError::schema_mismatch)?;
            let datum = apache_avro::to_avro_datum(schema, value)
                .map_err(|e| ApiError::schema_mismatch(e.to_string()))?;
            out.extend_from_slice(&datum);
        }
        Writer::Json(validator, _) => {
            if let Err(e) = validator.validate(json) {
                return Err(ApiError::schema_mismatch(format!(
                    "{e} (at {})",
                    e.instance_path
                )));
            }
            serde_json::to_writer(&mut out, json)
                .map_err(|e| ApiError::unprocessable(e.to_string()))?;
        }
        Writer::Protobuf(message) => {
            let dynamic = DynamicMessage::deserialize(message.clone(), json)
                .map_err(|e| ApiError::schema_mismatch(e.to_string()))?;
            wire::write_indexes(&mut out, &sluice_sdk::schema::message_indexes(message));
            prost::Message::encode(&dynamic, &mut out)
                .map_err(|e| ApiError::schema_mismatch(e.to_string()))?;
        }
    }
    Ok(out)
}

fn decode_framed(writer: &Writer, mut body: &[u8]) -> Result<Json, String> {
    match writer {
        Writer::Avro(schema, _) => apache_avro::from_avro_datum(schema, &mut body, None)
            .map_err(|e| e.to_string())
            .and_then(|v| Json::try_from(v).map_err(|e| e.to_string())),
        Writer::Json(..) => serde_json::from_slice(body).map_err(|e| e.to_string()),
        Writer::Protobuf(message) => {
            let (indexes, body) = wire::read_indexes(body).map_err(|e| e.to_string())?;
            let file = message.parent_file();
            let desc = sluice_sdk::schema::message_at(&file, &indexes)
                .ok_or_else(|| format!("message indexes {indexes:?} name no message"))?;
            let m = DynamicMessage::decode(desc, body).map_err(|e| e.to_string())?;
            serde_json::to_value(&m).map_err(|e| e.to_string())
        }
    }
}

fn registry_error(e: sluice_sdk::Error) -> ApiError {
    match e {
        sluice_sdk::Error::Registry {
            status: 404,
            message,
            ..
        } => ApiError::invalid_schema(format!("not found in the registry: {message}")),
        sluice_sdk::Error::Registry {
            status, message, ..
        } if (400..500).contains(&status) => ApiError::invalid_schema(message),
        sluice_sdk::Error::SchemaIncompatible { subject, reasons } => ApiError::invalid_schema(
            format!("incompatible with the versions of subject {subject}: {reasons:?}"),
        ),
        other => ApiError::kafka_retriable(format!("schema registry: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: Json) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    #[test]
    fn json_is_written_compact_with_strings_untouched() {
        let text = " { \"a\" : [ 1 , 2 ] ,\n\t\"s\": \" x \\\" y \" } ";
        let raw = RawValue::from_string(text.to_owned()).unwrap();
        let out = encode_plain(Format::Json, &raw).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"a":[1,2],"s":" x \" y "}"#
        );
        let parsed: Json = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed, serde_json::from_str::<Json>(text).unwrap());
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = Json> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[ -~\\t\\n\"\\\\é€]{0,12}".prop_map(Json::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                proptest::collection::btree_map("[a-z \"]{0,6}", inner, 0..6)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn minify_equals_compact_serialization(v in any_json()) {
            let pretty = serde_json::to_string_pretty(&v).unwrap();
            let raw = RawValue::from_string(pretty).unwrap();
            let out = encode_plain(Format::Json, &raw).unwrap();
            proptest::prop_assert_eq!(out, serde_json::to_vec(&v).unwrap());
        }
    }

    #[test]
    fn plain_formats() {
        assert_eq!(
            encode_plain(Format::Binary, &raw(json!("aGk="))).unwrap(),
            b"hi"
        );
        assert_eq!(
            encode_plain(Format::Json, &raw(json!({"a":1}))).unwrap(),
            br#"{"a":1}"#
        );
        assert_eq!(
            encode_plain(Format::String, &raw(json!("x"))).unwrap(),
            b"x"
        );
        assert_eq!(
            encode_plain(Format::Binary, &raw(json!("@@")))
                .unwrap_err()
                .code,
            42206
        );
        assert_eq!(
            encode_plain(Format::Binary, &raw(json!(5)))
                .unwrap_err()
                .code,
            42206
        );
        assert_eq!(
            encode_plain(Format::Avro, &raw(json!(5))).unwrap_err().code,
            42206
        );
    }

    #[test]
    fn json_schema_values_are_validated() {
        let schema = json!({"title":"Click","type":"object","properties":{"page":{"type":"string"}},"required":["page"]});
        let writer = Writer::Json(
            jsonschema::validator_for(&schema).unwrap(),
            Some("Click".into()),
        );
        let ok = encode_framed(&writer, 7, &raw(json!({"page":"/"}))).unwrap();
        assert_eq!(&ok[..5], &[0, 0, 0, 0, 7]);
        assert_eq!(
            decode_framed(&writer, &ok[5..]).unwrap(),
            json!({"page":"/"})
        );
        let err = encode_framed(&writer, 7, &raw(json!({"page":3}))).unwrap_err();
        assert_eq!(err.code, 42203);
        assert_eq!(writer.type_name().as_deref(), Some("Click"));
    }

    #[test]
    fn avro_values_round_trip() {
        let schema = apache_avro::Schema::parse_str(
            r#"{"type":"record","name":"C","namespace":"n","fields":[{"name":"id","type":"long"}]}"#,
        )
        .unwrap();
        let writer = Writer::Avro(schema, Names::new());
        let bytes = encode_framed(&writer, 1, &raw(json!({"id": 5}))).unwrap();
        assert_eq!(
            decode_framed(&writer, &bytes[5..]).unwrap(),
            json!({"id": 5})
        );
        assert_eq!(writer.type_name().as_deref(), Some("n.C"));
        assert_eq!(
            encode_framed(&writer, 1, &raw(json!({"id": "x"})))
                .unwrap_err()
                .code,
            42203
        );
    }
}
