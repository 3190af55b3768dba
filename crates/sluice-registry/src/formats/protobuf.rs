//! PROTOBUF schemas: `.proto` text compiled with protox (imports resolved from the references,
//! well-known `google/protobuf/*` types built in) or a base64 `FileDescriptorProto`, and
//! Confluent's protobuf compatibility rules over the resulting descriptors.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::ResolvedReference;

/// File name given to a schema registered as text (imports are named by their references).
const MAIN_FILE: &str = "__sluice_registered.proto";

/// A valid `.proto` file and its descriptor.
#[derive(Debug, Clone)]
pub struct ProtoSchema {
    text: String,
    descriptor: FileDescriptorProto,
}

/// Resolves imports from the schema's references.
struct ReferenceResolver {
    files: HashMap<String, File>,
}

impl FileResolver for ReferenceResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        self.files
            .get(name)
            .cloned()
            .ok_or_else(|| protox::Error::file_not_found(name))
    }
}

/// Decodes a base64 `FileDescriptorProto` (Confluent's `format=serialized`).
fn decode_serialized(text: &str) -> Option<FileDescriptorProto> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.contains(|c: char| c.is_whitespace() || c == ';' || c == '{') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .ok()?;
    FileDescriptorProto::decode(bytes.as_slice()).ok()
}

fn open_reference(r: &ResolvedReference) -> Result<File, String> {
    match decode_serialized(&r.schema) {
        Some(mut fd) => {
            fd.name = Some(r.name.clone());
            Ok(File::from_file_descriptor_proto(fd))
        }
        None => File::from_source(&r.name, &r.schema)
            .map_err(|e| format!("Invalid schema: reference '{}' does not parse: {e}", r.name)),
    }
}

impl ProtoSchema {
    /// Parses `.proto` text or a base64 descriptor; imports come from `references`.
    pub fn parse(text: &str, references: &[ResolvedReference]) -> Result<Self, String> {
        if let Some(descriptor) = decode_serialized(text) {
            return Ok(Self {
                text: text.trim().to_string(),
                descriptor,
            });
        }
        let mut files = HashMap::new();
        for r in references {
            files.insert(r.name.clone(), open_reference(r)?);
        }
        let main = File::from_source(MAIN_FILE, text)
            .map_err(|e| format!("Invalid schema: the PROTOBUF schema does not parse: {e}"))?;
        files.insert(MAIN_FILE.to_string(), main);
        let mut chain = ChainFileResolver::new();
        chain.add(ReferenceResolver { files });
        chain.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(chain);
        compiler.include_imports(false);
        compiler
            .open_file(MAIN_FILE)
            .map_err(|e| format!("Invalid schema: the PROTOBUF schema is invalid: {e}"))?;
        let descriptor = compiler
            .file_descriptor_set()
            .file
            .into_iter()
            .find(|f| f.name() == MAIN_FILE)
            .ok_or_else(|| "Invalid schema: the PROTOBUF schema produced no file".to_string())?;
        Ok(Self {
            text: text.trim().to_string(),
            descriptor,
        })
    }

    /// The text as registered, trimmed.
    pub fn stored_text(&self) -> String {
        self.text.clone()
    }

    /// The schema as a base64 `FileDescriptorProto` (`format=serialized`), named `name`.
    pub fn serialized(&self, name: Option<&str>) -> String {
        let mut fd = self.descriptor.clone();
        if let Some(name) = name {
            fd.name = Some(name.to_string());
        }
        base64::engine::general_purpose::STANDARD.encode(fd.encode_to_vec())
    }
}

