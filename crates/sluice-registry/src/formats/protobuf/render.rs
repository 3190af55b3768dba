//! The canonical `.proto` text of a compiled file: what the registry stores and answers with,
//! so schemas that differ only in layout, comments, option order or spelling of type names
//! (and a base64 `FileDescriptorProto` of the same file) are one schema with one id.
//!
//! Type names are written fully qualified with a leading dot, options sorted by name, comments
//! dropped; fields, messages and enums keep their declaration order. With `normalize` (as
//! Confluent's `normalize=true`), fields are also sorted by number, oneofs by their lowest
//! number, enum values by number and imports by name.

use std::fmt::Write;

use protox::prost_reflect::{
    Cardinality, DynamicMessage, EnumDescriptor, ExtensionDescriptor, FieldDescriptor,
    FileDescriptor, Kind, MapKey, MessageDescriptor, OneofDescriptor, ServiceDescriptor, Value,
};

/// Highest field number; an extension range ending there is written `max`.
const MAX_FIELD_NUMBER: i32 = 536_870_911;

/// The canonical text of `file`.
pub(super) fn render(file: &FileDescriptor, normalize: bool) -> String {
    let mut r = Renderer {
        out: String::new(),
        normalize,
        proto3: file.file_descriptor_proto().syntax() == "proto3",
    };
    r.file(file);
    r.out
}

struct Renderer {
    out: String,
    normalize: bool,
    proto3: bool,
}

/// The indentation of nesting level `depth`.
fn pad(depth: usize) -> String {
    "  ".repeat(depth)
}

/// A `.proto` string literal of `bytes`: printable ASCII as is (UTF-8 text too when `text`),
/// everything else escaped.
fn quote(bytes: &[u8], text: bool) -> String {
    let mut out = String::from("\"");
    let push_byte = |out: &mut String, b: u8| match b {
        b'\\' => out.push_str("\\\\"),
        b'"' => out.push_str("\\\""),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        0x20..=0x7e => out.push(char::from(b)),
        _ => {
            let _ = write!(out, "\\{b:03o}");
        }
    };
    match std::str::from_utf8(bytes) {
        Ok(s) if text => {
            for c in s.chars() {
                if c.is_ascii() || c.is_control() {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        push_byte(&mut out, b);
                    }
                } else {
                    out.push(c);
                }
            }
        }
        _ => bytes.iter().for_each(|b| push_byte(&mut out, *b)),
    }
    out.push('"');
    out
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v}")
    }
}

/// The type of a field as written: a scalar name or a dotted full name.
fn type_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => format!(".{}", m.full_name()),
        Kind::Enum(e) => format!(".{}", e.full_name()),
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
    }
}

