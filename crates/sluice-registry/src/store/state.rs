//! The registry's in-memory state, rebuilt by applying the `_schemas` records in offset order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::records::{
    ConfigValue, DeleteSubjectValue, ModeValue, RecordKey, SchemaReference, SchemaValue,
};
use crate::formats::{CompatibilityLevel, SchemaType};

/// A subject or global mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Normal operation.
    #[default]
    ReadWrite,
    /// Writes are refused.
    ReadOnly,
    /// Writes are refused, but the mode itself may be changed.
    ReadOnlyOverride,
    /// Schemas are registered with caller-chosen ids and versions (migration).
    Import,
}

impl Mode {
    /// The name Confluent uses, e.g. `READWRITE`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::ReadOnlyOverride => "READONLY_OVERRIDE",
            Mode::Import => "IMPORT",
        }
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "READWRITE" => Mode::ReadWrite,
            "READONLY" => Mode::ReadOnly,
            "READONLY_OVERRIDE" => Mode::ReadOnlyOverride,
            "IMPORT" => Mode::Import,
            other => {
                return Err(format!(
                    "Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE and IMPORT (not '{other}')."
                ))
            }
        })
    }
}

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionEntry {
    /// Schema id of the version.
    pub id: i64,
    /// Whether it is soft-deleted.
    pub deleted: bool,
}

/// A schema by id, shared by every subject version that registered the same content.
#[derive(Debug)]
pub struct SchemaEntry {
    /// Format.
    pub schema_type: SchemaType,
    /// Text as stored.
    pub schema: String,
    /// Imports.
    pub references: Vec<SchemaReference>,
    /// Pre-rendered `GET /schemas/ids/{id}` body, so that hot read allocates nothing.
    pub by_id_body: Bytes,
    /// Confluent's fields Sluice does not interpret, as first read ([`SchemaValue::other`]).
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// What identifies identical content, so the same schema gets the same id everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentKey {
    /// Format.
    pub schema_type: SchemaType,
    /// Text as stored.
    pub schema: String,
    /// Imports.
    pub references: Vec<SchemaReference>,
}

/// Body of `GET /schemas/ids/{id}`, in Confluent's field order.
#[derive(Serialize)]
struct ByIdBody<'a> {
    schema: &'a str,
    #[serde(rename = "schemaType", skip_serializing_if = "SchemaType::is_avro")]
    schema_type: SchemaType,
    #[serde(skip_serializing_if = "<[SchemaReference]>::is_empty")]
    references: &'a [SchemaReference],
}

/// NOOP value Sluice writes after a permanent delete so ids are never reused after a restart.
#[derive(Debug, Serialize, Deserialize)]
pub struct NoopValue {
    /// Highest schema id ever assigned.
    #[serde(rename = "maxId")]
    pub max_id: i64,
}

/// Everything the registry knows.
#[derive(Debug, Default)]
pub struct State {
    /// Versions per subject.
    pub subjects: BTreeMap<String, BTreeMap<i32, VersionEntry>>,
    /// Schemas by id.
    pub schemas: HashMap<i64, Arc<SchemaEntry>>,
    /// Id of each distinct content.
    pub by_content: HashMap<ContentKey, i64>,
    /// Subject versions using each id.
    pub id_users: HashMap<i64, BTreeSet<(String, i32)>>,
    /// Highest id ever seen (ids are never reused).
    pub max_id: i64,
    /// Global compatibility level, when set.
    pub global_compat: Option<CompatibilityLevel>,
    /// Subject compatibility levels.
    pub subject_compat: HashMap<String, CompatibilityLevel>,
    /// Global mode, when set.
    pub global_mode: Option<Mode>,
    /// Subject modes.
    pub subject_mode: HashMap<String, Mode>,
}

