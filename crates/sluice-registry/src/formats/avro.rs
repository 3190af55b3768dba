//! AVRO schemas: parsing with named-type references, stored/canonical text and Avro's
//! reader/writer resolution rules as the compatibility check.

use std::collections::{HashMap, HashSet};

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use serde_json::Value;

use super::limits::{self, LimitError, Syntax, MAX_NESTING_DEPTH};
use super::ResolvedReference;

/// A valid Avro schema with its references inlined.
#[derive(Debug, Clone)]
pub struct AvroSchema {
    /// The self-contained parsed schema (referenced named types inlined).
    schema: Schema,
    /// The submitted JSON, compacted.
    compact: String,
    /// Whether the schema depends on references (its canonical form alone would inline them).
    has_references: bool,
}

const PRIMITIVES: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

impl AvroSchema {
    /// Parses `text`, resolving named types from `references`.
    ///
    /// The text and each reference are held to the limits of [`limits`] before serde_json and
    /// apache-avro (both recursive) see them, and so is the schema with its references
    /// inlined, which nests as deep as the chain of definitions it pulls in.
    pub fn parse(text: &str, references: &[ResolvedReference]) -> Result<Self, String> {
        limits::check_text(text, Syntax::Json)
            .map_err(|e| format!("Invalid schema: the AVRO schema {e}"))?;
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("Invalid schema: the AVRO schema is not valid JSON: {e}"))?;
        let mut named = HashMap::new();
        for r in references {
            limits::check_text(&r.schema, Syntax::Json)
                .map_err(|e| format!("Invalid schema: referenced schema '{}' {e}", r.name))?;
            let rv: Value = serde_json::from_str(&r.schema).map_err(|e| {
                format!(
                    "Invalid schema: referenced schema '{}' is not valid JSON: {e}",
                    r.name
                )
            })?;
            if let Some(full) = full_name(&rv, None) {
                named.insert(full, rv);
            }
        }
        let mut defined = HashSet::new();
        // Values inlined definitions carry along (defaults, docs) sit deeper than in their own
        // text, so the assembled schema is measured as a whole too.
        let inlined = inline(&value, None, &named, &mut defined, 0)
            .and_then(|v| limits::check_value_depth(&v).map(|()| v))
            .map_err(|e| {
                format!("Invalid schema: the AVRO schema with its references inlined {e}")
            })?;
        check_names(&inlined)?;
        // apache-avro unwraps in a few parsing paths; a schema that trips one is invalid input,
        // not a reason to take the request task down.
        let schema = std::panic::catch_unwind(|| Schema::parse(&inlined))
            .map_err(|_| "Invalid schema: the AVRO schema could not be parsed".to_string())?
            .map_err(|e| format!("Invalid schema: the AVRO schema is invalid: {e}"))?;
        Ok(Self {
            schema,
            compact: value.to_string(),
            has_references: !references.is_empty(),
        })
    }

    /// The text to store: compact JSON, or Avro's Parsing Canonical Form when normalizing a
    /// schema without references.
    pub fn stored_text(&self, normalize: bool) -> String {
        if normalize && !self.has_references {
            std::panic::catch_unwind(|| self.schema.canonical_form())
                .unwrap_or_else(|_| self.compact.clone())
        } else {
            self.compact.clone()
        }
    }
}

