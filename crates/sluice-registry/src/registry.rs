//! Registry operations over the state and the `_schemas` log: the rules of Confluent's registry
//! independent of HTTP.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;
use crate::formats::cache::CanonicalCache;
use crate::formats::limits::{MAX_REFERENCED_BYTES, MAX_REFERENCES, MAX_REFERENCE_DEPTH};
use crate::formats::{CompatibilityLevel, ParsedSchema, ResolvedReference, SchemaType};
use crate::store::log::SchemaLog;
use crate::store::records::{
    ConfigValue, DeleteSubjectValue, ModeValue, Record, RecordKey, SchemaReference, SchemaValue,
};
use crate::store::state::{ContentKey, Mode, NoopValue, SchemaEntry, State};

/// A schema as submitted for registration, lookup or a compatibility test.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemaRequest {
    /// Schema text; missing or blank is Confluent's "Empty schema".
    #[serde(default)]
    pub schema: String,
    /// Format; AVRO when absent.
    #[serde(rename = "schemaType", default)]
    pub schema_type: Option<String>,
    /// Imports (`null` is none, as in Confluent).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub references: Vec<SchemaReference>,
    /// Caller-chosen id (IMPORT mode).
    #[serde(default)]
    pub id: Option<i64>,
    /// Caller-chosen version (IMPORT mode).
    #[serde(default)]
    pub version: Option<i32>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SchemaReference>, D::Error> {
    Ok(Option::<Vec<SchemaReference>>::deserialize(d)?.unwrap_or_default())
}

impl SchemaRequest {
    /// Whether the request carries no schema text.
    pub fn is_empty(&self) -> bool {
        self.schema.trim().is_empty()
    }
}

/// A subject version as returned by the API.
#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    /// Subject.
    pub subject: String,
    /// Schema id.
    pub id: i64,
    /// Version number.
    pub version: i32,
    /// Format (left out for AVRO).
    #[serde(rename = "schemaType", skip_serializing_if = "SchemaType::is_avro")]
    pub schema_type: SchemaType,
    /// Imports (left out when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
    /// Schema text.
    pub schema: String,
}

/// Which version of a subject a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// `latest` or `-1`.
    Latest,
    /// A version number.
    Number(i32),
}

impl VersionSpec {
    /// Parses a path segment: a positive number, `latest` or `-1` (42202 otherwise).
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        if s.eq_ignore_ascii_case("latest") || s == "-1" {
            return Ok(VersionSpec::Latest);
        }
        match s.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(VersionSpec::Number(n)),
            _ => Err(RegistryError::InvalidVersion(s.to_string())),
        }
    }
}

/// The registry: in-memory state kept current from the `_schemas` log, and the single-writer
/// path that appends to it.
pub struct Registry {
    state: Arc<RwLock<State>>,
    log: SchemaLog,
    write_lock: tokio::sync::Mutex<()>,
    canonical: CanonicalCache,
}

/// State of one [`Registry::resolve`].
#[derive(Default)]
struct ReferenceWalk {
    out: Vec<ResolvedReference>,
    seen: HashSet<(String, i32)>,
    bytes: usize,
}

impl ReferenceWalk {
    /// Recursion is bounded by [`MAX_REFERENCE_DEPTH`], checked on entry.
    fn visit(
        &mut self,
        state: &State,
        refs: &[SchemaReference],
        depth: usize,
    ) -> Result<(), RegistryError> {
        if refs.is_empty() {
            return Ok(());
        }
        if depth >= MAX_REFERENCE_DEPTH {
            return Err(RegistryError::InvalidSchema(format!(
                "Invalid schema: references are nested deeper than the limit of {MAX_REFERENCE_DEPTH} levels"
            )));
        }
        if refs.len() > MAX_REFERENCES {
            return Err(too_many_references());
        }
        for r in refs {
            let entry = Registry::version_entry(state, &r.subject, r.version, false).map_err(|_| {
                RegistryError::InvalidSchema(format!(
                    "Invalid schema: reference '{}' points to subject '{}' version {} which does not exist; register it first",
                    r.name, r.subject, r.version
                ))
            })?;
            if !self.seen.insert((r.subject.clone(), entry.1)) {
                continue;
            }
            if self.seen.len() > MAX_REFERENCES {
                return Err(too_many_references());
            }
            self.bytes = self.bytes.saturating_add(entry.2.schema.len());
            if self.bytes > MAX_REFERENCED_BYTES {
                return Err(RegistryError::InvalidSchema(format!(
                    "Invalid schema: the referenced schemas add up to more than the limit of {MAX_REFERENCED_BYTES} bytes"
                )));
            }
            self.visit(state, &entry.2.references, depth + 1)?;
            self.out.push(ResolvedReference {
                name: r.name.clone(),
                schema: entry.2.schema.clone(),
            });
        }
        Ok(())
    }
}

