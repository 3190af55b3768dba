//! Schema formats: parsing, the normalized text used to recognize an already registered schema,
//! and the reader/writer compatibility check each format defines.

pub mod avro;
pub mod cache;
pub mod json;
pub mod limits;
pub mod protobuf;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The format of a registered schema; Confluent's `schemaType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SchemaType {
    /// Apache Avro, the default when a request names no type.
    #[default]
    #[serde(rename = "AVRO")]
    Avro,
    /// Protocol Buffers.
    #[serde(rename = "PROTOBUF")]
    Protobuf,
    /// JSON Schema.
    #[serde(rename = "JSON")]
    Json,
}

impl SchemaType {
    /// Whether this is AVRO, which Confluent leaves out of responses and records.
    pub fn is_avro(&self) -> bool {
        *self == SchemaType::Avro
    }

    /// The name Confluent uses, e.g. `PROTOBUF`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Protobuf => "PROTOBUF",
            SchemaType::Json => "JSON",
        }
    }
}

impl FromStr for SchemaType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "AVRO" => Ok(SchemaType::Avro),
            "PROTOBUF" => Ok(SchemaType::Protobuf),
            "JSON" => Ok(SchemaType::Json),
            other => Err(format!(
                "unknown schema type '{other}'; use AVRO, PROTOBUF or JSON"
            )),
        }
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text of a schema that another schema references, under the name the referrer uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolvedReference {
    /// Name in the referencing schema (Avro full name, `.proto` import path, JSON `$ref` URL).
    pub name: String,
    /// Text of the referenced schema.
    pub schema: String,
}

/// A parsed, valid schema of any format.
#[derive(Debug, Clone)]
pub enum ParsedSchema {
    /// An Avro schema.
    Avro(avro::AvroSchema),
    /// A `.proto` file.
    Protobuf(Box<protobuf::ProtoSchema>),
    /// A JSON Schema document.
    Json(json::JsonSchema),
}

impl ParsedSchema {
    /// Parses and validates `text` of type `ty`; `references` are the (transitively) imported
    /// schemas. The error names the problem, for a 42201 answer.
    pub fn parse(
        ty: SchemaType,
        text: &str,
        references: &[ResolvedReference],
    ) -> Result<Self, String> {
        match ty {
            SchemaType::Avro => avro::AvroSchema::parse(text, references).map(ParsedSchema::Avro),
            SchemaType::Protobuf => protobuf::ProtoSchema::parse(text, references)
                .map(|p| ParsedSchema::Protobuf(Box::new(p))),
            SchemaType::Json => json::JsonSchema::parse(text, references).map(ParsedSchema::Json),
        }
    }

    /// The text to store: the submitted schema in a stable form (or its canonical form when the
    /// caller asked to `normalize`), so the same schema registered twice is recognized.
    pub fn stored_text(&self, normalize: bool) -> String {
        match self {
            ParsedSchema::Avro(s) => s.stored_text(normalize),
            ParsedSchema::Protobuf(s) => s.stored_text(normalize),
            ParsedSchema::Json(s) => s.stored_text(),
        }
    }

    /// Why data written with `writer` cannot be read with `reader`; empty when it can.
    pub fn read_problems(writer: &ParsedSchema, reader: &ParsedSchema) -> Vec<String> {
        match (writer, reader) {
            (ParsedSchema::Avro(w), ParsedSchema::Avro(r)) => avro::read_problems(w, r),
            (ParsedSchema::Protobuf(w), ParsedSchema::Protobuf(r)) => protobuf::read_problems(w, r),
            (ParsedSchema::Json(w), ParsedSchema::Json(r)) => json::read_problems(w, r),
            _ => vec!["the schema type differs from the earlier schema's type".to_string()],
        }
    }
}

/// A subject's compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompatibilityLevel {
    /// No checks.
    None,
    /// The new schema reads data written with the latest one.
    #[default]
    Backward,
    /// The new schema reads data written with every earlier one.
    BackwardTransitive,
    /// The latest schema reads data written with the new one.
    Forward,
    /// Every earlier schema reads data written with the new one.
    ForwardTransitive,
    /// Backward and forward against the latest schema.
    Full,
    /// Backward and forward against every earlier schema.
    FullTransitive,
}

impl CompatibilityLevel {
    /// The name Confluent uses, e.g. `FULL_TRANSITIVE`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether the level compares against every earlier version, not just the latest.
    pub fn is_transitive(&self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    fn backward(&self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    fn forward(&self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    /// Why `new` may not follow `previous` (oldest first) under this level; empty when it may.
    pub fn problems(&self, new: &ParsedSchema, previous: &[ParsedSchema]) -> Vec<String> {
        let against: &[ParsedSchema] = if self.is_transitive() {
            previous
        } else {
            previous.last().map(std::slice::from_ref).unwrap_or(&[])
        };
        let mut problems = Vec::new();
        for old in against.iter().rev() {
            if self.backward() {
                for p in ParsedSchema::read_problems(old, new) {
                    problems.push(format!("backward: the new schema cannot read data written with an earlier one: {p}"));
                }
            }
            if self.forward() {
                for p in ParsedSchema::read_problems(new, old) {
                    problems.push(format!(
                        "forward: an earlier schema cannot read data written with the new one: {p}"
                    ));
                }
            }
        }
        problems
    }
}

impl FromStr for CompatibilityLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "NONE" => CompatibilityLevel::None,
            "BACKWARD" => CompatibilityLevel::Backward,
            "BACKWARD_TRANSITIVE" => CompatibilityLevel::BackwardTransitive,
            "FORWARD" => CompatibilityLevel::Forward,
            "FORWARD_TRANSITIVE" => CompatibilityLevel::ForwardTransitive,
            "FULL" => CompatibilityLevel::Full,
            "FULL_TRANSITIVE" => CompatibilityLevel::FullTransitive,
            other => {
                return Err(format!(
                    "Invalid compatibility level '{other}'. Valid values are NONE, BACKWARD, \
                     FORWARD, FULL, BACKWARD_TRANSITIVE, FORWARD_TRANSITIVE, FULL_TRANSITIVE"
                ))
            }
        })
    }
}
