//! Schema sources (protobuf descriptors, Avro and JSON Schema texts), subject naming strategies
//! and the protobuf descriptor plumbing shared by producer and consumer.

use base64::Engine;
use prost::Message;
use prost_reflect::{DescriptorPool, FileDescriptor, MessageDescriptor};
use prost_types::FileDescriptorProto;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::registry::{FetchedSchema, RegistryClient, SchemaReference};

/// How a subject name is derived (Confluent's `subject.name.strategy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubjectStrategy {
    /// `<topic>-value` (the default).
    #[default]
    TopicName,
    /// `<record full name>`.
    RecordName,
    /// `<topic>-<record full name>`.
    TopicRecordName,
}

impl SubjectStrategy {
    /// The value subject for `record` written to `topic`.
    pub fn subject(self, topic: &str, record: &str) -> String {
        match self {
            SubjectStrategy::TopicName => format!("{topic}-value"),
            SubjectStrategy::RecordName => record.to_owned(),
            SubjectStrategy::TopicRecordName => format!("{topic}-{record}"),
        }
    }
}

/// A serde type written as Avro; its schema is given by the type.
pub trait AvroRecord: Serialize + DeserializeOwned {
    /// The Avro schema (JSON text) of the type.
    fn schema() -> &'static str;
}

/// Parsed Avro schemas of [`AvroRecord`] types, parsed once per type and shared by the producer
/// (writer schema) and the consumer (reader schema).
#[derive(Debug, Default)]
pub(crate) struct AvroSchemaCache(
    parking_lot::RwLock<
        std::collections::HashMap<&'static str, std::sync::Arc<apache_avro::Schema>>,
    >,
);

impl AvroSchemaCache {
    /// `T`'s parsed schema; a schema that does not parse is an [`Error::InvalidSchema`].
    pub(crate) fn get<T: AvroRecord>(&self) -> Result<std::sync::Arc<apache_avro::Schema>> {
        if let Some(s) = self.0.read().get(T::schema()) {
            return Ok(s.clone());
        }
        let s = apache_avro::Schema::parse_str(T::schema()).map_err(|e| Error::InvalidSchema {
            kind: "AVRO",
            name: std::any::type_name::<T>().to_owned(),
            reason: e.to_string(),
        })?;
        let s = std::sync::Arc::new(s);
        self.0.write().insert(T::schema(), s.clone());
        Ok(s)
    }
}

/// A serde type written as JSON and described by a JSON Schema given by the type.
pub trait JsonRecord: Serialize + DeserializeOwned {
    /// The JSON Schema text; its `title` is the record name used in `event_type`.
    fn schema() -> &'static str;
}

/// Full name of an Avro record schema (`namespace.name`).
pub fn avro_full_name(schema: &apache_avro::Schema) -> String {
    match schema {
        apache_avro::Schema::Record(r) => r.name.fullname(None),
        other => format!("{other:?}")
            .split('(')
            .next()
            .unwrap_or("avro")
            .to_owned(),
    }
}

/// The `title` of a JSON Schema, else `"json"`.
pub fn json_title(schema: &serde_json::Value) -> String {
    schema
        .get("title")
        .and_then(|t| t.as_str())
        .unwrap_or("json")
        .to_owned()
}

/// The message-index path of `desc` inside its file (Confluent's protobuf framing).
pub fn message_indexes(desc: &MessageDescriptor) -> Vec<i32> {
    // The source path alternates field numbers (4 = message_type, 3 = nested_type) and indexes.
    desc.path().iter().skip(1).step_by(2).copied().collect()
}

/// The message that `indexes` names inside `file`.
pub fn message_at(file: &FileDescriptor, indexes: &[i32]) -> Option<MessageDescriptor> {
    let (&first, rest) = indexes.split_first()?;
    let mut m = file.messages().nth(usize::try_from(first).ok()?)?;
    for &i in rest {
        let child = m.child_messages().nth(usize::try_from(i).ok()?)?;
        m = child;
    }
    Some(m)
}

/// A file as Confluent serializers register it: base64 of its `FileDescriptorProto`.
pub fn serialized_file(file: &FileDescriptor) -> String {
    base64::engine::general_purpose::STANDARD.encode(file.file_descriptor_proto().encode_to_vec())
}

/// Whether an import is a well-known type every registry and client knows already.
pub fn is_well_known(name: &str) -> bool {
    name.starts_with("google/protobuf/")
}

/// Registers `file`'s imports (recursively, subject = file name) and returns its references.
pub async fn register_proto_dependencies(
    registry: &RegistryClient,
    file: &FileDescriptor,
) -> Result<Vec<SchemaReference>> {
    let mut refs = Vec::new();
    for dep in file.dependencies() {
        if is_well_known(dep.name()) {
            continue;
        }
        let dep_refs = Box::pin(register_proto_dependencies(registry, &dep)).await?;
        let (_, version) = registry
            .register(dep.name(), "PROTOBUF", &serialized_file(&dep), &dep_refs)
            .await?;
        refs.push(SchemaReference {
            name: dep.name().to_owned(),
            subject: dep.name().to_owned(),
            version,
        });
    }
    Ok(refs)
}

/// Builds the descriptor of a fetched protobuf schema, fetching its references recursively.
pub async fn proto_file(
    registry: &RegistryClient,
    schema: &FetchedSchema,
) -> Result<FileDescriptor> {
    let mut files = Vec::new();
    collect_files(registry, schema, WRITER_FILE, &mut files).await?;
    let root = files
        .last()
        .map(|f| f.name().to_owned())
        .ok_or_else(|| invalid_proto("schema", "empty descriptor set"))?;
    let mut pool = DescriptorPool::new();
    for f in files {
        if pool.get_file_by_name(f.name()).is_some() {
            continue;
        }
        for dep in &f.dependency {
            if pool.get_file_by_name(dep).is_none() && is_well_known(dep) {
                if let Some(wk) = DescriptorPool::global().get_file_by_name(dep) {
                    pool.add_file_descriptor_proto(wk.file_descriptor_proto().clone())
                        .map_err(|e| invalid_proto(f.name(), e))?;
                }
            }
        }
        let name = f.name().to_owned();
        pool.add_file_descriptor_proto(f)
            .map_err(|e| invalid_proto(&name, e))?;
    }
    pool.get_file_by_name(&root)
        .ok_or_else(|| invalid_proto(&root, "file missing from its own descriptor pool"))
}

/// Name given to the writer's own file in the pool [`proto_file`] builds: registries name
/// serialized descriptors as they please, so every file is named here (references by the
/// name the importing file uses for them, as Confluent's clients do).
const WRITER_FILE: &str = "__sluice_writer_schema.proto";

/// Depth-first: dependencies are pushed before the files importing them, each named `name`.
async fn collect_files(
    registry: &RegistryClient,
    schema: &FetchedSchema,
    name: &str,
    out: &mut Vec<FileDescriptorProto>,
) -> Result<()> {
    for r in &schema.references {
        let dep = registry.subject_version(&r.subject, r.version).await?;
        Box::pin(collect_files(registry, &dep, &r.name, out)).await?;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(schema.schema.trim())
        .map_err(|e| invalid_proto(name, format!("not a base64 descriptor: {e}")))?;
    let mut file =
        FileDescriptorProto::decode(bytes.as_slice()).map_err(|e| invalid_proto(name, e))?;
    file.name = Some(name.to_owned());
    out.push(file);
    Ok(())
}

fn invalid_proto(name: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidSchema {
        kind: "PROTOBUF",
        name: name.to_owned(),
        reason: e.to_string(),
    }
}