fn too_many_references() -> RegistryError {
    RegistryError::InvalidSchema(format!(
        "Invalid schema: the schema references more than the limit of {MAX_REFERENCES} schemas (directly and through other references)"
    ))
}

fn schema_type_of(req: &SchemaRequest) -> Result<SchemaType, RegistryError> {
    match &req.schema_type {
        None => Ok(SchemaType::Avro),
        Some(t) => t.parse().map_err(RegistryError::InvalidSchema),
    }
}

impl Registry {
    /// Wraps an opened log and the state it feeds.
    pub fn new(state: Arc<RwLock<State>>, log: SchemaLog) -> Self {
        Self {
            state,
            log,
            write_lock: tokio::sync::Mutex::new(()),
            canonical: CanonicalCache::default(),
        }
    }

    /// Read access to the state.
    pub fn state(&self) -> parking_lot::RwLockReadGuard<'_, State> {
        self.state.read()
    }

    /// Waits until this instance has applied everything the topic holds now.
    pub async fn catch_up(&self) -> Result<(), RegistryError> {
        self.log.catch_up().await
    }

    /// Stops reading the log.
    pub fn close(&self) {
        self.log.close();
    }

    /// Resolves `refs` (and their own references, transitively) to texts, dependencies first.
    ///
    /// Each subject version is resolved once however often it is reached, so diamonds cost
    /// nothing extra and cycles (possible through `latest` references, or records written to
    /// `_schemas` by others) end; chains deeper than [`MAX_REFERENCE_DEPTH`], more than
    /// [`MAX_REFERENCES`] schemas or more than [`MAX_REFERENCED_BYTES`] of text are refused.
    fn resolve(
        state: &State,
        refs: &[SchemaReference],
    ) -> Result<Vec<ResolvedReference>, RegistryError> {
        let mut walk = ReferenceWalk::default();
        walk.visit(state, refs, 0)?;
        Ok(walk.out)
    }

    /// (id, version, schema) of a subject version; `version` -1 is the latest.
    fn version_entry(
        state: &State,
        subject: &str,
        version: i32,
        deleted: bool,
    ) -> Result<(i64, i32, Arc<SchemaEntry>), RegistryError> {
        let spec = if version == -1 {
            VersionSpec::Latest
        } else {
            VersionSpec::Number(version)
        };
        Self::lookup_version(state, subject, spec, deleted)
    }

    fn lookup_version(
        state: &State,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<(i64, i32, Arc<SchemaEntry>), RegistryError> {
        let versions = state
            .subjects
            .get(subject)
            .filter(|v| deleted || v.values().any(|e| !e.deleted))
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        let found = match spec {
            VersionSpec::Latest => versions
                .iter()
                .rev()
                .find(|(_, e)| deleted || !e.deleted)
                .map(|(v, e)| (*v, *e)),
            VersionSpec::Number(n) => versions
                .get(&n)
                .filter(|e| deleted || !e.deleted)
                .map(|e| (n, *e)),
        };
        let (version, entry) = found.ok_or_else(|| {
            RegistryError::VersionNotFound(match spec {
                // Confluent names the latest version by its sentinel.
                VersionSpec::Latest => "-1".to_string(),
                VersionSpec::Number(n) => n.to_string(),
            })
        })?;
        let schema = state
            .schemas
            .get(&entry.id)
            .cloned()
            .ok_or_else(|| RegistryError::SchemaNotFound(Some(entry.id.to_string())))?;
        Ok((entry.id, version, schema))
    }

    fn view(subject: &str, id: i64, version: i32, s: &SchemaEntry) -> VersionView {
        VersionView {
            subject: subject.to_string(),
            id,
            version,
            schema_type: s.schema_type,
            references: s.references.clone(),
            schema: s.schema.clone(),
        }
    }

    /// `text` of a `ty` schema in the requested `format`: `serialized` turns PROTOBUF text into
    /// a base64 `FileDescriptorProto`; other formats leave the text as stored.
    pub fn render(
        &self,
        ty: SchemaType,
        text: &str,
        references: &[SchemaReference],
        format: Option<&str>,
    ) -> Result<String, RegistryError> {
        if ty != SchemaType::Protobuf
            || !format.is_some_and(|f| f.eq_ignore_ascii_case("serialized"))
        {
            return Ok(text.to_string());
        }
        let state = self.state.read();
        let resolved = Self::resolve(&state, references)?;
        match ParsedSchema::parse(ty, text, &resolved) {
            Ok(ParsedSchema::Protobuf(p)) => Ok(p.serialized(None)),
            Ok(_) => Ok(text.to_string()),
            Err(e) => Err(RegistryError::Store(format!(
                "a stored schema no longer parses: {e}"
            ))),
        }
    }

    /// A subject version.
    pub fn get_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<VersionView, RegistryError> {
        let state = self.state.read();
        let (id, version, s) = Self::lookup_version(&state, subject, spec, deleted)?;
        Ok(Self::view(subject, id, version, &s))
    }

    fn parse_request(
        state: &State,
        req: &SchemaRequest,
    ) -> Result<(SchemaType, ParsedSchema), RegistryError> {
        if req.is_empty() {
            return Err(RegistryError::EmptySchema);
        }
        let ty = schema_type_of(req)?;
        let resolved = Self::resolve(state, &req.references)?;
        let parsed = ParsedSchema::parse(ty, &req.schema, &resolved)
            .map_err(RegistryError::InvalidSchema)?;
        Ok((ty, parsed))
    }

    fn parse_entry(state: &State, s: &SchemaEntry) -> Result<ParsedSchema, RegistryError> {
        let resolved = Self::resolve(state, &s.references)?;
        ParsedSchema::parse(s.schema_type, &s.schema, &resolved)
            .map_err(|e| RegistryError::Store(format!("a stored schema no longer parses: {e}")))
    }

    /// Finds the version of `subject` whose content equals `req`.
    pub fn lookup(
        &self,
        subject: &str,
        req: &SchemaRequest,
        normalize: bool,
        deleted: bool,
    ) -> Result<VersionView, RegistryError> {
        let state = self.state.read();
        let versions = state
            .subjects
            .get(subject)
            .filter(|v| deleted || v.values().any(|e| !e.deleted))
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        if req.is_empty() {
            return Err(RegistryError::SchemaNotFound(None));
        }
        let key = self.content_key(&state, req, normalize)?;
        let id = Self::existing_id(&state, subject, &key, normalize);
        let found = versions
            .iter()
            .rev()
            .find(|(_, e)| Some(e.id) == id && (deleted || !e.deleted));
        match (found, id.and_then(|id| state.schemas.get(&id))) {
            (Some((v, e)), Some(s)) => Ok(Self::view(subject, e.id, *v, s)),
            _ => Err(RegistryError::SchemaNotFound(None)),
        }
    }

    /// What identifies the schema `req` submits: its stored form (from the cache when this
    /// exact input was parsed recently) and its references.
    fn content_key(
        &self,
        state: &State,
        req: &SchemaRequest,
        normalize: bool,
    ) -> Result<ContentKey, RegistryError> {
        if req.is_empty() {
            return Err(RegistryError::EmptySchema);
        }
        let schema_type = schema_type_of(req)?;
        let resolved = Self::resolve(state, &req.references)?;
        let schema = self
            .canonical
            .canonical(schema_type, &req.schema, &resolved, normalize)
            .map_err(RegistryError::InvalidSchema)?;
        Ok(ContentKey {
            schema_type,
            schema,
            references: req.references.clone(),
        })
    }

    /// `id` (the existing id of the submitted schema) when `subject` holds it in a live version
    /// and the request may be answered with it (no other id asked for).
    fn live_id(state: &State, subject: &str, id: Option<i64>, req: &SchemaRequest) -> Option<i64> {
        let id = id?;
        let live = state
            .subjects
            .get(subject)
            .is_some_and(|versions| versions.values().any(|e| e.id == id && !e.deleted));
        (live && req.id.is_none_or(|want| want == id)).then_some(id)
    }

    /// Answers a registration the subject already holds from the state as it is, without the
    /// writer lock or waiting for the log: what the registration would find after waiting
    /// too, unless the version was deleted meanwhile (then it answers as just before that).
    fn registered_id(
        &self,
        subject: &str,
        req: &SchemaRequest,
        normalize: bool,
    ) -> Result<Option<i64>, RegistryError> {
        let state = self.state.read();
        let previous = Self::previous_if_empty(&state, subject, req);
        let req = previous.as_ref().unwrap_or(req);
        let key = self.content_key(&state, req, normalize)?;
        // The index only: comparing with every version's canonical form (existing_id's
        // fallback) is left to the locked path, which must do it anyway for a new schema.
        let id = state.by_content.get(&key).copied();
        Ok(Self::live_id(&state, subject, id, req))
    }

    /// The id of the schema `key` holds: the one registered with that text, else the one of a
    /// version of `subject` whose stored text reads as the same schema. Texts stored by other
    /// registries or earlier Sluice versions may not be in this version's canonical form, and
    /// re-registering them must find them (Confluent falls back the same way).
    fn existing_id(state: &State, subject: &str, key: &ContentKey, normalize: bool) -> Option<i64> {
        if let Some(id) = state.by_content.get(key) {
            return Some(*id);
        }
        let versions = state.subjects.get(subject)?;
        versions.values().rev().find_map(|e| {
            let stored = state.schemas.get(&e.id)?;
            if stored.schema_type != key.schema_type || stored.references != key.references {
                return None;
            }
            let parsed = Self::parse_entry(state, stored).ok()?;
            (parsed.stored_text(normalize) == key.schema).then_some(e.id)
        })
    }

    /// Problems `parsed` has with `subject`'s earlier versions under `level`, oldest first.
    fn compat_problems(
        state: &State,
        subject: &str,
        level: CompatibilityLevel,
        parsed: &ParsedSchema,
        only: Option<i32>,
    ) -> Result<Vec<String>, RegistryError> {
        if level == CompatibilityLevel::None {
            return Ok(Vec::new());
        }
        let live: Vec<&SchemaEntry> = state
            .subjects
            .get(subject)
            .into_iter()
            .flatten()
            .filter(|(v, e)| !e.deleted && only.is_none_or(|o| o == **v))
            .filter_map(|(_, e)| state.schemas.get(&e.id).map(|s| s.as_ref()))
            .collect();
        // Parse only what the level compares against: a non-transitive level looks at the
        // latest version alone, however many a subject has.
        let compared = if level.is_transitive() {
            &live[..]
        } else {
            live.get(live.len().saturating_sub(1)..).unwrap_or_default()
        };
        let previous = compared
            .iter()
            .map(|s| Self::parse_entry(state, s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(level.problems(parsed, &previous))
    }

    /// Tests `req` against `subject` (all relevant versions, or just `spec`).
    pub fn test_compatibility(
        &self,
        subject: &str,
        spec: Option<VersionSpec>,
        req: &SchemaRequest,
    ) -> Result<Vec<String>, RegistryError> {
        let state = self.state.read();
        let (_, parsed) = Self::parse_request(&state, req)?;
        // Like Confluent: nothing to be incompatible with when the subject has no latest
        // version, but a version number that does not exist is 40402 even for an unknown
        // subject.
        let only = match spec {
            Some(spec) => match Self::lookup_version(&state, subject, spec, false) {
                Ok(found) => Some(found.1),
                Err(_) => match spec {
                    VersionSpec::Latest => return Ok(Vec::new()),
                    VersionSpec::Number(n) => {
                        return Err(RegistryError::VersionNotFound(n.to_string()))
                    }
                },
            },
            None => None,
        };
        let mut level = state.compat_for(subject);
        if only.is_some() {
            // Against one named version the transitive levels mean their plain forms.
            level = match level {
                CompatibilityLevel::BackwardTransitive => CompatibilityLevel::Backward,
                CompatibilityLevel::ForwardTransitive => CompatibilityLevel::Forward,
                CompatibilityLevel::FullTransitive => CompatibilityLevel::Full,
                other => other,
            };
        }
        Self::compat_problems(&state, subject, level, &parsed, only)
    }

    fn check_writable(state: &State, subject: Option<&str>) -> Result<Mode, RegistryError> {
        let mode = match subject {
            Some(s) => state.mode_for(s),
            None => state.global_mode.unwrap_or_default(),
        };
        if matches!(mode, Mode::ReadOnly | Mode::ReadOnlyOverride) {
            return Err(RegistryError::OperationNotPermitted(format!(
                "Subject {} in context . is in read-only mode",
                subject.unwrap_or("(global)")
            )));
        }
        Ok(mode)
    }

    /// Registers `req` under `subject` and returns its id (the existing one when the subject
    /// already has this schema).
    pub async fn register(
        &self,
        subject: &str,
        req: &SchemaRequest,
        normalize: bool,
    ) -> Result<i64, RegistryError> {
        if let Some(id) = self.registered_id(subject, req, normalize)? {
            return Ok(id);
        }
        let _writer = self.write_lock.lock().await;
        self.log.catch_up().await?;
        let (record, id) = {
            let state = self.state.read();
            let previous = Self::previous_if_empty(&state, subject, req);
            let req = previous.as_ref().unwrap_or(req);
            let (ty, parsed) = Self::parse_request(&state, req)?;
            let text = parsed.stored_text(normalize);
            let key = ContentKey {
                schema_type: ty,
                schema: text.clone(),
                references: req.references.clone(),
            };
            let existing_id = Self::existing_id(&state, subject, &key, normalize);
            if let Some(id) = Self::live_id(&state, subject, existing_id, req) {
                return Ok(id);
            }
            let versions = state.subjects.get(subject);
            let mode = Self::check_writable(&state, Some(subject))?;
            let (id, version) = if mode == Mode::Import {
                let id = req.id.ok_or_else(|| {
                    RegistryError::InvalidSchema(
                        "Invalid schema: IMPORT mode needs the schema's id in the request".into(),
                    )
                })?;
                if let Some(other) = state.schemas.get(&id) {
                    if other.schema != text || other.schema_type != ty {
                        return Err(RegistryError::OperationNotPermitted(format!(
                            "Overwrite new schema with id {id} is not permitted: id {id} already holds another schema"
                        )));
                    }
                }
                let next = versions
                    .and_then(|v| v.keys().next_back().copied())
                    .unwrap_or(0)
                    + 1;
                (id, req.version.unwrap_or(next))
            } else {
                if req.id.is_some() {
                    return Err(RegistryError::OperationNotPermitted(format!(
                        "Subject {subject} is not in import mode"
                    )));
                }
                let problems = Self::compat_problems(
                    &state,
                    subject,
                    state.compat_for(subject),
                    &parsed,
                    None,
                )?;
                if !problems.is_empty() {
                    return Err(RegistryError::Incompatible {
                        subject: subject.to_string(),
                        details: problems,
                    });
                }
                let id = existing_id.unwrap_or(state.max_id + 1);
                let next = versions
                    .and_then(|v| v.keys().next_back().copied())
                    .unwrap_or(0)
                    + 1;
                (id, next)
            };
            let record = Record::new(
                &RecordKey::Schema {
                    subject: subject.to_string(),
                    version,
                    magic: 1,
                },
                Some(&SchemaValue {
                    subject: subject.to_string(),
                    version,
                    id,
                    schema_type: ty,
                    references: req.references.clone(),
                    schema: text,
                    deleted: false,
                    other: Default::default(),
                }),
            );
            (record, id)
        };
        self.log.append(vec![record]).await?;
        Ok(id)
    }

    /// For a registration without a schema, the subject's latest live version (Confluent
    /// re-registers it, which is how metadata-only updates are sent); `None` otherwise.
    fn previous_if_empty(
        state: &State,
        subject: &str,
        req: &SchemaRequest,
    ) -> Option<SchemaRequest> {
        if !req.is_empty() {
            return None;
        }
        let (_, _, latest) =
            Self::lookup_version(state, subject, VersionSpec::Latest, false).ok()?;
        Some(SchemaRequest {
            schema: latest.schema.clone(),
            schema_type: Some(latest.schema_type.as_str().to_string()),
            references: latest.references.clone(),
            id: req.id,
            version: req.version,
        })
    }

    fn schema_record(
        subject: &str,
        version: i32,
        id: i64,
        s: &SchemaEntry,
        deleted: bool,
    ) -> Record {
        Record::new(
            &RecordKey::Schema {
                subject: subject.to_string(),
                version,
                magic: 1,
            },
            Some(&SchemaValue {
                subject: subject.to_string(),
                version,
                id,
                schema_type: s.schema_type,
                references: s.references.clone(),
                schema: s.schema.clone(),
                deleted,
                other: s.other.clone(),
            }),
        )
    }

    fn tombstone(subject: &str, version: i32) -> Record {
        Record::new::<SchemaValue>(
            &RecordKey::Schema {
                subject: subject.to_string(),
                version,
                magic: 1,
            },
            None,
        )
    }

    fn setting_tombstone(key: RecordKey) -> Record {
        Record::new::<ConfigValue>(&key, None)
    }

    fn max_id_marker(state: &State) -> Record {
        Record::new(
            &RecordKey::Noop { magic: 0 },
            Some(&NoopValue {
                max_id: state.max_id,
            }),
        )
    }

    /// Soft- or permanently deletes one version and returns its number.
    pub async fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<i32, RegistryError> {
        let _writer = self.write_lock.lock().await;
        self.log.catch_up().await?;
        let (records, version) = {
            let state = self.state.read();
            Self::check_writable(&state, Some(subject))?;
            if !state.subjects.contains_key(subject) {
                return Err(RegistryError::SubjectNotFound(subject.to_string()));
            }
            let (id, version, s) = Self::lookup_version(&state, subject, spec, true)?;
            let deleted = state
                .subjects
                .get(subject)
                .and_then(|v| v.get(&version))
                .is_some_and(|e| e.deleted);
            if !state.referenced_by(subject, version).is_empty() {
                return Err(RegistryError::ReferenceExists {
                    subject: subject.to_string(),
                    version,
                });
            }
            let records = if permanent {
                if !deleted {
                    return Err(RegistryError::VersionNotSoftDeleted(
                        subject.to_string(),
                        version,
                    ));
                }
                vec![
                    Self::tombstone(subject, version),
                    Self::max_id_marker(&state),
                ]
            } else {
                if deleted {
                    return Err(RegistryError::VersionSoftDeleted(
                        subject.to_string(),
                        version,
                    ));
                }
                vec![Self::schema_record(subject, version, id, &s, true)]
            };
            (records, version)
        };
        self.log.append(records).await?;
        Ok(version)
    }

    /// Soft- or permanently deletes a subject and returns the versions deleted.
    pub async fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<i32>, RegistryError> {
        let _writer = self.write_lock.lock().await;
        self.log.catch_up().await?;
        let (records, versions) = {
            let state = self.state.read();
            Self::check_writable(&state, Some(subject))?;
            let all = state
                .subjects
                .get(subject)
                .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
            for v in all.keys() {
                if !state.referenced_by(subject, *v).is_empty() {
                    return Err(RegistryError::ReferenceExists {
                        subject: subject.to_string(),
                        version: *v,
                    });
                }
            }
            if permanent {
                if all.values().any(|e| !e.deleted) {
                    return Err(RegistryError::SubjectNotSoftDeleted(subject.to_string()));
                }
                let versions: Vec<i32> = all.keys().copied().collect();
                let mut records: Vec<Record> = versions
                    .iter()
                    .map(|v| Self::tombstone(subject, *v))
                    .collect();
                // The subject is gone, and so are its settings (as in Confluent, whose topic
                // would otherwise keep them for a subject that no longer exists).
                if state.subject_compat.contains_key(subject) {
                    records.push(Self::setting_tombstone(RecordKey::Config {
                        subject: Some(subject.to_string()),
                        magic: 0,
                    }));
                }
                if state.subject_mode.contains_key(subject) {
                    records.push(Self::setting_tombstone(RecordKey::Mode {
                        subject: Some(subject.to_string()),
                        magic: 0,
                    }));
                }
                records.push(Self::max_id_marker(&state));
                (records, versions)
            } else {
                let live: Vec<i32> = all
                    .iter()
                    .filter(|(_, e)| !e.deleted)
                    .map(|(v, _)| *v)
                    .collect();
                let Some(last) = live.last().copied() else {
                    return Err(RegistryError::SubjectSoftDeleted(subject.to_string()));
                };
                let mut records = Vec::with_capacity(live.len() + 1);
                for v in &live {
                    if let Ok((id, _, s)) =
                        Self::lookup_version(&state, subject, VersionSpec::Number(*v), true)
                    {
                        records.push(Self::schema_record(subject, *v, id, &s, true));
                    }
                }
                records.push(Record::new(
                    &RecordKey::DeleteSubject {
                        subject: subject.to_string(),
                        magic: 0,
                    },
                    Some(&DeleteSubjectValue {
                        subject: subject.to_string(),
                        version: last,
                    }),
                ));
                (records, live)
            }
        };
        self.log.append(records).await?;
        Ok(versions)
    }

    /// Sets (or with `None` clears) the compatibility level of `subject` or the global one.
    pub async fn set_config(
        &self,
        subject: Option<&str>,
        level: Option<CompatibilityLevel>,
    ) -> Result<(), RegistryError> {
        let _writer = self.write_lock.lock().await;
        self.log.catch_up().await?;
        let key = RecordKey::Config {
            subject: subject.map(str::to_string),
            magic: 0,
        };
        let value = level.map(|l| ConfigValue {
            subject: subject.map(str::to_string),
            compatibility_level: Some(l.as_str().to_string()),
        });
        self.log
            .append(vec![Record::new(&key, value.as_ref())])
            .await
    }

    /// Sets (or with `None` clears) the mode of `subject` or the global one.
    pub async fn set_mode(
        &self,
        subject: Option<&str>,
        mode: Option<Mode>,
        force: bool,
    ) -> Result<(), RegistryError> {
        let _writer = self.write_lock.lock().await;
        self.log.catch_up().await?;
        if mode == Some(Mode::Import) && !force {
            let state = self.state.read();
            let non_empty = match subject {
                Some(s) => state.subjects.contains_key(s),
                None => !state.subjects.is_empty(),
            };
            if non_empty {
                return Err(RegistryError::InvalidMode(
                    "Cannot import since found existing subjects".into(),
                ));
            }
        }
        let key = RecordKey::Mode {
            subject: subject.map(str::to_string),
            magic: 0,
        };
        let value = mode.map(|m| ModeValue {
            subject: subject.map(str::to_string),
            mode: m.as_str().to_string(),
        });
        self.log
            .append(vec![Record::new(&key, value.as_ref())])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state holding version 1 of each `(subject, id, references)`, as if read from
    /// `_schemas` (which other writers may have filled with anything).
    fn state_with(versions: &[(&str, i64, Vec<SchemaReference>)]) -> State {
        let mut state = State::default();
        for (subject, id, references) in versions {
            let record = Record::new(
                &RecordKey::Schema {
                    subject: subject.to_string(),
                    version: 1,
                    magic: 1,
                },
                Some(&SchemaValue {
                    subject: subject.to_string(),
                    version: 1,
                    id: *id,
                    schema_type: SchemaType::Avro,
                    references: references.clone(),
                    schema: format!(r#""{subject}""#),
                    deleted: false,
                    other: Default::default(),
                }),
            );
            state.apply(&record.key, record.value.as_deref());
        }
        state
    }

    fn reference(subject: &str, version: i32) -> SchemaReference {
        SchemaReference {
            name: subject.to_string(),
            subject: subject.to_string(),
            version,
        }
    }

    fn resolve_error(state: &State, refs: &[SchemaReference]) -> String {
        match Registry::resolve(state, refs) {
            Ok(r) => panic!("resolved {} references", r.len()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn cyclic_references_resolve_each_schema_once() {
        // a -> b -> c -> a through `latest`, and a reference to itself.
        let state = state_with(&[
            ("a", 1, vec![reference("b", -1), reference("a", -1)]),
            ("b", 2, vec![reference("c", -1)]),
            ("c", 3, vec![reference("a", -1)]),
        ]);
        let resolved =
            Registry::resolve(&state, &[reference("a", 1)]).unwrap_or_else(|e| panic!("{e}"));
        let mut names: Vec<&str> = resolved.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn reference_depth_is_bounded() {
        let chain = |len: usize| {
            let versions: Vec<(String, i64, Vec<SchemaReference>)> = (0..len)
                .map(|i| {
                    let refs = if i + 1 < len {
                        vec![reference(&format!("s{}", i + 1), 1)]
                    } else {
                        Vec::new()
                    };
                    (format!("s{i}"), i as i64 + 1, refs)
                })
                .collect();
            let borrowed: Vec<(&str, i64, Vec<SchemaReference>)> = versions
                .iter()
                .map(|(s, id, r)| (s.as_str(), *id, r.clone()))
                .collect();
            state_with(&borrowed)
        };
        let state = chain(MAX_REFERENCE_DEPTH);
        assert!(Registry::resolve(&state, &[reference("s0", 1)]).is_ok());
        let state = chain(MAX_REFERENCE_DEPTH + 1);
        let err = resolve_error(&state, &[reference("s0", 1)]);
        assert!(err.contains("limit of 32 levels"), "{err}");
    }

    #[test]
    fn reference_count_is_bounded() {
        let subjects: Vec<String> = (0..=MAX_REFERENCES).map(|i| format!("s{i}")).collect();
        let versions: Vec<(&str, i64, Vec<SchemaReference>)> = subjects
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i as i64 + 1, Vec::new()))
            .collect();
        let state = state_with(&versions);
        let all: Vec<SchemaReference> = subjects.iter().map(|s| reference(s, 1)).collect();
        let err = resolve_error(&state, &all);
        assert!(err.contains("limit of 256 schemas"), "{err}");
        // Transitively too: one reference to a schema that references all the others.
        let mut versions = versions;
        versions.push(("hub", 10_000, all[1..].to_vec()));
        let state = state_with(&versions);
        let err = resolve_error(&state, &[reference("hub", 1), reference("s0", 1)]);
        assert!(err.contains("limit of 256 schemas"), "{err}");
        // Repeating one reference many times is not many schemas.
        let same = vec![reference("s0", 1); MAX_REFERENCES];
        assert_eq!(
            Registry::resolve(&state, &same).map(|r| r.len()).ok(),
            Some(1)
        );
    }
}
