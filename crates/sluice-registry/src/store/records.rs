//! Confluent's key and value JSON layouts for the records of the `_schemas` topic, so a
//! registry's topic can be migrated between Sluice and Confluent's registry in either direction.

use serde::{Deserialize, Serialize};

use crate::formats::SchemaType;

/// A reference from one schema to a schema registered under another subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    /// Name the referencing schema uses for the import (Avro full name, `.proto` path, URL).
    pub name: String,
    /// Subject under which the referenced schema is registered.
    pub subject: String,
    /// Version of the referenced schema in that subject.
    pub version: i32,
}

/// The key of a `_schemas` record; `keytype` selects the variant, as in Confluent's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype")]
pub enum RecordKey {
    /// One version of a subject.
    #[serde(rename = "SCHEMA")]
    Schema {
        /// Subject of the version.
        subject: String,
        /// Version number within the subject.
        version: i32,
        /// Layout version of the key.
        magic: i32,
    },
    /// Compatibility level of a subject (or the global one without `subject`; registries
    /// before Confluent 6.0 wrote `"subject":null`, which reads the same).
    #[serde(rename = "CONFIG")]
    Config {
        /// Subject, or `None` for the global level.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// Layout version of the key.
        magic: i32,
    },
    /// Mode of a subject (or the global one without `subject`).
    #[serde(rename = "MODE")]
    Mode {
        /// Subject, or `None` for the global mode.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// Layout version of the key.
        magic: i32,
    },
    /// Soft deletion of a whole subject.
    #[serde(rename = "DELETE_SUBJECT")]
    DeleteSubject {
        /// Subject being deleted.
        subject: String,
        /// Layout version of the key.
        magic: i32,
    },
    /// Confluent's registry writes this after permanently deleting every version of a subject
    /// when switching it to IMPORT mode; the tombstones before it carry the state.
    #[serde(rename = "CLEAR_SUBJECT")]
    ClearSubject {
        /// Subject cleared.
        subject: String,
        /// Layout version of the key.
        #[serde(default)]
        magic: i32,
    },
    /// A schema context of Confluent's registry (a namespace of subjects); Sluice has no
    /// contexts, and subjects in one arrive with their qualified names (`:.ctx:subject`).
    #[serde(rename = "CONTEXT")]
    Context {
        /// Tenant of the context.
        #[serde(default)]
        tenant: Option<String>,
        /// The context's name.
        #[serde(default)]
        context: Option<String>,
        /// Layout version of the key.
        #[serde(default)]
        magic: i32,
    },
    /// Marker written to learn the current end of the topic; carries no state.
    #[serde(rename = "NOOP")]
    Noop {
        /// Layout version of the key.
        magic: i32,
    },
}

/// The value of a SCHEMA record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaValue {
    /// Subject of the version.
    pub subject: String,
    /// Version number within the subject.
    pub version: i32,
    /// Globally unique schema id.
    pub id: i64,
    /// Schema format; Confluent omits it for AVRO.
    #[serde(
        rename = "schemaType",
        default,
        skip_serializing_if = "SchemaType::is_avro"
    )]
    pub schema_type: SchemaType,
    /// Schemas this one imports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
    /// Schema text as registered.
    pub schema: String,
    /// Whether the version is soft-deleted.
    #[serde(default)]
    pub deleted: bool,
    /// Fields Confluent's registry writes that Sluice does not interpret (`metadata`,
    /// `ruleSet`, `md5`), kept so that a version Sluice rewrites (a soft delete) loses none.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The value of a CONFIG record (Confluent's other settings in it, such as `normalize`, are
/// ignored on reading).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigValue {
    /// Subject, absent for the global level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Compatibility level name, e.g. `BACKWARD`; absent when the record sets only other
    /// settings.
    #[serde(rename = "compatibilityLevel", default)]
    pub compatibility_level: Option<String>,
}

/// The value of a MODE record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeValue {
    /// Subject, absent for the global mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Mode name, e.g. `READWRITE`.
    pub mode: String,
}

/// The value of a DELETE_SUBJECT record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSubjectValue {
    /// Subject being deleted.
    pub subject: String,
    /// Highest version deleted; every version up to it becomes soft-deleted.
    pub version: i32,
}

/// One record to append to `_schemas`: a key and an optional value (`None` is a tombstone).
#[derive(Debug, Clone)]
pub struct Record {
    /// Serialized key.
    pub key: Vec<u8>,
    /// Serialized value, or `None` to delete the key under compaction.
    pub value: Option<Vec<u8>>,
}

impl Record {
    /// Builds a record from a key and a serializable value.
    pub fn new<V: Serialize>(key: &RecordKey, value: Option<&V>) -> Self {
        // Serializing these plain structs to JSON cannot fail: all keys are strings.
        let key = serde_json::to_vec(key).unwrap_or_default();
        let value = value.map(|v| serde_json::to_vec(v).unwrap_or_default());
        Self { key, value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_key_uses_confluent_layout() {
        let key = RecordKey::Schema {
            subject: "s".into(),
            version: 2,
            magic: 1,
        };
        let text = serde_json::to_string(&key).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}"#
        );
        let back: RecordKey = serde_json::from_str(&text).unwrap_or(RecordKey::Noop { magic: 9 });
        assert_eq!(back, key);
    }

    #[test]
    fn confluent_schema_value_parses_without_schema_type() {
        let raw =
            r#"{"subject":"t-value","version":1,"id":7,"schema":"\"string\"","deleted":false}"#;
        let v: SchemaValue = serde_json::from_str(raw).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.schema_type, SchemaType::Avro);
        assert_eq!(v.id, 7);
        let out = serde_json::to_string(&v).unwrap_or_default();
        assert!(!out.contains("schemaType"), "{out}");
    }

    #[test]
    fn confluent_fields_sluice_does_not_interpret_survive_a_rewrite() {
        let raw = r#"{"subject":"s","version":1,"id":3,"metadata":{"properties":{"owner":"team"}},"ruleSet":{"domainRules":[]},"schema":"\"string\"","deleted":false}"#;
        let mut v: SchemaValue = serde_json::from_str(raw).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.other.len(), 2);
        v.deleted = true;
        let out: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(&v).unwrap_or_default()).unwrap_or_default();
        assert_eq!(out["metadata"]["properties"]["owner"], "team");
        assert!(out["ruleSet"]["domainRules"].is_array());
        assert_eq!(out["deleted"], true);
    }

    #[test]
    fn global_config_key_leaves_the_subject_out_and_reads_the_old_null_form() {
        let key = RecordKey::Config {
            subject: None,
            magic: 0,
        };
        let text = serde_json::to_string(&key).unwrap_or_default();
        assert_eq!(text, r#"{"keytype":"CONFIG","magic":0}"#);
        let old: Result<RecordKey, _> =
            serde_json::from_str(r#"{"keytype":"CONFIG","subject":null,"magic":0}"#);
        assert_eq!(old.ok(), Some(key));
    }
}
