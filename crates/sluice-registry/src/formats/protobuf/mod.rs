//! PROTOBUF schemas: `.proto` text compiled with protox (imports resolved from the references,
//! then from the files Confluent bundles, `bundled`, then the well-known `google/protobuf/*`
//! types) or a base64 `FileDescriptorProto`, stored as canonical `.proto` text (`render`),
//! and Confluent's protobuf compatibility rules over the descriptors (`compat`).

mod bundled;
mod compat;
mod options;
mod render;

use std::collections::HashMap;

use base64::Engine;
use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorProto};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use protox::prost_reflect::{DescriptorPool, FileDescriptor};

use super::limits::{self, LimitError, Syntax, MAX_NESTING_DEPTH};
use super::ResolvedReference;

pub use compat::read_problems;

/// File name given to a registered schema (imports are named by their references).
const MAIN_FILE: &str = "__sluice_registered.proto";

/// A valid `.proto` file, compiled with everything it imports.
#[derive(Debug, Clone)]
pub struct ProtoSchema {
    /// The compiled file; its pool holds every file it imports, transitively.
    file: FileDescriptor,
    /// Its descriptor, as the compatibility check reads it.
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

/// Decodes a base64 `FileDescriptorProto` (Confluent's `format=serialized`) into its bytes and
/// descriptor; `None` when `text` is not one (so it is `.proto` text).
///
/// prost stops decoding at 100 levels of nested messages; the decoded tree is held to
/// [`MAX_NESTING_DEPTH`] like text, since everything after decoding walks it.
fn decode_serialized(text: &str) -> Option<Result<(Vec<u8>, FileDescriptorProto), LimitError>> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.contains(|c: char| c.is_whitespace() || c == ';' || c == '{') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .ok()?;
    let fd = FileDescriptorProto::decode(bytes.as_slice()).ok()?;
    Some(check_descriptor_depth(&fd).map(|()| (bytes, fd)))
}

/// An encoded `FileDescriptorProto` renamed to `name`, keeping every byte of it (prost's
/// decoding would drop the custom options it does not know): a later occurrence of a
/// singular field wins in protobuf, so appending the name field renames it.
fn renamed(mut encoded: Vec<u8>, name: &str) -> Vec<u8> {
    let name_field = FileDescriptorProto {
        name: Some(name.to_string()),
        ..FileDescriptorProto::default()
    };
    encoded.extend(name_field.encode_to_vec());
    encoded
}

/// A compiler input from an encoded descriptor, named `name`.
fn serialized_file(encoded: Vec<u8>, name: &str) -> Result<File, String> {
    File::decode_file_descriptor_proto(renamed(encoded, name).as_slice())
        .map_err(|e| format!("Invalid schema: '{name}' is not a FileDescriptorProto: {e}"))
}

/// Refuses message types nested deeper than [`MAX_NESTING_DEPTH`], without recursing.
fn check_descriptor_depth(fd: &FileDescriptorProto) -> Result<(), LimitError> {
    let mut pending: Vec<(&DescriptorProto, usize)> =
        fd.message_type.iter().map(|m| (m, 1)).collect();
    while let Some((m, depth)) = pending.pop() {
        if depth > MAX_NESTING_DEPTH {
            return Err(LimitError::TooDeep { offset: None });
        }
        pending.extend(m.nested_type.iter().map(|n| (n, depth + 1)));
    }
    Ok(())
}

/// Checks a `.proto` text or base64 descriptor against the limits before anything parses it.
fn check_limits(text: &str) -> Result<(), LimitError> {
    limits::check_text(text, Syntax::Proto)
}

fn open_reference(r: &ResolvedReference) -> Result<File, String> {
    let refused =
        |e: LimitError| format!("Invalid schema: the PROTOBUF reference '{}' {e}", r.name);
    check_limits(&r.schema).map_err(refused)?;
    match decode_serialized(&r.schema) {
        Some(decoded) => serialized_file(decoded.map_err(refused)?.0, &r.name),
        None => parse_source(&r.name, &r.schema)
            .map(File::from_file_descriptor_proto)
            .map_err(|e| format!("Invalid schema: reference '{}' does not parse: {e}", r.name)),
    }
}

/// Parses `.proto` text without resolving anything.
///
/// protox-parse debug-asserts on some malformed integer literals (`008A`), so in a debug build
/// a schema can panic it: that is invalid input, not a reason to drop the request.
fn parse_source(name: &str, text: &str) -> Result<FileDescriptorProto, String> {
    std::panic::catch_unwind(|| protox_parse::parse(name, text).map_err(|e| e.to_string()))
        .unwrap_or_else(|_| Err("the PROTOBUF schema could not be parsed".to_string()))
}

