//! Custom options naming no extension the schema can see (`option (my.unknown) = 1;` without
//! the file defining it): Confluent's registry accepts such schemas, and so does this one, by
//! dropping those options before compiling. Options whose extension is known are kept.

use prost_types::{DescriptorProto, FileDescriptorProto, UninterpretedOption};
use protox::file::File;
use protox::prost_reflect::DescriptorPool;

use super::compile;
use crate::formats::ResolvedReference;

/// Compiles a parsed file; when that fails and the file has custom options, compiles it again
/// without the custom options that resolve to no extension. The first error is the answer when
/// the second attempt fails too.
pub(super) fn compile_tolerating_unknown_options(
    parsed: FileDescriptorProto,
    references: &[ResolvedReference],
) -> Result<DescriptorPool, String> {
    let first = match compile(File::from_file_descriptor_proto(parsed.clone()), references) {
        Ok(pool) => return Ok(pool),
        Err(e) => e,
    };
    let mut bare = parsed.clone();
    let mut custom = 0usize;
    for_each_option_list(&mut bare, &mut |list| {
        let before = list.len();
        list.retain(|o| !is_custom(o));
        custom += before - list.len();
    });
    if custom == 0 {
        return Err(first);
    }
    // Compiled without its custom options the file shows which extensions exist: its own
    // and those of everything it imports.
    let known =
        compile(File::from_file_descriptor_proto(bare), references).map_err(|_| first.clone())?;
    let package = parsed.package().to_string();
    let mut kept = parsed;
    for_each_option_list(&mut kept, &mut |list| {
        list.retain(|o| !is_custom(o) || resolves(&known, o, &package));
    });
    compile(File::from_file_descriptor_proto(kept), references).map_err(|_| first)
}

fn is_custom(o: &UninterpretedOption) -> bool {
    o.name.iter().any(|part| part.is_extension)
}

/// Whether the extension a custom option names exists, looked up from the file's package
/// outwards as protobuf scoping does (a leading dot names it absolutely).
fn resolves(pool: &DescriptorPool, o: &UninterpretedOption, package: &str) -> bool {
    let Some(part) = o.name.iter().find(|p| p.is_extension) else {
        return true;
    };
    let name = part.name_part.as_str();
    if let Some(absolute) = name.strip_prefix('.') {
        return pool.get_extension_by_name(absolute).is_some();
    }
    let mut scope = package;
    loop {
        let candidate = if scope.is_empty() {
            name.to_string()
        } else {
            format!("{scope}.{name}")
        };
        if pool.get_extension_by_name(&candidate).is_some() {
            return true;
        }
        if scope.is_empty() {
            return false;
        }
        scope = scope.rsplit_once('.').map_or("", |(outer, _)| outer);
    }
}

/// Calls `f` with every list of uninterpreted options in `file`: the file's, and those of its
/// messages (nested ones too, walked without recursion), fields, oneofs, enums, enum values,
/// extensions, services and methods.
fn for_each_option_list(
    file: &mut FileDescriptorProto,
    f: &mut dyn FnMut(&mut Vec<UninterpretedOption>),
) {
    if let Some(o) = file.options.as_mut() {
        f(&mut o.uninterpreted_option);
    }
    for e in &mut file.enum_type {
        enum_options(e, f);
    }
    for x in &mut file.extension {
        if let Some(o) = x.options.as_mut() {
            f(&mut o.uninterpreted_option);
        }
    }
    for s in &mut file.service {
        if let Some(o) = s.options.as_mut() {
            f(&mut o.uninterpreted_option);
        }
        for m in &mut s.method {
            if let Some(o) = m.options.as_mut() {
                f(&mut o.uninterpreted_option);
            }
        }
    }
    let mut pending: Vec<&mut DescriptorProto> = file.message_type.iter_mut().collect();
    while let Some(m) = pending.pop() {
        if let Some(o) = m.options.as_mut() {
            f(&mut o.uninterpreted_option);
        }
        for field in m.field.iter_mut().chain(m.extension.iter_mut()) {
            if let Some(o) = field.options.as_mut() {
                f(&mut o.uninterpreted_option);
            }
        }
        for oneof in &mut m.oneof_decl {
            if let Some(o) = oneof.options.as_mut() {
                f(&mut o.uninterpreted_option);
            }
        }
        for e in &mut m.enum_type {
            enum_options(e, f);
        }
        pending.extend(m.nested_type.iter_mut());
    }
}

fn enum_options(
    e: &mut prost_types::EnumDescriptorProto,
    f: &mut dyn FnMut(&mut Vec<UninterpretedOption>),
) {
    if let Some(o) = e.options.as_mut() {
        f(&mut o.uninterpreted_option);
    }
    for v in &mut e.value {
        if let Some(o) = v.options.as_mut() {
            f(&mut o.uninterpreted_option);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ProtoSchema;

    #[test]
    fn unknown_custom_options_are_dropped_and_known_ones_kept() {
        let text = "syntax = \"proto3\"; package acme; import \"confluent/meta.proto\";\n\
                    option (com.custom.map).subject = 'user-value';\n\
                    message User {\n\
                      option (acme.unknown_message_option) = true;\n\
                      string id = 1 [(confluent.field_meta).doc = \"the id\", (unknown.field) = 3];\n\
                      Kind kind = 2;\n\
                      oneof contact { option (.x.y) = 1; string email = 3; }\n\
                    }\n\
                    enum Kind { option (nope) = 1; A = 0 [(nope.value) = 2]; }\n\
                    service S { option (svc) = \"x\"; rpc Get (User) returns (User) { option (m) = 1; } }";
        let canonical = ProtoSchema::parse(text, &[])
            .unwrap_or_else(|e| panic!("{e}"))
            .stored_text(false);
        assert!(
            canonical.contains("(confluent.field_meta) = { doc: \"the id\" }"),
            "{canonical}"
        );
        for unknown in ["com.custom", "unknown", "x.y", "nope", "svc", "(m)"] {
            assert!(!canonical.contains(unknown), "{unknown}: {canonical}");
        }
        // Other errors are still errors, reported as the first attempt saw them.
        let bad_type = "syntax = \"proto3\"; option (x) = 1; message M { Missing m = 1; }";
        let err = ProtoSchema::parse(bad_type, &[]).err().unwrap_or_default();
        assert!(err.contains("Missing"), "{err}");
    }
}