impl State {
    /// Applies one record; malformed records are logged and skipped, since the topic may hold
    /// records from other registry versions.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        let key: RecordKey = match serde_json::from_slice(key) {
            Ok(k) => k,
            Err(e) => {
                warn!("skipping a _schemas record with an unreadable key: {e}");
                return;
            }
        };
        if let Err(e) = self.apply_parsed(&key, value) {
            warn!("skipping a _schemas record for {key:?}: {e}");
        }
    }

    fn apply_parsed(&mut self, key: &RecordKey, value: Option<&[u8]>) -> Result<(), String> {
        match key {
            RecordKey::Schema {
                subject, version, ..
            } => match value {
                Some(v) => {
                    let v: SchemaValue = serde_json::from_slice(v).map_err(|e| e.to_string())?;
                    self.put_schema(v);
                }
                None => self.remove_version(subject, *version),
            },
            RecordKey::Config { subject, .. } => {
                let level = match value {
                    Some(v) => {
                        let v: ConfigValue =
                            serde_json::from_slice(v).map_err(|e| e.to_string())?;
                        v.compatibility_level
                            .as_deref()
                            .map(CompatibilityLevel::from_str)
                            .transpose()?
                    }
                    None => None,
                };
                match (subject, level) {
                    (None, level) => self.global_compat = level,
                    (Some(s), Some(level)) => {
                        self.subject_compat.insert(s.clone(), level);
                    }
                    (Some(s), None) => {
                        self.subject_compat.remove(s);
                    }
                }
            }
            RecordKey::Mode { subject, .. } => {
                let mode = match value {
                    Some(v) => {
                        let v: ModeValue = serde_json::from_slice(v).map_err(|e| e.to_string())?;
                        Some(Mode::from_str(&v.mode)?)
                    }
                    None => None,
                };
                match (subject, mode) {
                    (None, mode) => self.global_mode = mode,
                    (Some(s), Some(mode)) => {
                        self.subject_mode.insert(s.clone(), mode);
                    }
                    (Some(s), None) => {
                        self.subject_mode.remove(s);
                    }
                }
            }
            RecordKey::DeleteSubject { subject, .. } => {
                if let Some(v) = value {
                    let v: DeleteSubjectValue =
                        serde_json::from_slice(v).map_err(|e| e.to_string())?;
                    if let Some(versions) = self.subjects.get_mut(subject) {
                        for (_, entry) in versions.range_mut(..=v.version) {
                            entry.deleted = true;
                        }
                    }
                }
            }
            // Both only matter to Confluent's caches: the state they relate to arrives in
            // SCHEMA records (and tombstones) of their own.
            RecordKey::ClearSubject { .. } | RecordKey::Context { .. } => {}
            RecordKey::Noop { .. } => {
                if let Some(v) = value {
                    if let Ok(v) = serde_json::from_slice::<NoopValue>(v) {
                        self.max_id = self.max_id.max(v.max_id);
                    }
                }
            }
        }
        Ok(())
    }

    fn put_schema(&mut self, v: SchemaValue) {
        self.max_id = self.max_id.max(v.id);
        let content = ContentKey {
            schema_type: v.schema_type,
            schema: v.schema,
            references: v.references,
        };
        self.schemas.entry(v.id).or_insert_with(|| {
            let body = ByIdBody {
                schema: &content.schema,
                schema_type: content.schema_type,
                references: &content.references,
            };
            let by_id_body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
            Arc::new(SchemaEntry {
                schema_type: content.schema_type,
                schema: content.schema.clone(),
                references: content.references.clone(),
                by_id_body,
                other: v.other,
            })
        });
        self.by_content.entry(content).or_insert(v.id);
        // A version rewritten with another id (IMPORT) leaves its old id's user list.
        let previous = self.subjects.entry(v.subject.clone()).or_default().insert(
            v.version,
            VersionEntry {
                id: v.id,
                deleted: v.deleted,
            },
        );
        if let Some(prev) = previous.filter(|p| p.id != v.id) {
            self.drop_user(prev.id, &v.subject, v.version);
        }
        self.id_users
            .entry(v.id)
            .or_default()
            .insert((v.subject, v.version));
    }

    fn remove_version(&mut self, subject: &str, version: i32) {
        let Some(versions) = self.subjects.get_mut(subject) else {
            return;
        };
        let Some(entry) = versions.remove(&version) else {
            return;
        };
        if versions.is_empty() {
            self.subjects.remove(subject);
        }
        self.drop_user(entry.id, subject, version);
    }

    /// Forgets that `subject`/`version` uses `id`; the schema goes when nothing uses it.
    fn drop_user(&mut self, id: i64, subject: &str, version: i32) {
        let unused = match self.id_users.get_mut(&id) {
            Some(users) => {
                users.remove(&(subject.to_string(), version));
                users.is_empty()
            }
            None => true,
        };
        if unused {
            self.id_users.remove(&id);
            if let Some(entry) = self.schemas.remove(&id) {
                self.by_content.remove(&ContentKey {
                    schema_type: entry.schema_type,
                    schema: entry.schema.clone(),
                    references: entry.references.clone(),
                });
            }
        }
    }

    /// The compatibility level that applies to `subject`.
    pub fn compat_for(&self, subject: &str) -> CompatibilityLevel {
        self.subject_compat
            .get(subject)
            .copied()
            .or(self.global_compat)
            .unwrap_or_default()
    }

    /// The mode that applies to `subject`.
    pub fn mode_for(&self, subject: &str) -> Mode {
        self.subject_mode
            .get(subject)
            .copied()
            .or(self.global_mode)
            .unwrap_or_default()
    }

    /// Whether `subject` has at least one version that is not soft-deleted.
    pub fn subject_live(&self, subject: &str) -> bool {
        self.subjects
            .get(subject)
            .is_some_and(|v| v.values().any(|e| !e.deleted))
    }

    /// Ids of the schemas that reference `subject`/`version`.
    pub fn referenced_by(&self, subject: &str, version: i32) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .schemas
            .iter()
            .filter(|(id, entry)| {
                entry
                    .references
                    .iter()
                    .any(|r| r.subject == subject && r.version == version)
                    && self.id_users.get(*id).is_some_and(|users| {
                        users.iter().any(|(s, v)| {
                            self.subjects
                                .get(s)
                                .and_then(|vs| vs.get(v))
                                .is_some_and(|e| !e.deleted)
                        })
                    })
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::Record;

    fn schema_record(subject: &str, version: i32, id: i64, text: &str, deleted: bool) -> Record {
        Record::new(
            &RecordKey::Schema {
                subject: subject.into(),
                version,
                magic: 1,
            },
            Some(&SchemaValue {
                subject: subject.into(),
                version,
                id,
                schema_type: SchemaType::Avro,
                references: vec![],
                schema: text.into(),
                deleted,
                other: Default::default(),
            }),
        )
    }

    fn apply(state: &mut State, r: &Record) {
        state.apply(&r.key, r.value.as_deref());
    }

    #[test]
    fn same_content_shares_an_id_and_tombstones_free_it() {
        let mut s = State::default();
        apply(&mut s, &schema_record("a", 1, 1, "\"int\"", false));
        apply(&mut s, &schema_record("b", 1, 1, "\"int\"", false));
        assert_eq!(s.id_users.get(&1).map(BTreeSet::len), Some(2));
        let tomb = Record {
            key: schema_record("a", 1, 1, "", false).key,
            value: None,
        };
        apply(&mut s, &tomb);
        assert!(s.schemas.contains_key(&1));
        let tomb_b = Record {
            key: schema_record("b", 1, 1, "", false).key,
            value: None,
        };
        apply(&mut s, &tomb_b);
        assert!(!s.schemas.contains_key(&1));
        assert_eq!(s.max_id, 1, "max id survives deletes");
    }

    #[test]
    fn delete_subject_soft_deletes_up_to_version() {
        let mut s = State::default();
        apply(&mut s, &schema_record("a", 1, 1, "\"int\"", false));
        apply(&mut s, &schema_record("a", 2, 2, "\"long\"", false));
        let del = Record::new(
            &RecordKey::DeleteSubject {
                subject: "a".into(),
                magic: 0,
            },
            Some(&DeleteSubjectValue {
                subject: "a".into(),
                version: 1,
            }),
        );
        apply(&mut s, &del);
        assert!(s.subject_live("a"));
        let versions = s.subjects.get("a").cloned().unwrap_or_default();
        assert!(versions.get(&1).is_some_and(|e| e.deleted));
        assert!(versions.get(&2).is_some_and(|e| !e.deleted));
    }

    #[test]
    fn garbage_records_are_skipped() {
        let mut s = State::default();
        s.apply(b"not json", Some(b"x"));
        s.apply(
            br#"{"keytype":"SCHEMA","subject":"a","version":1,"magic":1}"#,
            Some(b"{"),
        );
        assert!(s.subjects.is_empty());
    }

    #[test]
    fn configs_and_modes_apply_and_clear() {
        let mut s = State::default();
        let key = RecordKey::Config {
            subject: Some("x".into()),
            magic: 0,
        };
        apply(
            &mut s,
            &Record::new(
                &key,
                Some(&ConfigValue {
                    subject: Some("x".into()),
                    compatibility_level: Some("FULL".into()),
                }),
            ),
        );
        assert_eq!(s.compat_for("x"), CompatibilityLevel::Full);
        apply(&mut s, &Record::new::<ConfigValue>(&key, None));
        assert_eq!(s.compat_for("x"), CompatibilityLevel::Backward);
        let mkey = RecordKey::Mode {
            subject: None,
            magic: 0,
        };
        apply(
            &mut s,
            &Record::new(
                &mkey,
                Some(&ModeValue {
                    subject: None,
                    mode: "READONLY".into(),
                }),
            ),
        );
        assert_eq!(s.mode_for("any"), Mode::ReadOnly);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_records_never_panic(
            key in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            value in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..64)),
            subject in "[a-z]{1,3}",
            version in -2i32..4,
        ) {
            let mut s = State::default();
            s.apply(&key, value.as_deref());
            // Structurally valid keys with garbage values must be skipped too.
            let k = format!(r#"{{"keytype":"SCHEMA","subject":"{subject}","version":{version},"magic":1}}"#);
            s.apply(k.as_bytes(), value.as_deref());
            let k = format!(r#"{{"keytype":"DELETE_SUBJECT","subject":"{subject}","magic":0}}"#);
            s.apply(k.as_bytes(), value.as_deref());
        }
    }
}