/// An option or aggregate value.
fn value(v: &Value, kind: &Kind) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::I32(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::U32(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::F32(f) => float(f64::from(*f)),
        Value::F64(f) => float(*f),
        Value::String(s) => quote(s.as_bytes(), true),
        Value::Bytes(b) => quote(b, false),
        Value::EnumNumber(n) => kind
            .as_enum()
            .and_then(|e| e.get_value(*n))
            .map(|v| v.name().to_string())
            .unwrap_or_else(|| n.to_string()),
        Value::Message(m) => aggregate(m),
        Value::List(items) => {
            let items: Vec<String> = items.iter().map(|i| value(i, kind)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Map(map) => {
            let (key_kind, value_kind) = match kind.as_message() {
                Some(entry) => (
                    entry.map_entry_key_field().kind(),
                    entry.map_entry_value_field().kind(),
                ),
                None => (Kind::String, Kind::String),
            };
            let mut entries: Vec<(&MapKey, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let items: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| {
                    let k = value(&Value::from(k.clone()), &key_kind);
                    format!("{{ key: {k} value: {} }}", value(v, &value_kind))
                })
                .collect();
            format!("[{}]", items.join(", "))
        }
    }
}

/// A message value in text format, fields in number order, extensions as `[full.name]`.
fn aggregate(m: &DynamicMessage) -> String {
    let mut fields: Vec<(u32, String)> = m
        .fields()
        .map(|(f, v)| (f.number(), format!("{}: {}", f.name(), value(v, &f.kind()))))
        .chain(m.extensions().map(|(e, v)| {
            (
                e.number(),
                format!("[{}]: {}", e.full_name(), value(v, &e.kind())),
            )
        }))
        .collect();
    fields.sort();
    if fields.is_empty() {
        return "{}".into();
    }
    let body: Vec<String> = fields.into_iter().map(|(_, f)| f).collect();
    format!("{{ {} }}", body.join(" "))
}

/// `(name, value)` of every option set in `options`, sorted by name; a repeated option once
/// per element.
fn options(options: &DynamicMessage) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |name: String, v: &Value, kind: &Kind| match v {
        Value::List(items) => {
            for item in items {
                out.push((name.clone(), value(item, kind)));
            }
        }
        v => out.push((name, value(v, kind))),
    };
    for (f, v) in options.fields() {
        if f.name() != "uninterpreted_option" {
            push(f.name().to_string(), v, &f.kind());
        }
    }
    for (e, v) in options.extensions() {
        push(format!("({})", e.full_name()), v, &e.kind());
    }
    out.sort();
    out
}

/// protoc's default JSON name of a field: the name in lower camel case.
fn default_json_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The bracketed options of a field or enum value (` [a = 1, b = 2]`), empty when none.
fn bracketed(mut opts: Vec<(String, String)>) -> String {
    if opts.is_empty() {
        return String::new();
    }
    opts.sort();
    let items: Vec<String> = opts.iter().map(|(n, v)| format!("{n} = {v}")).collect();
    format!(" [{}]", items.join(", "))
}

/// `reserved`/`extensions` ranges, `end` exclusive when `exclusive`.
fn ranges(ranges: impl Iterator<Item = (i32, i32)>, exclusive: bool) -> Vec<String> {
    ranges
        .map(|(start, end)| {
            let end = if exclusive { end - 1 } else { end };
            match end {
                e if e == start => start.to_string(),
                e if e >= MAX_FIELD_NUMBER => format!("{start} to max"),
                e => format!("{start} to {e}"),
            }
        })
        .collect()
}

impl Renderer {
    fn line(&mut self, depth: usize, text: &str) {
        if !text.is_empty() {
            self.out.push_str(&pad(depth));
            self.out.push_str(text);
        }
        self.out.push('\n');
    }

    fn option_lines(&mut self, depth: usize, opts: &DynamicMessage) {
        for (name, v) in options(opts) {
            self.line(depth, &format!("option {name} = {v};"));
        }
    }

    fn file(&mut self, file: &FileDescriptor) {
        let fdp = file.file_descriptor_proto();
        let syntax = if fdp.syntax().is_empty() {
            "proto2"
        } else {
            fdp.syntax()
        };
        self.line(0, &format!("syntax = {};", quote(syntax.as_bytes(), true)));
        if !file.package_name().is_empty() {
            self.line(0, &format!("package {};", file.package_name()));
        }
        let mut imports: Vec<String> = fdp
            .dependency
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let index = i32::try_from(i).unwrap_or(i32::MAX);
                let kind = if fdp.public_dependency.contains(&index) {
                    "public "
                } else if fdp.weak_dependency.contains(&index) {
                    "weak "
                } else {
                    ""
                };
                format!("import {kind}{};", quote(name.as_bytes(), true))
            })
            .collect();
        if self.normalize {
            imports.sort();
            imports.dedup();
        }
        if !imports.is_empty() {
            self.line(0, "");
            for i in imports {
                self.line(0, &i);
            }
        }
        let file_options = options(&file.options());
        if !file_options.is_empty() {
            self.line(0, "");
            for (name, v) in file_options {
                self.line(0, &format!("option {name} = {v};"));
            }
        }
        for m in file.messages() {
            self.line(0, "");
            self.message(0, &m);
        }
        for e in file.enums() {
            self.line(0, "");
            self.enumeration(0, &e);
        }
        let extensions: Vec<ExtensionDescriptor> = file.extensions().collect();
        if !extensions.is_empty() {
            self.line(0, "");
            self.extend_blocks(0, &extensions);
        }
        for s in file.services() {
            self.line(0, "");
            self.service(&s);
        }
    }

    fn message(&mut self, depth: usize, m: &MessageDescriptor) {
        let groups: Vec<String> = m
            .fields()
            .filter(|f| f.is_group())
            .filter_map(|f| f.kind().as_message().map(|g| g.full_name().to_string()))
            .collect();
        let nested: Vec<MessageDescriptor> = m
            .child_messages()
            .filter(|c| !c.is_map_entry() && !groups.iter().any(|g| g == c.full_name()))
            .collect();
        let mut fields: Vec<FieldDescriptor> = declared_fields(m)
            .filter(|f| real_oneof(f).is_none())
            .collect();
        let mut oneofs: Vec<OneofDescriptor> = m.oneofs().filter(|o| !o.is_synthetic()).collect();
        if self.normalize {
            fields.sort_by_key(FieldDescriptor::number);
            oneofs.sort_by_key(|o| o.fields().map(|f| f.number()).min());
        }
        let enums: Vec<EnumDescriptor> = m.child_enums().collect();
        let extensions: Vec<ExtensionDescriptor> = m.child_extensions().collect();
        let dp = m.descriptor_proto();
        let reserved = ranges(dp.reserved_range.iter().map(|r| (r.start(), r.end())), true);
        let message_options = options(&m.options());
        let empty = fields.is_empty()
            && oneofs.is_empty()
            && nested.is_empty()
            && enums.is_empty()
            && extensions.is_empty()
            && reserved.is_empty()
            && dp.reserved_name.is_empty()
            && dp.extension_range.is_empty()
            && message_options.is_empty();
        if empty {
            return self.line(depth, &format!("message {} {{}}", m.name()));
        }
        self.line(depth, &format!("message {} {{", m.name()));
        let inner = depth + 1;
        self.reserved(inner, reserved, &dp.reserved_name);
        for (name, v) in message_options {
            self.line(inner, &format!("option {name} = {v};"));
        }
        for f in &fields {
            self.field(inner, f);
        }
        for o in &oneofs {
            self.oneof(inner, o);
        }
        let ext_ranges = ranges(
            dp.extension_range.iter().map(|r| (r.start(), r.end())),
            true,
        );
        if !ext_ranges.is_empty() {
            self.line(inner, &format!("extensions {};", ext_ranges.join(", ")));
        }
        for n in &nested {
            self.message(inner, n);
        }
        for e in &enums {
            self.enumeration(inner, e);
        }
        if !extensions.is_empty() {
            self.extend_blocks(inner, &extensions);
        }
        self.line(depth, "}");
    }

    fn reserved(&mut self, depth: usize, numbers: Vec<String>, names: &[String]) {
        if !numbers.is_empty() {
            self.line(depth, &format!("reserved {};", numbers.join(", ")));
        }
        if !names.is_empty() {
            let names: Vec<String> = names.iter().map(|n| quote(n.as_bytes(), true)).collect();
            self.line(depth, &format!("reserved {};", names.join(", ")));
        }
    }

    fn label(&self, f: &FieldDescriptor, in_oneof: bool) -> &'static str {
        let fdp = f.field_descriptor_proto();
        if f.is_map() || in_oneof {
            ""
        } else if f.cardinality() == Cardinality::Repeated {
            "repeated "
        } else if fdp.proto3_optional() {
            "optional "
        } else if self.proto3 {
            ""
        } else if f.cardinality() == Cardinality::Required {
            "required "
        } else {
            "optional "
        }
    }

    /// Options of a field with its `default` and explicit `json_name` pseudo-options.
    fn field_options(
        fdp: &prost_types::FieldDescriptorProto,
        kind: &Kind,
        opts: &DynamicMessage,
    ) -> Vec<(String, String)> {
        let mut all = options(opts);
        if let Some(default) = &fdp.default_value {
            let text = match kind {
                Kind::String => quote(default.as_bytes(), true),
                // Already escaped in the descriptor.
                Kind::Bytes => format!("\"{default}\""),
                _ => default.clone(),
            };
            all.push(("default".into(), text));
        }
        if let Some(json) = &fdp.json_name {
            if *json != default_json_name(fdp.name()) {
                all.push(("json_name".into(), quote(json.as_bytes(), true)));
            }
        }
        all
    }

    fn field(&mut self, depth: usize, f: &FieldDescriptor) {
        let in_oneof = real_oneof(f).is_some();
        let label = self.label(f, in_oneof);
        let opts = bracketed(Self::field_options(
            f.field_descriptor_proto(),
            &f.kind(),
            &f.options(),
        ));
        let kind = f.kind();
        if f.is_group() {
            if let Some(group) = kind.as_message() {
                self.line(
                    depth,
                    &format!("{label}group {} = {}{opts} {{", group.name(), f.number()),
                );
                self.message_body_of_group(depth + 1, group);
                return self.line(depth, "}");
            }
        }
        let ty = match kind.as_message() {
            Some(entry) if f.is_map() => format!(
                "map<{}, {}>",
                type_name(&entry.map_entry_key_field().kind()),
                type_name(&entry.map_entry_value_field().kind())
            ),
            _ => type_name(&kind),
        };
        self.line(
            depth,
            &format!("{label}{ty} {} = {}{opts};", f.name(), f.number()),
        );
    }

    /// The fields and nested types of a proto2 group's message, inside the group's braces.
    fn message_body_of_group(&mut self, depth: usize, group: &MessageDescriptor) {
        for f in declared_fields(group).filter(|f| real_oneof(f).is_none()) {
            self.field(depth, &f);
        }
        for o in group.oneofs().filter(|o| !o.is_synthetic()) {
            self.oneof(depth, &o);
        }
        for n in group.child_messages().filter(|c| !c.is_map_entry()) {
            self.message(depth, &n);
        }
        for e in group.child_enums() {
            self.enumeration(depth, &e);
        }
    }

    fn oneof(&mut self, depth: usize, o: &OneofDescriptor) {
        self.line(depth, &format!("oneof {} {{", o.name()));
        self.option_lines(depth + 1, &o.options());
        let parent = o.parent_message();
        let mut fields: Vec<FieldDescriptor> = declared_fields(parent)
            .filter(|f| real_oneof(f).is_some_and(|of| of.name() == o.name()))
            .collect();
        if self.normalize {
            fields.sort_by_key(FieldDescriptor::number);
        }
        for f in &fields {
            self.field(depth + 1, f);
        }
        self.line(depth, "}");
    }

    fn enumeration(&mut self, depth: usize, e: &EnumDescriptor) {
        self.line(depth, &format!("enum {} {{", e.name()));
        let inner = depth + 1;
        let ep = e.enum_descriptor_proto();
        let reserved = ranges(
            ep.reserved_range.iter().map(|r| (r.start(), r.end())),
            false,
        );
        self.reserved(inner, reserved, &ep.reserved_name);
        self.option_lines(inner, &e.options());
        // In declaration order (the descriptor's), which prost-reflect's iteration over
        // aliased numbers does not keep.
        let mut values: Vec<_> = ep
            .value
            .iter()
            .filter_map(|v| e.get_value_by_name(v.name()))
            .collect();
        if self.normalize {
            values.sort_by(|a, b| (a.number(), a.name()).cmp(&(b.number(), b.name())));
        }
        for v in values {
            let opts = bracketed(options(&v.options()));
            self.line(inner, &format!("{} = {}{opts};", v.name(), v.number()));
        }
        self.line(depth, "}");
    }

    /// `extend` blocks, one per extended message in order of first appearance.
    fn extend_blocks(&mut self, depth: usize, extensions: &[ExtensionDescriptor]) {
        let mut extendees: Vec<String> = Vec::new();
        for e in extensions {
            let name = e.containing_message().full_name().to_string();
            if !extendees.contains(&name) {
                extendees.push(name);
            }
        }
        for extendee in extendees {
            self.line(depth, &format!("extend .{extendee} {{"));
            let mut block: Vec<&ExtensionDescriptor> = extensions
                .iter()
                .filter(|e| e.containing_message().full_name() == extendee)
                .collect();
            if self.normalize {
                block.sort_by_key(|e| e.number());
            }
            for e in block {
                let fdp = e.field_descriptor_proto();
                let label = match e.cardinality() {
                    Cardinality::Repeated => "repeated ",
                    Cardinality::Required => "required ",
                    Cardinality::Optional if self.proto3 => "",
                    Cardinality::Optional => "optional ",
                };
                let opts = bracketed(Self::field_options(fdp, &e.kind(), &e.options()));
                self.line(
                    depth + 1,
                    &format!(
                        "{label}{} {} = {}{opts};",
                        type_name(&e.kind()),
                        e.name(),
                        e.number()
                    ),
                );
            }
            self.line(depth, "}");
        }
    }

    fn service(&mut self, s: &ServiceDescriptor) {
        self.line(0, &format!("service {} {{", s.name()));
        self.option_lines(1, &s.options());
        for m in s.methods() {
            let stream = |yes: bool| if yes { "stream " } else { "" };
            let head = format!(
                "rpc {} ({}.{}) returns ({}.{})",
                m.name(),
                stream(m.is_client_streaming()),
                m.input().full_name(),
                stream(m.is_server_streaming()),
                m.output().full_name()
            );
            let opts = options(&m.options());
            if opts.is_empty() {
                self.line(1, &format!("{head};"));
            } else {
                self.line(1, &format!("{head} {{"));
                for (name, v) in opts {
                    self.line(2, &format!("option {name} = {v};"));
                }
                self.line(1, "}");
            }
        }
        self.line(0, "}");
    }
}

