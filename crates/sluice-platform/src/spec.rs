//! The platform file: what the cluster and the registry should hold.
//!
//! ```yaml
//! topics:                        # absent: topics are not managed
//!   orders:
//!     partitions: 6              # absent: the broker's default at creation, never compared
//!     replication_factor: 3      # absent: likewise
//!     configs:                   # topic overrides; any other override is reset to default
//!       cleanup.policy: compact
//!       retention.ms: 604800000  # numbers and booleans become Kafka's strings
//! acls:                          # acl.yml inline (or `acl_file: acl.yml`); absent: unmanaged
//!   services:
//!     orders-svc: { produces: [orders] }
//! schemas:                       # absent: the registry is not touched
//!   compatibility: BACKWARD      # the global level
//!   subjects:
//!     orders-value:
//!       file: schemas/order.avsc # relative to this file; the type follows the extension
//!       compatibility: FULL      # the subject's own level; absent: it follows the global one
//! ignore:                        # unlisted cluster objects to leave alone (a trailing * is a
//!   topics: ["tmp-*"]            # prefix); unlisted topics starting with `_` always are
//!   subjects: []
//! ```
//!
//! A folder holds several such files (`*.yml`, `*.yaml`), merged; a topic or subject declared
//! twice is an error naming both files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_kss::acl::{AclFile, AclFileError};
use sluice_sdk::registry::SchemaReference;

/// The compatibility levels a Confluent-compatible registry knows.
pub(crate) const COMPATIBILITY_LEVELS: [&str; 7] = [
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
];

/// The schema types a Confluent-compatible registry knows.
pub(crate) const SCHEMA_TYPES: [&str; 3] = ["AVRO", "PROTOBUF", "JSON"];

/// Why a platform file is unusable: file, line and column when known, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct SpecError {
    /// The file (or folder).
    pub file: String,
    /// 1-based line and column of the offending value, when known.
    pub location: Option<(usize, usize)>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl SpecError {
    fn new(file: &Path, message: impl Into<String>) -> Self {
        SpecError {
            file: file.display().to_string(),
            location: None,
            message: message.into(),
        }
    }
}

impl From<AclFileError> for SpecError {
    fn from(e: AclFileError) -> Self {
        SpecError {
            file: e.file,
            location: e.location,
            message: e.message,
        }
    }
}

/// The desired state, every file read and checked.
#[derive(Debug, Clone, Default)]
pub struct Platform {
    /// Topics by name; `None` when the file does not manage topics.
    pub topics: Option<BTreeMap<String, TopicSpec>>,
    /// The ACLs (acl.yml); `None` when the file does not manage ACLs.
    pub acls: Option<AclFile>,
    /// Registry state; `None` when the file does not manage schemas.
    pub schemas: Option<SchemasSpec>,
    /// Unlisted objects left alone.
    pub ignore: Ignore,
}

/// One topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicSpec {
    /// Partition count; `None`: the broker's default at creation, not compared afterwards.
    pub partitions: Option<i32>,
    /// Replication factor; `None`: the broker's default at creation, not compared afterwards.
    pub replication_factor: Option<i16>,
    /// Topic overrides.
    pub configs: BTreeMap<String, String>,
}

/// The registry's desired state.
#[derive(Debug, Clone, Default)]
pub struct SchemasSpec {
    /// The global compatibility level; `None`: not managed.
    pub compatibility: Option<String>,
    /// Subjects by name.
    pub subjects: BTreeMap<String, SubjectSpec>,
}

impl SchemasSpec {
    /// Declared subjects, each after the declared subjects its references name, so one
    /// apply can register both.
    pub fn registration_order(&self) -> Vec<&str> {
        // `Platform::load` refused cycles, so this cannot fail on a loaded file.
        self.ordered()
            .unwrap_or_else(|_| self.subjects.keys().map(String::as_str).collect())
    }