impl ProtoSchema {
    /// Parses `.proto` text or a base64 descriptor; imports come from `references`, then the
    /// bundled files.
    ///
    /// The text (and each reference) is first held to the size and nesting limits of
    /// [`limits`], since protox's parser recurses once per nesting level. Custom options that
    /// name no extension the schema can see are dropped rather than refused, as Confluent
    /// tolerates them.
    pub fn parse(text: &str, references: &[ResolvedReference]) -> Result<Self, String> {
        let refused = |e: LimitError| format!("Invalid schema: the PROTOBUF schema {e}");
        check_limits(text).map_err(refused)?;
        let pool = match decode_serialized(text) {
            Some(decoded) => {
                let main = serialized_file(decoded.map_err(refused)?.0, MAIN_FILE)?;
                compile(main, references)
                    .map_err(|e| format!("Invalid schema: the PROTOBUF schema is invalid: {e}"))?
            }
            None => {
                let parsed = parse_source(MAIN_FILE, text).map_err(|e| {
                    format!("Invalid schema: the PROTOBUF schema does not parse: {e}")
                })?;
                options::compile_tolerating_unknown_options(parsed, references)
                    .map_err(|e| format!("Invalid schema: the PROTOBUF schema is invalid: {e}"))?
            }
        };
        let file = pool
            .get_file_by_name(MAIN_FILE)
            .ok_or_else(|| "Invalid schema: the PROTOBUF schema produced no file".to_string())?;
        let descriptor = file.file_descriptor_proto().clone();
        Ok(Self { file, descriptor })
    }

    /// The canonical `.proto` text (`render`); with `normalize`, Confluent's normalized form.
    pub fn stored_text(&self, normalize: bool) -> String {
        render::render(&self.file, normalize)
    }

    /// The schema as a base64 `FileDescriptorProto` (`format=serialized`), named `name`.
    pub fn serialized(&self, name: Option<&str>) -> String {
        let encoded = self.file.encode_to_vec();
        let encoded = match name {
            Some(name) => renamed(encoded, name),
            None => encoded,
        };
        base64::engine::general_purpose::STANDARD.encode(encoded)
    }

    /// Descriptors of this file and of every file it imports, transitively.
    fn files(&self) -> impl Iterator<Item = &FileDescriptorProto> {
        self.file.parent_pool().file_descriptor_protos()
    }
}