/// The fields of `m` in declaration order (the descriptor's), which prost-reflect's iteration
/// does not promise.
fn declared_fields(m: &MessageDescriptor) -> impl Iterator<Item = FieldDescriptor> + '_ {
    m.descriptor_proto()
        .field
        .iter()
        .filter_map(|f| m.get_field_by_name(f.name()))
}

/// The oneof a field really belongs to (not the synthetic one of a proto3 `optional`).
fn real_oneof(f: &FieldDescriptor) -> Option<OneofDescriptor> {
    f.containing_oneof().filter(|o| !o.is_synthetic())
}

#[cfg(test)]
mod tests {
    use super::super::ProtoSchema;
    use crate::formats::ResolvedReference;

    fn canonical(text: &str, refs: &[ResolvedReference], normalize: bool) -> String {
        ProtoSchema::parse(text, refs)
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .stored_text(normalize)
    }

    const ADDRESS: &str = "syntax = \"proto3\"; package acme; message Address { string city = 1; }";

    fn address() -> ResolvedReference {
        ResolvedReference {
            name: "acme/address.proto".into(),
            schema: ADDRESS.into(),
        }
    }

    #[test]
    fn one_schema_in_any_layout_has_one_canonical_text() {
        let refs = [address()];
        let variants = [
            "syntax = \"proto3\"; package acme; import \"acme/address.proto\";\n\
             option java_package = \"com.acme\"; option go_package = \"acme\";\n\
             message User { Address home = 1; string name = 2 [deprecated = true, json_name = \"n\"]; }",
            "// a user\nsyntax   =  \"proto3\";\npackage acme;\n\nimport \"acme/address.proto\";\n\
             /* options */ option go_package = 'acme';\noption java_package = \"com.acme\";\n\
             message User {\n  // where they live\n  acme.Address home = 1;\n\
             string name = 2 [json_name = \"n\", deprecated = true];\n}\n",
            "syntax = \"proto3\"; package acme; import \"acme/address.proto\";\n\
             option go_package = \"acme\"; option java_package = \"com.acme\";\n\
             message User { .acme.Address home = 1; string name = 2 [deprecated=true,json_name=\"n\"]; }",
        ];
        let texts: Vec<String> = variants
            .iter()
            .map(|v| canonical(v, &refs, false))
            .collect();
        assert!(texts.iter().all(|t| *t == texts[0]), "{texts:#?}");
        // The base64 descriptor of the same file is the same schema too.
        let b64 = ProtoSchema::parse(variants[1], &refs)
            .unwrap_or_else(|e| panic!("{e}"))
            .serialized(Some("user.proto"));
        assert_eq!(canonical(&b64, &refs, false), texts[0]);
        assert!(texts[0].contains(".acme.Address home = 1;"), "{}", texts[0]);
        assert!(!texts[0].contains("where they live"), "{}", texts[0]);
    }