    fn ordered(&self) -> Result<Vec<&str>, String> {
        // Depth-first, iterative (a hostile file cannot overflow the stack); `true` marks a
        // subject whose references are all placed.
        let mut placed: BTreeMap<&str, bool> = BTreeMap::new();
        let mut order = Vec::with_capacity(self.subjects.len());
        for root in self.subjects.keys() {
            let mut stack = vec![(root.as_str(), false)];
            while let Some((name, expanded)) = stack.pop() {
                if expanded {
                    placed.insert(name, true);
                    order.push(name);
                    continue;
                }
                match placed.get(name) {
                    Some(true) => continue,
                    Some(false) => {
                        return Err(format!(
                            "subject {name} refers to itself through its references"
                        ))
                    }
                    None => {}
                }
                placed.insert(name, false);
                stack.push((name, true));
                for r in &self.subjects[name].references {
                    if let Some((dep, _)) = self.subjects.get_key_value(&r.subject) {
                        if placed.get(dep.as_str()) == Some(&false) {
                            return Err(format!(
                                "subject {name} refers to itself through its references"
                            ));
                        }
                        stack.push((dep.as_str(), false));
                    }
                }
            }
        }
        Ok(order)
    }
}

/// One subject: its latest schema and its own compatibility level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectSpec {
    /// Where the schema came from, as written in the file (for messages).
    pub file: String,
    /// AVRO, PROTOBUF or JSON.
    pub schema_type: String,
    /// The schema text.
    pub schema: String,
    /// The subject's own level; `None`: it follows the global level.
    pub compatibility: Option<String>,
    /// References to other subjects' versions (protobuf imports, Avro named types).
    pub references: Vec<SchemaReference>,
}

/// Names of unlisted topics and subjects to leave alone: literal, or a prefix with a
/// trailing `*`.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    /// Topic patterns.
    pub topics: Vec<String>,
    /// Subject patterns.
    pub subjects: Vec<String>,
}

fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

impl Ignore {
    /// True when an unlisted topic is left alone: internal names (`_` first, as Kafka's
    /// `__consumer_offsets` and the registry's `_schemas`) or an `ignore.topics` match.
    pub fn topic(&self, name: &str) -> bool {
        name.starts_with('_') || matches_any(&self.topics, name)
    }

    /// True when an unlisted subject is left alone.
    pub fn subject(&self, name: &str) -> bool {
        matches_any(&self.subjects, name)
    }
}

/// A config value as YAML lets people write it: text, number or boolean.
#[derive(Debug, Clone)]
struct ConfigScalar(String);