/// Whether `name` is a valid Avro (full) name: dot-separated identifiers.
fn valid_name(name: &str) -> bool {
    name.split('.').all(|part| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Rejects invalid `name` and `namespace` values with a message naming them.
fn check_names(v: &Value) -> Result<(), String> {
    match v {
        Value::Object(obj) => {
            if let Some(name) = obj.get("name").and_then(Value::as_str) {
                if !valid_name(name) {
                    return Err(format!(
                        "Invalid schema: '{name}' is not a valid Avro name (use letters, digits and _, not starting with a digit, separated by dots)"
                    ));
                }
            }
            if let Some(ns) = obj.get("namespace").and_then(Value::as_str) {
                if !ns.is_empty() && !valid_name(ns) {
                    return Err(format!(
                        "Invalid schema: '{ns}' is not a valid Avro namespace"
                    ));
                }
            }
            obj.values().try_for_each(check_names)
        }
        Value::Array(items) => items.iter().try_for_each(check_names),
        _ => Ok(()),
    }
}

/// The full name a named-type definition declares (`namespace.name`).
fn full_name(v: &Value, enclosing_ns: Option<&str>) -> Option<String> {
    let obj = v.as_object()?;
    let name = obj.get("name")?.as_str()?;
    if name.contains('.') {
        return Some(name.to_string());
    }
    let ns = obj
        .get("namespace")
        .and_then(Value::as_str)
        .or(enclosing_ns)
        .filter(|ns| !ns.is_empty());
    Some(match ns {
        Some(ns) => format!("{ns}.{name}"),
        None => name.to_string(),
    })
}

/// Replaces the first use of each referenced named type by its definition, so the result parses
/// on its own (later uses stay names, which Avro resolves to the first definition).
///
/// `depth` is how deep `v` sits in the result. A definition pulled in from a reference nests
/// under the use it replaces, so the result can be deeper than any one text: past
/// [`MAX_NESTING_DEPTH`] this stops before recursing further.
fn inline(
    v: &Value,
    ns: Option<&str>,
    named: &HashMap<String, Value>,
    defined: &mut HashSet<String>,
    depth: usize,
) -> Result<Value, LimitError> {
    if matches!(v, Value::Array(_) | Value::Object(_)) && depth >= MAX_NESTING_DEPTH {
        return Err(LimitError::TooDeep { offset: None });
    }
    Ok(match v {
        Value::String(s) if !PRIMITIVES.contains(&s.as_str()) => {
            let full = match ns {
                Some(ns) if !s.contains('.') && !ns.is_empty() => format!("{ns}.{s}"),
                _ => s.clone(),
            };
            let key = if named.contains_key(&full) {
                Some(full)
            } else if named.contains_key(s) {
                Some(s.clone())
            } else {
                None
            };
            match key {
                Some(key) if defined.insert(key.clone()) => match named.get(&key) {
                    Some(def) => {
                        let own_ns = key.rsplit_once('.').map(|(n, _)| n.to_string());
                        inline(def, own_ns.as_deref(), named, defined, depth)?
                    }
                    None => v.clone(),
                },
                _ => v.clone(),
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| inline(i, ns, named, defined, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(obj) => {
            let own = full_name(v, ns);
            if let Some(own) = &own {
                defined.insert(own.clone());
            }
            let child_ns = own
                .as_deref()
                .and_then(|f| f.rsplit_once('.').map(|(n, _)| n.to_string()))
                .or_else(|| ns.map(str::to_string));
            let mut out = serde_json::Map::with_capacity(obj.len());
            for (k, child) in obj {
                let child = match k.as_str() {
                    "type" | "items" | "values" | "fields" => {
                        inline(child, child_ns.as_deref(), named, defined, depth + 1)?
                    }
                    _ => child.clone(),
                };
                out.insert(k.clone(), child);
            }
            Value::Object(out)
        }
        _ => v.clone(),
    })
}

/// Why data written with `writer` cannot be read with `reader`, by Avro's resolution rules.
pub fn read_problems(writer: &AvroSchema, reader: &AvroSchema) -> Vec<String> {
    let verdict =
        std::panic::catch_unwind(|| SchemaCompatibility::can_read(&writer.schema, &reader.schema));
    match verdict {
        Ok(Ok(())) => Vec::new(),
        Ok(Err(e)) => vec![format!("{e}")],
        Err(_) => vec!["the Avro resolution check failed on these schemas".to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AvroSchema {
        AvroSchema::parse(text, &[]).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn invalid_schema_names_the_problem() {
        let err = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"nosuch"}]}"#,
            &[],
        )
        .err()
        .unwrap_or_default();
        assert!(err.contains("nosuch"), "{err}");
        let err = AvroSchema::parse("{not json", &[])
            .err()
            .unwrap_or_default();
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn references_are_inlined() {
        let refd = ResolvedReference {
            name: "com.acme.Address".into(),
            schema: r#"{"type":"record","name":"Address","namespace":"com.acme","fields":[{"name":"city","type":"string"}]}"#.into(),
        };
        let main = r#"{"type":"record","name":"User","namespace":"com.acme","fields":[{"name":"home","type":"Address"},{"name":"work","type":"com.acme.Address"}]}"#;
        let parsed = AvroSchema::parse(main, &[refd]).unwrap_or_else(|e| panic!("{e}"));
        assert!(parsed.schema.canonical_form().contains("city"));
        assert!(AvroSchema::parse(main, &[]).is_err());
    }

    #[test]
    fn normalize_uses_canonical_form() {
        let a = parse(
            r#"{"type": "record", "name": "R", "doc": "x", "fields": [{"name": "a", "type": "int"}]}"#,
        );
        let b = parse(r#"{"name":"R","type":"record","fields":[{"type":"int","name":"a"}]}"#);
        assert_eq!(a.stored_text(true), b.stored_text(true));
        assert_ne!(a.stored_text(false), b.stored_text(false));
    }

    use crate::formats::limits::on_handler_stack;

    /// `depth` JSON levels of nested arrays around an int.
    fn nested_arrays(depth: usize) -> String {
        format!(
            "{}\"int\"{}",
            r#"{"type":"array","items":"#.repeat(depth),
            "}".repeat(depth)
        )
    }

    /// `records` records nested in one another: three JSON levels each (record object, fields
    /// array, field object), so `records * 3` levels in all.
    fn nested_records(records: usize) -> String {
        let mut text = String::new();
        for i in 0..records {
            text.push_str(&format!(
                r#"{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":"#
            ));
        }
        text.push_str(r#""long""#);
        text.push_str(&"}]}".repeat(records));
        text
    }

    fn is_depth_error(e: &str) -> bool {
        e.starts_with("Invalid schema:") && e.contains("limit of 64 levels")
    }

    #[test]
    fn a_thousand_levels_are_refused_not_a_crash() {
        for text in [nested_arrays(1000), nested_records(1000)] {
            let err = on_handler_stack(move || AvroSchema::parse(&text, &[]).err());
            let err = err.unwrap_or_default();
            assert!(is_depth_error(&err), "{err}");
        }
    }

    #[test]
    fn everything_runs_at_the_limit_on_a_handler_stack() {
        let verdicts = on_handler_stack(|| {
            [
                nested_arrays(MAX_NESTING_DEPTH),
                nested_records(MAX_NESTING_DEPTH / 3),
            ]
            .iter()
            .map(|text| {
                let p = AvroSchema::parse(text, &[])?;
                let changed = AvroSchema::parse(&text.replace("\"long\"", "\"int\""), &[])?;
                Ok((
                    p.stored_text(true).len() > 10,
                    read_problems(&p, &p).len(),
                    read_problems(&p, &changed).len(),
                ))
            })
            .collect::<Vec<Result<_, String>>>()
        });
        assert_eq!(verdicts[0], Ok((true, 0, 0)));
        assert_eq!(verdicts[1], Ok((true, 0, 1)));
        let err = AvroSchema::parse(&nested_arrays(MAX_NESTING_DEPTH + 1), &[])
            .err()
            .unwrap_or_default();
        assert!(is_depth_error(&err), "{err}");
    }

    #[test]
    fn recursive_named_types_terminate() {
        let list = r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","Node"]},{"name":"kids","type":{"type":"array","items":"Node"}}]}"#;
        let (same, changed) = on_handler_stack(move || {
            let a = AvroSchema::parse(list, &[])?;
            let b = AvroSchema::parse(&list.replace("\"long\"", "\"int\""), &[])?;
            let _ = a.stored_text(true);
            Ok::<_, String>((read_problems(&a, &a).len(), read_problems(&a, &b).len()))
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((same, changed), (0, 1));
    }

    #[test]
    fn cyclic_references_are_inlined_once() {
        // a.A uses b.B, which uses a.A: each definition is inlined at its first use only.
        let a = ResolvedReference {
            name: "a.A".into(),
            schema: r#"{"type":"record","name":"A","namespace":"a","fields":[{"name":"b","type":["null","b.B"]}]}"#.into(),
        };
        let b = ResolvedReference {
            name: "b.B".into(),
            schema: r#"{"type":"record","name":"B","namespace":"b","fields":[{"name":"a","type":["null","a.A"]}]}"#.into(),
        };
        let main = r#"{"type":"record","name":"M","fields":[{"name":"a","type":"a.A"},{"name":"b","type":"b.B"}]}"#;
        let parsed =
            on_handler_stack(move || AvroSchema::parse(main, &[a, b]).map(|p| p.stored_text(true)));
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    #[test]
    fn inlining_is_held_to_the_limit() {
        // Each reference is shallow, but chained they nest past the limit once inlined.
        let refs: Vec<ResolvedReference> = (0..40)
            .map(|i| ResolvedReference {
                name: format!("R{i}"),
                schema: format!(
                    r#"{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":"R{}"}}]}}"#,
                    i + 1
                ),
            })
            .collect();
        let main = r#"{"type":"record","name":"M","fields":[{"name":"f","type":"R0"}]}"#;
        let err = on_handler_stack(move || AvroSchema::parse(main, &refs).err());
        let err = err.unwrap_or_default();
        assert!(is_depth_error(&err) && err.contains("inlined"), "{err}");
        let deep_ref = ResolvedReference {
            name: "X".into(),
            schema: nested_arrays(1000),
        };
        let err = AvroSchema::parse(r#""X""#, &[deep_ref])
            .err()
            .unwrap_or_default();
        assert!(is_depth_error(&err) && err.contains("'X'"), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        #[test]
        fn depth_around_the_limit(
            kinds in proptest::collection::vec(0u8..3, MAX_NESTING_DEPTH + 3),
            cut in 0usize..3,
            below in proptest::bool::ANY,
        ) {
            // A random mix of arrays, maps and unions, one JSON level each.
            let depth = if below { MAX_NESTING_DEPTH - cut } else { MAX_NESTING_DEPTH + 1 + cut };
            let mut text = String::from("\"int\"");
            for k in kinds.iter().take(depth) {
                text = match k {
                    0 => format!(r#"{{"type":"array","items":{text}}}"#),
                    1 => format!(r#"{{"type":"map","values":{text}}}"#),
                    _ => format!(r#"["null",{text}]"#),
                };
            }
            let verdict = on_handler_stack(move || AvroSchema::parse(&text, &[]).map(|p| p.stored_text(true)));
            if below {
                // Unions directly in unions are invalid Avro: only the limit matters here.
                if let Err(e) = &verdict {
                    proptest::prop_assert!(!e.contains("limit"), "{}", e);
                }
            } else {
                let err = verdict.err().unwrap_or_default();
                proptest::prop_assert!(is_depth_error(&err), "{}", err);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
            let _ = AvroSchema::parse(&text, &[]);
        }

        #[test]
        fn arbitrary_json_shapes_never_panic(
            ty in proptest::sample::select(vec!["record", "enum", "fixed", "array", "map", "int", "nope"]),
            name in "[A-Za-z.]{0,6}",
            size in -2i64..3,
        ) {
            let text = format!(
                r#"{{"type":"{ty}","name":"{name}","fields":[{{"name":"{name}","type":"{name}"}}],"symbols":["{name}"],"size":{size},"items":"{name}","values":"int"}}"#
            );
            if let Ok(parsed) = AvroSchema::parse(&text, &[]) {
                let _ = parsed.stored_text(true);
                let _ = read_problems(&parsed, &parsed);
            }
        }
    }
}