    /// Everything the renderer writes, in one file: each construct must survive a round trip.
    const EVERYTHING: &str = r#"
syntax = "proto2";
package shop.v1;
import "google/protobuf/descriptor.proto";
import public "google/protobuf/timestamp.proto";
import "confluent/meta.proto";
option java_multiple_files = true;
option (confluent.file_meta) = { doc: "the shop" tags: ["a", "b"] };
message Order {
  option (confluent.message_meta).params = { key: "owner" value: "team \"x\"\n" };
  required string id = 1 [default = "none\t"];
  optional bytes blob = 2 [default = "\001\377"];
  repeated int64 qty = 3 [packed = true];
  optional Status status = 4 [default = OPEN];
  optional double price = 5 [default = -inf];
  map<string, Line> lines = 6;
  oneof payment { string card = 7; string iban = 8; }
  optional group Note = 9 { optional string text = 1; }
  extensions 100 to 199, 1000 to max;
  reserved 20 to 25, 30;
  reserved "legacy";
  message Line { optional uint32 n = 1; optional float weight = 2 [default = 1.5]; }
  enum Status { option allow_alias = true; OPEN = 0; DONE = 1; FINISHED = 1 [deprecated = true]; reserved 5 to 9; reserved "GONE"; }
  extend google.protobuf.FieldOptions { optional string label = 50001; }
}
extend Order { optional string gift = 100; repeated sint32 marks = 101; }
extend google.protobuf.MessageOptions { optional Order.Status default_status = 50002; }
service Shop {
  option deprecated = true;
  rpc Place (Order) returns (Order);
  rpc Watch (stream Order) returns (stream Order) { option idempotency_level = NO_SIDE_EFFECTS; }
}
"#;