/// Compiles `main` with protox, imports resolved from `references` (already checked against
/// the limits by the caller; each reference is checked in [`open_reference`]), then the
/// bundled files, then the well-known types.
fn compile(main: File, references: &[ResolvedReference]) -> Result<DescriptorPool, String> {
    let mut files = HashMap::new();
    for r in references {
        files.insert(r.name.clone(), open_reference(r)?);
    }
    files.insert(MAIN_FILE.to_string(), main);
    let mut chain = ChainFileResolver::new();
    chain.add(ReferenceResolver { files });
    chain.add(bundled::BundledResolver);
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true);
    compiler.open_file(MAIN_FILE).map_err(|e| e.to_string())?;
    Ok(compiler.descriptor_pool())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::field_descriptor_proto::Type;
    use prost_types::FieldDescriptorProto;

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
        // A descriptor needs its imports as much as the text does.
        assert!(ProtoSchema::parse(&b64, &[]).is_err());
        let back =
            ProtoSchema::parse(&b64, std::slice::from_ref(&dep)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.descriptor.message_type.len(), 1);
        assert_eq!(back.stored_text(false), parsed.stored_text(false));
        let dep_b64 = ProtoSchema::parse(&dep.schema, &[])
            .unwrap_or_else(|e| panic!("{e}"))
            .serialized(Some("acme/address.proto"));
        let via_serialized_dep = ResolvedReference {
            name: dep.name.clone(),
            schema: dep_b64,
        };
        assert!(ProtoSchema::parse(main, &[via_serialized_dep]).is_ok());
    }

    use crate::formats::limits::on_handler_stack;

    /// `depth` messages nested in one another, in .proto text.
    fn nested_messages(depth: usize) -> String {
        let mut text = String::from("syntax = \"proto3\";\n");
        for i in 0..depth {
            text.push_str(&format!("message M{i} {{ string f{i} = 1;\n"));
        }
        text.push_str(&"}\n".repeat(depth));
        text
    }

    /// `depth` messages nested in one another, as a decoded descriptor.
    fn nested_descriptor(depth: usize) -> FileDescriptorProto {
        let mut inner: Option<DescriptorProto> = None;
        for i in (0..depth).rev() {
            inner = Some(DescriptorProto {
                name: Some(format!("M{i}")),
                nested_type: inner.into_iter().collect(),
                ..DescriptorProto::default()
            });
        }
        FileDescriptorProto {
            name: Some("deep.proto".into()),
            message_type: inner.into_iter().collect(),
            ..FileDescriptorProto::default()
        }
    }

    fn b64(fd: &FileDescriptorProto) -> String {
        base64::engine::general_purpose::STANDARD.encode(fd.encode_to_vec())
    }

    fn is_depth_error(e: &str) -> bool {
        e.starts_with("Invalid schema:") && e.contains("limit of 64 levels")
    }

    #[test]
    fn a_thousand_nested_messages_are_refused_not_a_crash() {
        // The reported crash: 13 KB of text, 1,000 nested `message` blocks.
        let text = format!(
            "syntax = \"proto3\";\n{}{}",
            "message A {\n".repeat(1000),
            "}".repeat(1000)
        );
        assert_eq!(text.len() / 1000, 13);
        let err = on_handler_stack(move || ProtoSchema::parse(&text, &[]).err());
        let err = err.unwrap_or_default();
        assert!(is_depth_error(&err), "{err}");
    }

    #[test]
    fn nesting_at_the_limit_compiles_on_a_handler_stack() {
        let (ok, too_deep) = on_handler_stack(|| {
            let ok = ProtoSchema::parse(&nested_messages(MAX_NESTING_DEPTH), &[]).map(|p| {
                // Everything done with a parsed schema later, at the same depth.
                let back = ProtoSchema::parse(&p.serialized(None), &[]);
                let problems = read_problems(&p, &p);
                (back.is_ok(), problems)
            });
            (
                ok,
                ProtoSchema::parse(&nested_messages(MAX_NESTING_DEPTH + 1), &[]),
            )
        });
        assert_eq!(ok, Ok((true, Vec::new())));
        let err = too_deep.err().unwrap_or_default();
        assert!(is_depth_error(&err), "{err}");
    }

    #[test]
    fn deep_option_values_are_refused_before_protox() {
        // Aggregate option values are parsed by a recursive text-format parser; both brace
        // and angle-bracket delimiters nest.
        for (open, close) in [("{", "}"), ("<", ">"), ("a: [", "]")] {
            let text = format!(
                "syntax = \"proto3\"; import \"google/protobuf/descriptor.proto\"; \
                 option (x) = {}{};",
                format!("{{ a {open}").repeat(1000),
                format!("{close} }}").repeat(1000)
            );
            let err = on_handler_stack(move || ProtoSchema::parse(&text, &[]).err());
            let err = err.unwrap_or_default();
            assert!(is_depth_error(&err), "{open}: {err}");
        }
    }

    #[test]
    fn serialized_descriptors_are_held_to_the_same_depth() {
        let (at_limit, over, prost_limit, far_over) = on_handler_stack(|| {
            (
                ProtoSchema::parse(&b64(&nested_descriptor(MAX_NESTING_DEPTH)), &[])
                    .map(|p| read_problems(&p, &p).len()),
                ProtoSchema::parse(&b64(&nested_descriptor(MAX_NESTING_DEPTH + 1)), &[]),
                // Just inside prost's own decoding limit of 100 levels.
                ProtoSchema::parse(&b64(&nested_descriptor(99)), &[]),
                // Past it prost refuses, and the text is then not valid .proto either.
                ProtoSchema::parse(&b64(&nested_descriptor(1000)), &[]),
            )
        });
        assert_eq!(at_limit, Ok(0));
        assert!(is_depth_error(&over.err().unwrap_or_default()));
        assert!(is_depth_error(&prost_limit.err().unwrap_or_default()));
        assert!(far_over.is_err());
    }

    #[test]
    fn recursive_message_types_compare_without_recursing() {
        let text = "syntax = \"proto3\"; package p; \
                    message Node { Node next = 1; repeated Node children = 2; Tree t = 3; } \
                    message Tree { Node root = 1; map<string, Tree> sub = 2; }";
        let a = ProtoSchema::parse(text, &[]).unwrap_or_else(|e| panic!("{e}"));
        let serialized =
            ProtoSchema::parse(&a.serialized(None), &[]).unwrap_or_else(|e| panic!("{e}"));
        let changed = ProtoSchema::parse(&text.replace("Tree t = 3", "Node t = 3"), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(read_problems(&a, &serialized).is_empty());
        assert_eq!(read_problems(&a, &changed).len(), 1);
        // A descriptor that names itself as a field type decodes and compares too.
        let mut fd = nested_descriptor(1);
        if let Some(m) = fd.message_type.first_mut() {
            m.field.push(FieldDescriptorProto {
                name: Some("me".into()),
                number: Some(1),
                r#type: Some(Type::Message.into()),
                type_name: Some(".M0".into()),
                ..FieldDescriptorProto::default()
            });
        }
        let own = ProtoSchema::parse(&b64(&fd), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(read_problems(&own, &own).is_empty());
    }

    #[test]
    fn references_are_held_to_the_limits() {
        let deep = ResolvedReference {
            name: "deep.proto".into(),
            schema: nested_messages(1000),
        };
        let main = "syntax = \"proto3\"; import \"deep.proto\"; message U { M0 m = 1; }";
        let err = on_handler_stack(move || ProtoSchema::parse(main, &[deep]).err());
        let err = err.unwrap_or_default();
        assert!(is_depth_error(&err) && err.contains("deep.proto"), "{err}");
        let serialized = ResolvedReference {
            name: "deep.proto".into(),
            schema: b64(&nested_descriptor(MAX_NESTING_DEPTH + 1)),
        };
        let err = ProtoSchema::parse(main, &[serialized])
            .err()
            .unwrap_or_default();
        assert!(is_depth_error(&err), "{err}");
    }

    #[test]
    fn comment_and_string_rules_match_protox() {
        // The depth scan skips what protox skips: check where protox ends comments and
        // strings, on the layouts the scan handles specially.
        let names = |body: &str| -> Vec<String> {
            let text = format!("syntax = \"proto3\";\n{body}");
            assert!(check_limits(&text).is_ok(), "{text}");
            ProtoSchema::parse(&text, &[])
                .map(|p| {
                    p.descriptor
                        .message_type
                        .iter()
                        .map(|m| m.name().to_string())
                        .collect()
                })
                .unwrap_or_else(|e| panic!("{e}: {text}"))
        };
        assert_eq!(names("/* **/ message X {}"), ["X"]);
        assert_eq!(names("/* *\n **/ message X {}"), ["X"]);
        assert_eq!(names("/* message X {} */ message Y {}"), ["Y"]);
        assert_eq!(names("// message X {\nmessage Y {}"), ["Y"]);
        assert_eq!(
            names("option java_package = \"a\\\\\"; message X {}"),
            ["X"]
        );
        assert_eq!(names("option java_package = 'a\"}'; message X {}"), ["X"]);
        assert_eq!(
            names("option java_package = \"a\\\"; message X {\";\nmessage Y {}"),
            ["Y"]
        );
    }

    #[test]
    fn protox_panics_are_invalid_schemas() {
        // A base64-looking text that is no descriptor, whose octal-looking literal trips a
        // debug assertion in protox-parse (found by arbitrary_base64_never_panics).
        let err = ProtoSchema::parse("008A", &[]).err().unwrap_or_default();
        assert!(err.starts_with("Invalid schema:"), "{err}");
    }

    #[test]
    fn oversized_text_is_refused() {
        let text = format!("syntax = \"proto3\"; {}", "// padding\n".repeat(60_000));
        let err = ProtoSchema::parse(&text, &[]).err().unwrap_or_default();
        assert!(err.contains("limit of 524288 bytes"), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        #[test]
        fn depth_around_the_limit(
            extra in 0usize..3,
            below in proptest::bool::ANY,
            noise in "[ \n]{0,3}(//[{}]*\n)?",
        ) {
            // Nesting just under or at the limit compiles; past it is refused naming the limit.
            let depth = if below { MAX_NESTING_DEPTH - extra } else { MAX_NESTING_DEPTH + 1 + extra };
            let text = nested_messages(depth).replace('\n', &format!("\n{noise}"));
            let verdict = on_handler_stack(move || ProtoSchema::parse(&text, &[]).map(|_| ()));
            if below {
                proptest::prop_assert_eq!(verdict, Ok(()));
            } else {
                let err = verdict.err().unwrap_or_default();
                proptest::prop_assert!(is_depth_error(&err), "{}", err);
            }
        }
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

        #[test]
        fn bracket_soup_never_panics(text in "(message A|[{}()<>\\[\\]'\"/*#\\\\\n ;=1]){0,120}") {
            let _ = on_handler_stack(move || ProtoSchema::parse(&text, &[]).err());
        }
    }
}