/// Messages by full name (`package.Outer.Inner`), nested ones included.
fn messages(fd: &FileDescriptorProto) -> BTreeMap<String, &DescriptorProto> {
    fn walk<'a>(
        prefix: &str,
        list: &'a [DescriptorProto],
        out: &mut BTreeMap<String, &'a DescriptorProto>,
    ) {
        for m in list {
            // Map entries are synthetic; their changes show up as field changes.
            if m.options
                .as_ref()
                .and_then(|o| o.map_entry)
                .unwrap_or(false)
            {
                continue;
            }
            let name = if prefix.is_empty() {
                m.name().to_string()
            } else {
                format!("{prefix}.{}", m.name())
            };
            walk(&name, &m.nested_type, out);
            out.insert(name, m);
        }
    }
    let mut out = BTreeMap::new();
    walk(fd.package(), &fd.message_type, &mut out);
    out
}

/// The wire-compatible group of a scalar type (Confluent's FIELD_SCALAR_KIND rules).
fn scalar_group(t: Type) -> Option<u8> {
    Some(match t {
        Type::Int32 | Type::Uint32 | Type::Int64 | Type::Uint64 | Type::Bool | Type::Enum => 0,
        Type::Sint32 | Type::Sint64 => 1,
        Type::Fixed32 | Type::Sfixed32 => 2,
        Type::Fixed64 | Type::Sfixed64 => 3,
        Type::String | Type::Bytes => 4,
        Type::Float => 5,
        Type::Double => 6,
        Type::Message | Type::Group => return None,
    })
}

fn is_length_delimited(t: Type) -> bool {
    matches!(t, Type::String | Type::Bytes | Type::Message)
}

fn oneof_name<'a>(m: &'a DescriptorProto, f: &FieldDescriptorProto) -> Option<&'a str> {
    if f.proto3_optional() {
        return None;
    }
    f.oneof_index
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| m.oneof_decl.get(i))
        .map(|o| o.name())
}

/// Why data written with `writer` cannot be read with `reader` (Confluent's protobuf rules).
pub fn read_problems(writer: &ProtoSchema, reader: &ProtoSchema) -> Vec<String> {
    let mut out = Vec::new();
    let (w, r) = (&writer.descriptor, &reader.descriptor);
    if w.package() != r.package() {
        out.push(format!(
            "PACKAGE_CHANGED: package '{}' became '{}'",
            w.package(),
            r.package()
        ));
        return out;
    }
    let rm = messages(r);
    for (name, wmsg) in messages(w) {
        match rm.get(&name) {
            None => out.push(format!("MESSAGE_REMOVED: message {name} was removed")),
            Some(rmsg) => compare_message(&name, wmsg, rmsg, &mut out),
        }
    }
    out
}

fn compare_message(name: &str, w: &DescriptorProto, r: &DescriptorProto, out: &mut Vec<String>) {
    let wf: BTreeMap<i32, &FieldDescriptorProto> =
        w.field.iter().map(|f| (f.number(), f)).collect();
    let rf: BTreeMap<i32, &FieldDescriptorProto> =
        r.field.iter().map(|f| (f.number(), f)).collect();
    for (num, f) in &wf {
        let at = format!("{name}.{} (#{num})", f.name());
        match rf.get(num) {
            None => {
                if f.label() == Label::Required {
                    out.push(format!("REQUIRED_FIELD_REMOVED: {at}"));
                }
                if let Some(o) = oneof_name(w, f) {
                    out.push(format!(
                        "ONEOF_FIELD_REMOVED: {at} was removed from oneof {o}"
                    ));
                }
            }
            Some(g) => compare_field(&at, f, g, out),
        }
    }
    for (num, f) in &rf {
        if !wf.contains_key(num) && f.label() == Label::Required {
            out.push(format!(
                "REQUIRED_FIELD_ADDED: {name}.{} (#{num})",
                f.name()
            ));
        }
    }
    // Oneof moves: fields that were outside any oneof (or in another one) and now share one.
    let mut moved_into: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    let existing: Vec<&str> = w.oneof_decl.iter().map(|o| o.name()).collect();
    for (num, g) in &rf {
        let Some(roneof) = oneof_name(r, g) else {
            continue;
        };
        let Some(f) = wf.get(num) else { continue };
        if oneof_name(w, f) != Some(roneof) {
            moved_into.entry(roneof).or_default().push(*num);
        }
    }
    for (oneof, nums) in moved_into {
        if existing.contains(&oneof) {
            out.push(format!(
                "FIELD_MOVED_TO_EXISTING_ONEOF: fields {nums:?} of {name} moved into existing oneof {oneof}"
            ));
        } else if nums.len() > 1 {
            out.push(format!(
                "MULTIPLE_FIELDS_MOVED_TO_ONEOF: fields {nums:?} of {name} moved into new oneof {oneof}"
            ));
        }
    }
}