    #[test]
    fn canonical_text_parses_back_to_itself() {
        for normalize in [false, true] {
            let once = canonical(EVERYTHING, &[], normalize);
            let twice = canonical(&once, &[], normalize);
            assert_eq!(once, twice, "normalize={normalize}:\n{once}");
            for needle in [
                "syntax = \"proto2\";",
                "import public \"google/protobuf/timestamp.proto\";",
                "(confluent.file_meta) = { doc: \"the shop\" tags: [\"a\", \"b\"] }",
                "value: \"team \\\"x\\\"\\n\"",
                "required string id = 1 [default = \"none\\t\"];",
                "optional bytes blob = 2 [default = \"\\001\\377\"];",
                "optional double price = 5 [default = -inf];",
                "map<string, .shop.v1.Order.Line> lines = 6;",
                "optional group Note = 9 {",
                "extensions 100 to 199, 1000 to max;",
                "reserved 20 to 25, 30;",
                "FINISHED = 1 [deprecated = true];",
                "reserved 5 to 9;",
                "extend .shop.v1.Order {",
                "repeated sint32 marks = 101;",
                "rpc Watch (stream .shop.v1.Order) returns (stream .shop.v1.Order) {",
                "option idempotency_level = NO_SIDE_EFFECTS;",
            ] {
                assert!(once.contains(needle), "missing {needle}:\n{once}");
            }
        }
    }

