//! Confluent's protobuf compatibility rules over two compiled files: messages of the schema
//! itself compared by full name, and message types it uses from its imports (other subjects'
//! schemas, bundled files) followed through the fields that use them, so a breaking change in a
//! referenced schema breaks the schemas using it.

use std::collections::{BTreeMap, BTreeSet};

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto};

use super::ProtoSchema;

/// Messages by full name (`package.Outer.Inner`), nested ones included. Walked with an explicit
/// stack: the nesting was bounded at parse time, but the walk need not rely on it.
fn messages(fd: &FileDescriptorProto) -> BTreeMap<String, &DescriptorProto> {
    fn enqueue<'a>(
        prefix: &str,
        list: &'a [DescriptorProto],
        pending: &mut Vec<(String, &'a DescriptorProto)>,
    ) {
        for m in list {
            let name = if prefix.is_empty() {
                m.name().to_string()
            } else {
                format!("{prefix}.{}", m.name())
            };
            pending.push((name, m));
        }
    }
    let mut out = BTreeMap::new();
    let mut pending = Vec::new();
    enqueue(fd.package(), &fd.message_type, &mut pending);
    while let Some((name, m)) = pending.pop() {
        // Map entries are synthetic; their changes show up as field changes.
        if m.options
            .as_ref()
            .and_then(|o| o.map_entry)
            .unwrap_or(false)
        {
            continue;
        }
        enqueue(&name, &m.nested_type, &mut pending);
        out.insert(name, m);
    }
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

/// Messages of every file in `files`, by full name.
fn all_messages<'a>(files: impl Iterator<Item = &'a FileDescriptorProto>) -> Messages<'a> {
    let mut out = BTreeMap::new();
    for f in files {
        let package = f.package();
        for (name, m) in messages(f) {
            let local = match name.strip_prefix(package) {
                Some(rest) if !package.is_empty() => rest.trim_start_matches('.').to_string(),
                _ => name.clone(),
            };
            out.insert(name, (m, local));
        }
    }
    out
}

/// Messages by full name, each with its name within its file's package (what Confluent
/// compares, so a referenced schema may change its package).
type Messages<'a> = BTreeMap<String, (&'a DescriptorProto, String)>;

/// One comparison of two schemas' messages.
struct Comparison<'a> {
    /// Every message the writer can see (its own and its imports'), by full name.
    writer_all: Messages<'a>,
    /// The same for the reader.
    reader_all: Messages<'a>,
    /// Messages the schemas define themselves, compared at the top level anyway.
    own: BTreeSet<String>,
    /// Pairs of imported messages compared so far (each once, and recursive types end).
    followed: BTreeSet<(String, String)>,
    out: Vec<String>,
}

/// Why data written with `writer` cannot be read with `reader` (Confluent's protobuf rules).
pub fn read_problems(writer: &ProtoSchema, reader: &ProtoSchema) -> Vec<String> {
    let (w, r) = (&writer.descriptor, &reader.descriptor);
    if w.package() != r.package() {
        return vec![format!(
            "PACKAGE_CHANGED: package '{}' became '{}'",
            w.package(),
            r.package()
        )];
    }
    let (wm, rm) = (messages(w), messages(r));
    let mut c = Comparison {
        writer_all: all_messages(writer.files()),
        reader_all: all_messages(reader.files()),
        own: wm.keys().chain(rm.keys()).cloned().collect(),
        followed: BTreeSet::new(),
        out: Vec::new(),
    };
    for (name, wmsg) in &wm {
        match rm.get(name) {
            None => c
                .out
                .push(format!("MESSAGE_REMOVED: message {name} was removed")),
            Some(rmsg) => c.compare_message(name, wmsg, rmsg),
        }
    }
    c.out
}

impl<'a> Comparison<'a> {
    /// The name of a field's message type within its package, on one side.
    fn local_name(all: &Messages<'_>, type_name: &str) -> String {
        let full = type_name.trim_start_matches('.');
        all.get(full)
            .map_or_else(|| full.to_string(), |(_, local)| local.clone())
    }

    /// Compares a message-typed field's type on both sides: a different name (within its
    /// package) is FIELD_NAMED_TYPE_CHANGED; the same imported message is compared (once),
    /// and an incompatible change inside it is FIELD_NAMED_TYPE_CHANGED on the field too.
    fn compare_named_types(&mut self, at: &str, writer_type: &str, reader_type: &str) {
        let (wl, rl) = (
            Self::local_name(&self.writer_all, writer_type),
            Self::local_name(&self.reader_all, reader_type),
        );
        if wl != rl {
            return self.out.push(format!(
                "FIELD_NAMED_TYPE_CHANGED: {at} changed from {writer_type} to {reader_type}"
            ));
        }
        let (wn, rn) = (
            writer_type.trim_start_matches('.'),
            reader_type.trim_start_matches('.'),
        );
        // The schemas' own messages are compared at the top level anyway.
        if (self.own.contains(wn) && wn == rn) || !self.followed.insert((wn.into(), rn.into())) {
            return;
        }
        let (Some(w), Some(r)) = (
            self.writer_all.get(wn).map(|(m, _)| *m),
            self.reader_all.get(rn).map(|(m, _)| *m),
        ) else {
            return;
        };
        let before = self.out.len();
        self.compare_message(rn, w, r);
        if self.out.len() > before {
            self.out.push(format!(
                "FIELD_NAMED_TYPE_CHANGED: {at}: its type {rn} changed incompatibly"
            ));
        }
    }

