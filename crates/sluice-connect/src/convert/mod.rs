//! Converters: Connect data to the bytes of a Kafka record, as Kafka Connect's
//! `JsonConverter` and Confluent's `AvroConverter` write them, so existing consumers and
//! deserializers read Sluice's records unchanged.

mod avro;
mod json;

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_sdk::{RegistryClient, RetryPolicy};

use crate::data::{Datum, Schema};
use crate::plugin::{Problems, TaskError};

/// A schema prepared once for repeated conversion: its JSON form (for the JSON converter's
/// envelope) and its Avro form (for the registry).
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) schema: Schema,
    json: String,
    avro: String,
}

impl Prepared {
    pub(crate) fn new(schema: Schema) -> Arc<Self> {
        Arc::new(Self {
            json: schema.to_json().to_string(),
            avro: avro::schema_json(&schema).to_string(),
            schema,
        })
    }
}

/// The converter settings of one side (key or value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConverterConfig {
    /// `org.apache.kafka.connect.json.JsonConverter`.
    Json {
        /// `schemas.enable`.
        schemas: bool,
    },
    /// `io.confluent.connect.avro.AvroConverter`.
    Avro {
        /// `schema.registry.url`.
        registry_url: String,
    },
}

const JSON: &str = "org.apache.kafka.connect.json.JsonConverter";
const AVRO: &str = "io.confluent.connect.avro.AvroConverter";

impl ConverterConfig {
    /// Reads `<side>.converter` and its settings (`side` is `key` or `value`).
    pub(crate) fn parse(
        props: &BTreeMap<String, String>,
        side: &str,
        problems: &mut Problems,
    ) -> Self {
        let key = format!("{side}.converter");
        let get = |suffix: &str| {
            props
                .get(&format!("{key}.{suffix}"))
                .map(|v| v.trim().to_owned())
        };
        match props.get(&key).map(|c| c.trim()).unwrap_or(JSON) {
            JSON => {
                let schemas = match get("schemas.enable").as_deref() {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(other) => {
                        problems.add(
                            &format!("{key}.schemas.enable"),
                            format!("{other:?} is not true or false"),
                        );
                        true
                    }
                };
                ConverterConfig::Json { schemas }
            }
            AVRO => match get("schema.registry.url") {
                Some(url) if !url.is_empty() => ConverterConfig::Avro {
                    // Confluent's converter takes a comma-separated list; the first is used.
                    registry_url: url.split(',').next().unwrap_or_default().trim().to_owned(),
                },
                _ => {
                    problems.add(
                        &format!("{key}.schema.registry.url"),
                        format!("required by {AVRO}"),
                    );
                    ConverterConfig::Json { schemas: true }
                }
            },
            other => {
                problems.add(
                    &key,
                    format!("{other} is not supported; use {JSON} or {AVRO}"),
                );
                ConverterConfig::Json { schemas: true }
            }
        }
    }
}

/// `datum` as JsonConverter writes it with `schemas.enable=false`.
pub(crate) fn schemaless_json(schema: &Schema, datum: &Datum) -> Vec<u8> {
    json::encode(None, schema, datum)
}

/// The key and value converters of a connector.
#[derive(Clone)]
pub(crate) struct Converters {
    pub(crate) key: Converter,
    pub(crate) value: Converter,
}

impl Converters {
    pub(crate) fn new(key: &ConverterConfig, value: &ConverterConfig) -> Result<Self, TaskError> {
        Ok(Self {
            key: Converter::new(key)?,
            value: Converter::new(value)?,
        })
    }
}

/// A ready converter.
#[derive(Clone)]
pub(crate) enum Converter {
    Json { schemas: bool },
    Avro(RegistryClient),
}

impl Converter {
    pub(crate) fn new(config: &ConverterConfig) -> Result<Self, TaskError> {
        Ok(match config {
            ConverterConfig::Json { schemas } => Converter::Json { schemas: *schemas },
            ConverterConfig::Avro { registry_url } => Converter::Avro(
                RegistryClient::new(registry_url, RetryPolicy::default())
                    .map_err(|e| TaskError::Fatal(e.to_string()))?,
            ),
        })
    }

    /// Its class name as Connect configs name it.
    pub(crate) fn class(&self) -> &'static str {
        match self {
            Converter::Json { .. } => JSON,
            Converter::Avro(_) => AVRO,
        }
    }

    /// The record bytes of `datum` on `topic` (`None` for a null datum: a tombstone).
    pub(crate) async fn encode(
        &self,
        topic: &str,
        is_key: bool,
        schema: &Prepared,
        datum: &Datum,
    ) -> Result<Option<Vec<u8>>, TaskError> {
        if *datum == Datum::Null {
            return Ok(None);
        }
        match self {
            Converter::Json { schemas } => Ok(Some(json::encode(
                schemas.then_some(schema.json.as_str()),
                &schema.schema,
                datum,
            ))),
            Converter::Avro(registry) => {
                let subject = format!("{topic}-{}", if is_key { "key" } else { "value" });
                let (id, _) = registry
                    .register(&subject, "AVRO", &schema.avro, &[])
                    .await
                    .map_err(|e| {
                        let message = format!("registering {subject}: {e}");
                        // An unreachable registry may come back; a refused schema will not.
                        match e {
                            sluice_sdk::Error::RegistryUnreachable { .. } => {
                                TaskError::Retriable(message)
                            }
                            _ => TaskError::Fatal(message),
                        }
                    })?;
                let mut out = Vec::with_capacity(64);
                out.push(0);
                out.extend_from_slice(&id.to_be_bytes());
                avro::encode(&schema.schema, datum, &mut out).map_err(TaskError::Fatal)?;
                Ok(Some(out))
            }
        }
    }
}