impl<'de> Deserialize<'de> for ConfigScalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => Ok(ConfigScalar(s)),
            serde_yaml::Value::Number(n) => Ok(ConfigScalar(n.to_string())),
            serde_yaml::Value::Bool(b) => Ok(ConfigScalar(b.to_string())),
            // Kafka's list configs (`cleanup.policy: [compact, delete]`) are comma-separated.
            serde_yaml::Value::Sequence(items) => items
                .into_iter()
                .map(|item| match item {
                    serde_yaml::Value::String(s) => Ok(s),
                    serde_yaml::Value::Number(n) => Ok(n.to_string()),
                    _ => Err(serde::de::Error::custom(
                        "a list config holds strings or numbers",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|items| ConfigScalar(items.join(","))),
            _ => Err(serde::de::Error::custom(
                "a config value must be a string, a number, a boolean or a list of them",
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    partitions: Option<i32>,
    replication_factor: Option<i16>,
    #[serde(default)]
    configs: BTreeMap<String, ConfigScalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubject {
    file: PathBuf,
    #[serde(rename = "type")]
    schema_type: Option<String>,
    compatibility: Option<String>,
    #[serde(default)]
    references: Vec<SchemaReference>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchemas {
    compatibility: Option<String>,
    #[serde(default)]
    subjects: BTreeMap<String, RawSubject>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIgnore {
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    subjects: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    topics: Option<BTreeMap<String, RawTopic>>,
    acls: Option<AclFile>,
    acl_file: Option<PathBuf>,
    schemas: Option<RawSchemas>,
    #[serde(default)]
    ignore: RawIgnore,
}

/// Where each merged piece came from, to name both files of a duplicate.
#[derive(Default)]
struct Origins {
    topics: BTreeMap<String, PathBuf>,
    subjects: BTreeMap<String, PathBuf>,
    acls: Option<PathBuf>,
    compatibility: Option<PathBuf>,
}

impl Platform {
    /// Reads a platform file, or every `*.yml`/`*.yaml` of a folder, and checks it all
    /// (schema files included) without contacting anything.
    pub fn load(path: &Path) -> Result<Platform, SpecError> {
        let files = if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| SpecError::new(path, format!("cannot list it: {e}")))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"))
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(SpecError::new(
                    path,
                    "the folder holds no .yml or .yaml file",
                ));
            }
            files
        } else {
            vec![path.to_owned()]
        };
        let mut platform = Platform::default();
        let mut origins = Origins::default();
        for file in &files {
            let text = std::fs::read_to_string(file)
                .map_err(|e| SpecError::new(file, format!("cannot read it: {e}")))?;
            let raw: RawFile = serde_yaml::from_str(&text)
                .map_err(|e| AclFileError::yaml(&file.display().to_string(), &e))?;
            platform.merge(raw, file, &mut origins)?;
        }
        if let Some(schemas) = &platform.schemas {
            schemas
                .ordered()
                .map_err(|m| SpecError::new(path, format!("schemas: {m}")))?;
        }
        Ok(platform)
    }

    fn merge(&mut self, raw: RawFile, file: &Path, origins: &mut Origins) -> Result<(), SpecError> {
        let base = file.parent().unwrap_or(Path::new("."));
        let err = |message: String| SpecError::new(file, message);
        let fail = |message: String| Err(err(message));
        if let Some(topics) = raw.topics {
            let merged = self.topics.get_or_insert_with(BTreeMap::new);
            for (name, topic) in topics {
                check_topic_name(&name).map_err(|m| err(format!("topic {name:?}: {m}")))?;
                let spec = topic_spec(topic).map_err(|m| err(format!("topic {name}: {m}")))?;
                if let Some(first) = origins.topics.insert(name.clone(), file.to_owned()) {
                    return fail(format!(
                        "topic {name} is also declared in {}",
                        first.display()
                    ));
                }
                merged.insert(name, spec);
            }
        }
        let acls = match (raw.acls, raw.acl_file) {
            (Some(_), Some(_)) => {
                return fail("set either acls (inline) or acl_file, not both".into())
            }
            (Some(acls), None) => {
                acls.check(&format!("{} (acls)", file.display()))?;
                Some(acls)
            }
            (None, Some(path)) => Some(AclFile::load(&base.join(path))?),
            (None, None) => None,
        };
        if let Some(acls) = acls {
            if let Some(first) = origins.acls.replace(file.to_owned()) {
                return fail(format!(
                    "ACLs are also declared in {}; keep them in one file",
                    first.display()
                ));
            }
            self.acls = Some(acls);
        }
        if let Some(schemas) = raw.schemas {
            let merged = self.schemas.get_or_insert_with(SchemasSpec::default);
            if let Some(level) = schemas.compatibility {
                merged.compatibility =
                    Some(compatibility_level(&level).map_err(|m| err(format!("schemas: {m}")))?);
                if let Some(first) = origins.compatibility.replace(file.to_owned()) {
                    return fail(format!(
                        "the global compatibility is also set in {}",
                        first.display()
                    ));
                }
            }
            for (subject, raw) in schemas.subjects {
                let spec =
                    subject_spec(raw, base).map_err(|m| err(format!("subject {subject}: {m}")))?;
                if let Some(first) = origins.subjects.insert(subject.clone(), file.to_owned()) {
                    return fail(format!(
                        "subject {subject} is also declared in {}",
                        first.display()
                    ));
                }
                merged.subjects.insert(subject, spec);
            }
        }
        self.ignore.topics.extend(raw.ignore.topics);
        self.ignore.subjects.extend(raw.ignore.subjects);
        Ok(())
    }
}

/// Kafka's rule: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic_name(name: &str) -> Result<(), String> {
    let legal = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if name.is_empty() || name.len() > 249 || !legal || name == "." || name == ".." {
        return Err(
            "a topic name is 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-'".into(),
        );
    }
    Ok(())
}

fn topic_spec(raw: RawTopic) -> Result<TopicSpec, String> {
    if raw.partitions.is_some_and(|p| p < 1) {
        return Err("partitions must be at least 1".into());
    }
    if raw.replication_factor.is_some_and(|r| r < 1) {
        return Err("replication_factor must be at least 1".into());
    }
    Ok(TopicSpec {
        partitions: raw.partitions,
        replication_factor: raw.replication_factor,
        configs: raw.configs.into_iter().map(|(k, v)| (k, v.0)).collect(),
    })
}

fn compatibility_level(level: &str) -> Result<String, String> {
    let upper = level.to_ascii_uppercase();
    if COMPATIBILITY_LEVELS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(format!(
            "unknown compatibility {level:?}; use one of {}",
            COMPATIBILITY_LEVELS.join(", ")
        ))
    }
}

/// Schema types and the file extensions that imply them (export writes these too).
const EXTENSIONS: [(&str, &str); 3] = [("AVRO", "avsc"), ("PROTOBUF", "proto"), ("JSON", "json")];

/// The schema type a file extension implies.
fn type_of(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?;
    EXTENSIONS.iter().find(|(_, e)| *e == ext).map(|(t, _)| *t)
}

/// The file extension of a schema type (`avsc` for anything unknown, Avro being the default).
pub(crate) fn extension_of(schema_type: &str) -> &'static str {
    EXTENSIONS
        .iter()
        .find(|(t, _)| *t == schema_type)
        .map_or("avsc", |(_, e)| *e)
}

fn subject_spec(raw: RawSubject, base: &Path) -> Result<SubjectSpec, String> {
    let schema_type = match raw.schema_type {
        Some(t) => {
            let upper = t.to_ascii_uppercase();
            if !SCHEMA_TYPES.contains(&upper.as_str()) {
                return Err(format!(
                    "unknown type {t:?}; use one of {}",
                    SCHEMA_TYPES.join(", ")
                ));
            }
            upper
        }
        None => type_of(&raw.file).map(str::to_owned).ok_or_else(|| {
            format!(
                "cannot tell the type of {} from its extension (.avsc, .proto, .json); set type",
                raw.file.display()
            )
        })?,
    };
    let path = base.join(&raw.file);
    let schema = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(SubjectSpec {
        file: raw.file.display().to_string(),
        schema_type,
        schema,
        compatibility: raw
            .compatibility
            .as_deref()
            .map(compatibility_level)
            .transpose()?,
        references: raw.references,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_full_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "order.avsc", r#"{"type":"string"}"#);
        let file = write(
            dir.path(),
            "platform.yml",
            "topics:\n  orders:\n    partitions: 3\n    configs:\n      retention.ms: 1000\n      cleanup.policy: compact\n      unclean.leader.election.enable: false\n      x.list: [compact, delete]\n\
             acls:\n  services:\n    svc: { produces: [orders] }\n\
             schemas:\n  compatibility: full\n  subjects:\n    orders-value:\n      file: order.avsc\n\
             ignore:\n  topics: [\"tmp-*\"]\n",
        );
        let p = Platform::load(&file).unwrap();
        let orders = &p.topics.as_ref().unwrap()["orders"];
        assert_eq!(orders.partitions, Some(3));
        assert_eq!(orders.configs["retention.ms"], "1000");
        assert_eq!(orders.configs["unclean.leader.election.enable"], "false");
        assert_eq!(orders.configs["x.list"], "compact,delete");
        assert_eq!(p.acls.unwrap().bindings().len(), 2, "write and describe");
        let schemas = p.schemas.unwrap();
        assert_eq!(schemas.compatibility.as_deref(), Some("FULL"));
        assert_eq!(schemas.subjects["orders-value"].schema_type, "AVRO");
        assert!(p.ignore.topic("tmp-1") && p.ignore.topic("__consumer_offsets"));
        assert!(!p.ignore.topic("orders"));
    }

    #[test]
    fn mistakes_are_reported_with_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "topics:\n  orders:\n    partitons: 3\n",
                "unknown field `partitons`",
            ),
            (
                "topics:\n  orders:\n    partitions: 0\n",
                "partitions must be at least 1",
            ),
            ("topics:\n  bad/name: {}\n", "a topic name is"),
            (
                "topics:\n  t:\n    configs:\n      a: {b: 1}\n",
                "a config value must be",
            ),
            (
                "schemas:\n  compatibility: SOMETIMES\n",
                "unknown compatibility",
            ),
            (
                "schemas:\n  subjects:\n    s:\n      file: missing.avsc\n",
                "cannot read",
            ),
            (
                "schemas:\n  subjects:\n    s:\n      file: x.txt\n",
                "cannot tell the type",
            ),
            ("acls:\n  principal: \"User:x\"\n", "must look like"),
            ("acls: {}\nacl_file: acl.yml\n", "not both"),
            ("connectors: []\n", "unknown field `connectors`"),
        ];
        for (text, wanted) in cases {
            let file = write(dir.path(), "p.yml", text);
            let err = Platform::load(&file).unwrap_err().to_string();
            assert!(err.contains(wanted), "{text:?}: {err}");
            assert!(err.starts_with(&file.display().to_string()), "{err}");
        }
        let file = write(dir.path(), "p.yml", "topics:\n  t:\n    partitions: x\n");
        let err = Platform::load(&file).unwrap_err();
        assert_eq!(err.location.map(|l| l.0), Some(3), "{err}");
    }

    #[test]
    fn referenced_subjects_come_first_and_cycles_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "s.proto", "syntax = \"proto3\";");
        let subject = |name: &str, refs: &[&str]| {
            let refs: Vec<String> = refs
                .iter()
                .map(|r| format!("{{name: {r}.proto, subject: {r}, version: 1}}"))
                .collect();
            format!(
                "    {name}:\n      file: s.proto\n      references: [{}]\n",
                refs.join(", ")
            )
        };
        let text = format!(
            "schemas:\n  subjects:\n{}{}{}",
            subject("a", &["c"]),
            subject("b", &[]),
            subject("c", &["b"])
        );
        let file = write(dir.path(), "p.yml", &text);
        let p = Platform::load(&file).unwrap();
        assert_eq!(p.schemas.unwrap().registration_order(), ["b", "c", "a"]);
        let text = format!(
            "schemas:\n  subjects:\n{}{}",
            subject("a", &["b"]),
            subject("b", &["a"])
        );
        let file = write(dir.path(), "p.yml", &text);
        let err = Platform::load(&file).unwrap_err().to_string();
        assert!(err.contains("refers to itself"), "{err}");
    }

    #[test]
    fn a_folder_is_merged_and_duplicates_name_both_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yml", "topics:\n  a: {}\n");
        write(
            dir.path(),
            "b.yaml",
            "topics:\n  b: {}\nignore:\n  subjects: [x]\n",
        );
        write(dir.path(), "notes.txt", "not yaml: [");
        let p = Platform::load(dir.path()).unwrap();
        assert_eq!(p.topics.unwrap().len(), 2);
        assert!(p.ignore.subject("x"));
        write(dir.path(), "c.yml", "topics:\n  a: {}\n");
        let err = Platform::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("c.yml") && err.contains("a.yml"), "{err}");
    }
}