    fn compare_message(&mut self, name: &str, w: &DescriptorProto, r: &DescriptorProto) {
        let out = &mut self.out;
        let wf: BTreeMap<i32, &FieldDescriptorProto> =
            w.field.iter().map(|f| (f.number(), f)).collect();
        let rf: BTreeMap<i32, &FieldDescriptorProto> =
            r.field.iter().map(|f| (f.number(), f)).collect();
        let mut compared = Vec::new();
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
                Some(g) => compared.push((at, *f, *g)),
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
        // Where the fields of each reader oneof were in the writer: all in one writer oneof is
        // that oneof (perhaps renamed); one field from the top level is a new choice; anything
        // else changes which fields exclude each other on the wire.
        let mut sources: BTreeMap<&str, (BTreeSet<&str>, Vec<i32>)> = BTreeMap::new();
        for (num, g) in &rf {
            let (Some(roneof), Some(f)) = (oneof_name(r, g), wf.get(num)) else {
                continue;
            };
            let entry = sources.entry(roneof).or_default();
            match oneof_name(w, f) {
                Some(woneof) => {
                    entry.0.insert(woneof);
                }
                None => entry.1.push(*num),
            }
        }
        for (oneof, (from_oneofs, from_top)) in sources {
            if from_oneofs.len() > 1 || (!from_oneofs.is_empty() && !from_top.is_empty()) {
                out.push(format!(
                "FIELD_MOVED_TO_EXISTING_ONEOF: fields of {name} from oneofs {from_oneofs:?} and fields {from_top:?} now share oneof {oneof}"
            ));
            } else if from_top.len() > 1 {
                out.push(format!(
                "MULTIPLE_FIELDS_MOVED_TO_ONEOF: fields {from_top:?} of {name} moved into oneof {oneof}"
            ));
            }
        }
        for (at, f, g) in compared {
            compare_field(&at, f, g, &mut self.out);
            if scalar_group(f.r#type()).is_none() && scalar_group(g.r#type()).is_none() {
                self.compare_named_types(&at, f.type_name(), g.type_name());
            }
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
        // Message types are compared by the caller, which knows the packages.
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
    use crate::formats::ResolvedReference;

    fn parse(text: &str, refs: &[ResolvedReference]) -> ProtoSchema {
        ProtoSchema::parse(text, refs).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn home(package: &str, id_type: &str) -> ResolvedReference {
        ResolvedReference {
            name: "home.proto".into(),
            schema: format!(
                "syntax = \"proto3\"; package {package}; message Home {{ {id_type} id = 1; bool on = 2; }}"
            ),
        }
    }

    const USER: &str =
        "syntax = \"proto3\"; import \"home.proto\"; message User { .PKG.Home home = 1; }";

    fn user(package: &str, id_type: &str) -> ProtoSchema {
        parse(&USER.replace("PKG", package), &[home(package, id_type)])
    }

    #[test]
    fn a_breaking_change_inside_a_referenced_schema_breaks_its_users() {
        let before = user("devices", "int32");
        let problems = read_problems(&before, &user("devices", "string"));
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("FIELD_SCALAR_KIND_CHANGED: devices.Home.id")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("FIELD_NAMED_TYPE_CHANGED: User.home")),
            "{problems:?}"
        );
        // Compatible changes inside it, and its package moving, are not.
        assert!(read_problems(&before, &user("devices", "int64")).is_empty());
        assert!(read_problems(&before, &user("devices.v2", "int32")).is_empty());
    }

    #[test]
    fn recursive_referenced_types_are_compared_once() {
        let tree = |ty: &str| {
            ResolvedReference {
            name: "tree.proto".into(),
            schema: format!(
                "syntax = \"proto3\"; package t; message Node {{ {ty} v = 1; repeated Node kids = 2; Node parent = 3; }}"
            ),
        }
        };
        let main = "syntax = \"proto3\"; import \"tree.proto\"; message Doc { t.Node root = 1; }";
        let (a, b) = (
            parse(main, &[tree("int32")]),
            parse(main, &[tree("string")]),
        );
        assert!(read_problems(&a, &a).is_empty());
        let problems = read_problems(&a, &b);
        let kind_changes = problems
            .iter()
            .filter(|p| p.starts_with("FIELD_SCALAR_KIND_CHANGED"))
            .count();
        assert_eq!(kind_changes, 1, "{problems:?}");
    }

    #[test]
    fn bundled_imports_resolve_without_references() {
        let text = "syntax = \"proto3\"; package shop;\n\
                    import \"google/type/money.proto\"; import \"google/type/date.proto\";\n\
                    import \"google/type/latlng.proto\"; import \"google/type/postal_address.proto\";\n\
                    import \"confluent/meta.proto\"; import \"confluent/type/decimal.proto\";\n\
                    message Order { google.type.Money total = 1; google.type.Date day = 2;\n\
                    google.type.LatLng where = 3; google.type.PostalAddress to = 4;\n\
                    confluent.type.Decimal tax = 5 [(confluent.field_meta).params = { key: \"precision\" value: \"8\" }]; }";
        let order = parse(text, &[]);
        assert!(read_problems(&order, &order).is_empty());
        // A registered reference of the same name wins over the bundled file.
        let own_money = ResolvedReference {
            name: "google/type/money.proto".into(),
            schema: "syntax = \"proto3\"; package google.type; message Money { int64 amount = 1; }"
                .into(),
        };
        let uses_own = "syntax = \"proto3\"; import \"google/type/money.proto\"; \
                        message M { google.type.Money m = 1; }";
        let with_own = parse(uses_own, &[own_money]);
        let with_bundled = parse(uses_own, &[]);
        assert!(!read_problems(&with_bundled, &with_own).is_empty());
    }
}