    #[test]
    fn normalize_orders_fields_values_and_imports() {
        let a = "syntax = \"proto3\"; import \"google/protobuf/timestamp.proto\"; \
                 import \"google/protobuf/duration.proto\"; \
                 message M { int32 b = 2; google.protobuf.Timestamp a = 1; \
                 google.protobuf.Duration c = 3; } enum E { Z = 0; B = 2; A = 1; }";
        let b = "syntax = \"proto3\"; import \"google/protobuf/duration.proto\"; \
                 import \"google/protobuf/timestamp.proto\"; \
                 message M { google.protobuf.Timestamp a = 1; google.protobuf.Duration c = 3; \
                 int32 b = 2; } enum E { Z = 0; A = 1; B = 2; }";
        assert_ne!(canonical(a, &[], false), canonical(b, &[], false));
        assert_eq!(canonical(a, &[], true), canonical(b, &[], true));
        // Fields alone in another order: declaration order is kept unless normalizing.
        let c = "syntax = \"proto3\"; message M { string b = 2; string a = 1; oneof o { int32 z = 4; int32 y = 3; } }";
        let d = "syntax = \"proto3\"; message M { string a = 1; string b = 2; oneof o { int32 y = 3; int32 z = 4; } }";
        let plain = canonical(c, &[], false);
        assert!(
            plain.find("string b = 2").unwrap_or(0) < plain.find("string a = 1").unwrap_or(0),
            "{plain}"
        );
        assert!(
            plain.find("int32 z = 4").unwrap_or(0) < plain.find("int32 y = 3").unwrap_or(0),
            "{plain}"
        );
        assert_ne!(plain, canonical(d, &[], false));
        assert_eq!(canonical(c, &[], true), canonical(d, &[], true));
    }
}