fn compare_field(
    at: &str,
    w: &FieldDescriptorProto,
    r: &FieldDescriptorProto,
    out: &mut Vec<String>,
) {
    let (wt, rt) = (w.r#type(), r.r#type());
    match (scalar_group(wt), scalar_group(rt)) {
        (Some(a), Some(b)) if a != b => out.push(format!(
            "FIELD_SCALAR_KIND_CHANGED: {at} changed from {} to {}",
            wt.as_str_name(),
            rt.as_str_name()
        )),
        (Some(_), None) | (None, Some(_)) => out.push(format!(
            "FIELD_KIND_CHANGED: {at} changed between a scalar and a message"
        )),
        (None, None) => {
            let strip = |s: &str| s.trim_start_matches('.').to_string();
            if strip(w.type_name()) != strip(r.type_name()) {
                out.push(format!(
                    "FIELD_NAMED_TYPE_CHANGED: {at} changed from {} to {}",
                    w.type_name(),
                    r.type_name()
                ));
            }
        }
        _ => {}
    }
    let w_rep = w.label() == Label::Repeated;
    let r_rep = r.label() == Label::Repeated;
    if w_rep != r_rep && !(is_length_delimited(wt) && is_length_delimited(rt)) {
        out.push(format!(
            "FIELD_LABEL_CHANGED: {at} changed between repeated and singular"
        ));
    }
    if r.label() == Label::Required && w.label() != Label::Required {
        out.push(format!("REQUIRED_FIELD_ADDED: {at} became required"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_proto_names_the_problem() {
        let err = ProtoSchema::parse("syntax = \"proto3\"; message M { strin a = 1; }", &[])
            .err()
            .unwrap_or_default();
        assert!(err.contains("strin"), "{err}");
    }

    #[test]
    fn imports_resolve_from_references_and_serialized_round_trips() {
        let dep = ResolvedReference {
            name: "acme/address.proto".into(),
            schema: "syntax = \"proto3\"; package acme; message Address { string city = 1; }"
                .into(),
        };
        let main = "syntax = \"proto3\"; package acme; import \"acme/address.proto\"; \
                    import \"google/protobuf/timestamp.proto\"; \
                    message User { Address home = 1; google.protobuf.Timestamp at = 2; }";
        let parsed =
            ProtoSchema::parse(main, std::slice::from_ref(&dep)).unwrap_or_else(|e| panic!("{e}"));
        assert!(ProtoSchema::parse(main, &[]).is_err());
        let b64 = parsed.serialized(Some("user.proto"));
        let back = ProtoSchema::parse(&b64, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.descriptor.message_type.len(), 1);
        let dep_b64 = ProtoSchema::parse(&dep.schema, &[])
            .unwrap_or_else(|e| panic!("{e}"))
            .serialized(Some("acme/address.proto"));
        let via_serialized_dep = ResolvedReference {
            name: dep.name.clone(),
            schema: dep_b64,
        };
        assert!(ProtoSchema::parse(main, &[via_serialized_dep]).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
            let _ = ProtoSchema::parse(&text, &[]);
        }

        #[test]
        fn arbitrary_base64_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let _ = ProtoSchema::parse(&text, &[]);
        }
    }
}