#[cfg(test)]
mod properties {
    use super::super::ProtoSchema;
    use proptest::prelude::*;

    const TYPES: &[&str] = &[
        "int32",
        "int64",
        "uint32",
        "sint64",
        "fixed32",
        "sfixed64",
        "bool",
        "string",
        "bytes",
        "double",
        "float",
        "Inner",
        "Kind",
        "google.protobuf.Timestamp",
        "map<string, Inner>",
        "map<int64, Kind>",
    ];

    /// A random proto3 file: fields of every kind with shuffled numbers, some repeated or
    /// optional or in a oneof, some with options, plus a nested message and an enum.
    fn schema() -> impl Strategy<Value = String> {
        let field = (
            0..TYPES.len(),
            0u8..4,
            proptest::bool::ANY,
            proptest::bool::ANY,
        );
        (
            proptest::collection::vec(field, 1..12),
            Just((1u32..40).collect::<Vec<u32>>()).prop_shuffle(),
            "[a-z ]{0,12}",
        )
            .prop_map(|(fields, numbers, doc)| {
                let mut body = String::new();
                let mut oneof = String::new();
                for (i, (ty, shape, deprecated, json)) in fields.iter().enumerate() {
                    let ty = TYPES[*ty];
                    let mut opts = Vec::new();
                    if *deprecated {
                        opts.push("deprecated = true".to_string());
                    }
                    if *json {
                        opts.push(format!("json_name = \"J{i}\""));
                    }
                    let opts = if opts.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", opts.join(", "))
                    };
                    let map = ty.starts_with("map<");
                    let line = |label: &str| format!("{label}{ty} f{i} = {}{opts};\n", numbers[i]);
                    match shape {
                        1 if !map => body.push_str(&line("repeated ")),
                        2 if !map => body.push_str(&line("optional ")),
                        3 if !map => oneof.push_str(&line("")),
                        _ => body.push_str(&line("")),
                    }
                }
                if !oneof.is_empty() {
                    body.push_str(&format!("oneof choice {{\n{oneof}}}\n"));
                }
                format!(
                    "syntax = \"proto3\";\npackage prop.v1;\nimport \"google/protobuf/timestamp.proto\";\n\
                     option java_package = \"{doc}\";\n\
                     message Outer {{\n{body}message Inner {{ string s = 1; }}\n\
                     enum Kind {{ KIND_ZERO = 0; KIND_ONE = 1; }}\n}}\n"
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn canonical_text_round_trips_through_text_and_descriptor(text in schema()) {
            let parsed = ProtoSchema::parse(&text, &[]).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            for normalize in [false, true] {
                let canonical = parsed.stored_text(normalize);
                let again = ProtoSchema::parse(&canonical, &[])
                    .map_err(|e| TestCaseError::fail(format!("{e}\n{canonical}")))?;
                prop_assert_eq!(&again.stored_text(normalize), &canonical);
                let b64 = ProtoSchema::parse(&parsed.serialized(None), &[])
                    .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                prop_assert_eq!(&b64.stored_text(normalize), &canonical);
            }
            prop_assert!(super::super::read_problems(&parsed, &parsed).is_empty());
        }
    }
}
