//! JSON Schema: the document's draft (draft-07 unless `$schema` names another, as in
//! Confluent), validation against that draft's meta-schema, `$ref` resolution within the
//! document and into referenced subjects, and Confluent's compatibility rules (`compat`).

mod compat;
mod pointer;

use std::collections::HashMap;
use std::sync::Arc;

use jsonschema::Draft;
use serde_json::Value;

use super::limits::{self, Syntax};
use super::ResolvedReference;

pub use compat::read_problems;

/// A JSON Schema document with the documents it references.
#[derive(Debug, Clone)]
pub struct JsonSchema {
    root: Value,
    /// Referenced documents by the name the schema's `$ref`s use, transitively.
    references: Arc<HashMap<String, Value>>,
}

const TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "integer", "string",
];

/// The draft a schema is checked against when its `$schema` names none: Confluent's default.
const DEFAULT_DRAFT: Draft = Draft::Draft7;

/// The draft `root` is written in: the one its `$schema` names (`http` or `https`, with or
/// without the empty fragment), else [`DEFAULT_DRAFT`] — also for a `$schema` naming no draft,
/// as Confluent does.
fn draft_of(root: &Value) -> Draft {
    let Some(uri) = root.get("$schema").and_then(Value::as_str) else {
        return DEFAULT_DRAFT;
    };
    let bare = uri.strip_suffix('#').unwrap_or(uri);
    let bare = bare
        .strip_prefix("https://")
        .or_else(|| bare.strip_prefix("http://"))
        .unwrap_or(bare);
    match bare {
        "json-schema.org/draft-04/schema" | "json-schema.org/schema" => Draft::Draft4,
        "json-schema.org/draft-06/schema" => Draft::Draft6,
        "json-schema.org/draft/2019-09/schema" => Draft::Draft201909,
        "json-schema.org/draft/2020-12/schema" => Draft::Draft202012,
        _ => DEFAULT_DRAFT,
    }
}

/// Checks `root` against the meta-schema of `draft`.
fn check_meta_schema(root: &Value, draft: Draft) -> Result<(), String> {
    let verdict = match draft {
        Draft::Draft4 => jsonschema::draft4::meta::validate(root),
        Draft::Draft6 => jsonschema::draft6::meta::validate(root),
        Draft::Draft7 => jsonschema::draft7::meta::validate(root),
        Draft::Draft201909 => jsonschema::draft201909::meta::validate(root),
        _ => jsonschema::draft202012::meta::validate(root),
    };
    verdict.map_err(|e| {
        format!(
            "Invalid schema: the JSON schema does not conform to its meta-schema ({draft:?}): {e} at {}",
            e.instance_path
        )
    })
}

/// Parses one JSON text (a schema or a referenced one) after holding it to the limits.
fn parse_document(text: &str, what: &str) -> Result<Value, String> {
    limits::check_text(text, Syntax::Json).map_err(|e| format!("Invalid schema: {what} {e}"))?;
    serde_json::from_str(text).map_err(|e| format!("Invalid schema: {what} is not valid JSON: {e}"))
}

impl JsonSchema {
    /// Parses `text`, checks it against its draft's meta-schema and the keywords this registry
    /// reasons about; `references` are the (transitively) referenced schemas, by the name
    /// `$ref`s use for them.
    ///
    /// Every text is first held to the limits of [`limits`]: serde_json, the meta-schema
    /// validation and the walks here all recurse once per level. `$ref`s are followed only by
    /// the compatibility check, which bounds how far (`compat`).
    pub fn parse(text: &str, references: &[ResolvedReference]) -> Result<Self, String> {
        let root = parse_document(text, "the JSON schema")?;
        if root.is_object() {
            check_meta_schema(&root, draft_of(&root))?;
        }
        validate(&root, "#")?;
        let mut docs = HashMap::with_capacity(references.len());
        for r in references {
            let what = format!("the referenced JSON schema '{}'", r.name);
            docs.insert(r.name.clone(), parse_document(&r.schema, &what)?);
        }
        Ok(Self {
            root,
            references: Arc::new(docs),
        })
    }

    /// Compact JSON of the document.
    pub fn stored_text(&self) -> String {
        self.root.to_string()
    }
}

fn validate(v: &Value, path: &str) -> Result<(), String> {
    let obj = match v {
        Value::Bool(_) => return Ok(()),
        Value::Object(o) => o,
        _ => {
            return Err(format!(
                "Invalid schema: {path} must be a JSON object or boolean"
            ))
        }
    };
    if let Some(t) = obj.get("type") {
        let names: Vec<&Value> = match t {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for n in names {
            match n.as_str() {
                Some(s) if TYPES.contains(&s) => {}
                _ => {
                    return Err(format!(
                        "Invalid schema: {path}/type has unknown type {n}; use one of {TYPES:?}"
                    ))
                }
            }
        }
    }
    if let Some(req) = obj.get("required") {
        let ok = req
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string));
        if !ok {
            return Err(format!(
                "Invalid schema: {path}/required must be an array of strings"
            ));
        }
    }
    for key in ["properties", "definitions", "$defs", "patternProperties"] {
        if let Some(p) = obj.get(key) {
            let map = p
                .as_object()
                .ok_or_else(|| format!("Invalid schema: {path}/{key} must be an object"))?;
            for (name, sub) in map {
                validate(sub, &format!("{path}/{key}/{name}"))?;
            }
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = obj.get(key) {
            match sub {
                Value::Array(a) if key == "items" => {
                    for (i, s) in a.iter().enumerate() {
                        validate(s, &format!("{path}/{key}/{i}"))?;
                    }
                }
                _ => validate(sub, &format!("{path}/{key}"))?,
            }
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(sub) = obj.get(key) {
            let arr = sub
                .as_array()
                .ok_or_else(|| format!("Invalid schema: {path}/{key} must be an array"))?;
            for (i, s) in arr.iter().enumerate() {
                validate(s, &format!("{path}/{key}/{i}"))?;
            }
        }
    }
    for key in [
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
    ] {
        if let Some(n) = obj.get(key) {
            if !n.as_u64().is_some_and(|_| true) {
                return Err(format!(
                    "Invalid schema: {path}/{key} must be a non-negative integer"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_schema_violations_are_named() {
        let err = JsonSchema::parse(
            r#"{"type":"object","properties":{"a":{"minLength":-1}}}"#,
            &[],
        )
        .err()
        .unwrap_or_default();
        assert!(err.contains("meta-schema"), "{err}");
        assert!(JsonSchema::parse(
            r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"string"}"#,
            &[]
        )
        .is_ok());
        assert!(JsonSchema::parse("true", &[]).is_ok());
    }

    #[test]
    fn drafts_follow_schema_and_default_to_draft_07() {
        // Draft-07's tuple form of `items`, which 2020-12 replaced with `prefixItems`.
        let tuple = r#"{"type":"array","items":[{"type":"string"},{"type":"integer"}]}"#;
        assert!(JsonSchema::parse(tuple, &[]).is_ok());
        let as_2020 = tuple.replacen(
            '{',
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","#,
            1,
        );
        assert!(JsonSchema::parse(&as_2020, &[]).is_err());
        // Draft-04's boolean exclusiveMinimum, a number from draft-06 on.
        let draft4 = r#"{"type":"number","minimum":0,"exclusiveMinimum":true}"#;
        assert!(JsonSchema::parse(draft4, &[]).is_err());
        for uri in [
            "http://json-schema.org/draft-04/schema#",
            "https://json-schema.org/draft-04/schema",
            "http://json-schema.org/schema#",
        ] {
            let text = draft4.replacen('{', &format!(r#"{{"$schema":"{uri}","#), 1);
            assert!(JsonSchema::parse(&text, &[]).is_ok(), "{uri}");
        }
        // A $schema naming no known draft is read as draft-07, as Confluent does.
        let unknown = tuple.replacen('{', r#"{"$schema":"http://example.invalid/none","#, 1);
        assert!(JsonSchema::parse(&unknown, &[]).is_ok());
        assert_eq!(
            draft_of(
                &serde_json::json!({"$schema": "https://json-schema.org/draft/2019-09/schema#"})
            ),
            Draft::Draft201909
        );
    }

    use crate::formats::limits::{on_handler_stack, MAX_NESTING_DEPTH};

    /// `depth` JSON levels: objects nested through `properties` (two levels per object).
    fn nested_properties(depth: usize) -> String {
        let objects = depth / 2;
        let mut text = String::new();
        for _ in 0..objects {
            text.push_str(r#"{"type":"object","properties":{"a":"#);
        }
        text.push_str(if depth % 2 == 1 {
            r#"{"type":"string"}"#
        } else {
            "true"
        });
        text.push_str(&"}}".repeat(objects));
        text
    }

    fn parse(text: &str) -> JsonSchema {
        JsonSchema::parse(text, &[]).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    fn is_depth_error(e: &str) -> bool {
        e.starts_with("Invalid schema:") && e.contains("limit of 64 levels")
    }

    #[test]
    fn a_thousand_levels_are_refused_not_a_crash() {
        for text in [
            nested_properties(1000),
            format!("{}{}", "[".repeat(1000), "]".repeat(1000)),
        ] {
            let err = on_handler_stack(move || JsonSchema::parse(&text, &[]).err());
            let err = err.unwrap_or_default();
            assert!(is_depth_error(&err), "{err}");
        }
    }

    #[test]
    fn everything_runs_at_the_limit_on_a_handler_stack() {
        let (ok, problems) = on_handler_stack(|| {
            let text = nested_properties(MAX_NESTING_DEPTH - 1);
            let a = JsonSchema::parse(&text, &[]);
            let b = JsonSchema::parse(&text.replace("string", "integer"), &[]);
            match (a, b) {
                (Ok(a), Ok(b)) => (true, read_problems(&a, &b).len()),
                _ => (false, 0),
            }
        });
        assert_eq!((ok, problems), (true, 1));
        let err = JsonSchema::parse(&nested_properties(MAX_NESTING_DEPTH + 1), &[])
            .err()
            .unwrap_or_default();
        assert!(is_depth_error(&err), "{err}");
    }

    #[test]
    fn self_and_cyclic_refs_end() {
        let texts = [
            r##"{"$ref":"#"}"##,
            r##"{"type":"object","properties":{"me":{"$ref":"#"}}}"##,
            r##"{"definitions":{"a":{"$ref":"#/definitions/b"},"b":{"$ref":"#/definitions/a"}},"$ref":"#/definitions/a"}"##,
            r##"{"$defs":{"a":{"$ref":"#/$defs/a"}},"properties":{"x":{"$ref":"#/$defs/a"}}}"##,
        ];
        let parsed: Vec<JsonSchema> = texts.iter().map(|t| parse(t)).collect();
        for w in &parsed {
            for r in &parsed {
                let _ = read_problems(w, r);
            }
        }
    }

    #[test]
    fn long_ref_chains_are_compared_within_the_depth_limit() {
        // Each definition nests the next through a $ref: shallow text, deep comparison.
        let chain = |len: usize, leaf: &str| {
            let defs: Vec<String> = (0..len)
                .map(|i| {
                    format!(
                        r##""d{i}":{{"type":"object","properties":{{"n":{{"$ref":"#/definitions/d{}"}}}}}}"##,
                        i + 1
                    )
                })
                .collect();
            format!(
                r##"{{"$ref":"#/definitions/d0","definitions":{{{},"d{len}":{{"type":"{leaf}"}}}}}}"##,
                defs.join(",")
            )
        };
        let (shallow, deep) = on_handler_stack(move || {
            let verdict = |len| {
                let (a, b) = (parse(&chain(len, "string")), parse(&chain(len, "integer")));
                read_problems(&a, &b)
            };
            (verdict(20), verdict(2_000))
        });
        assert_eq!(shallow.len(), 1, "{shallow:?}");
        assert!(shallow[0].contains("TYPE_CHANGED"), "{shallow:?}");
        assert!(
            deep.iter().any(|p| p.contains("too deep to compare")),
            "{deep:?}"
        );
    }

    #[test]
    fn comparisons_are_budgeted() {
        // 400 writer alternatives, each compared with each of 400 reader alternatives: 160,000
        // comparisons from a 20 KB schema, and nesting such oneOfs would multiply them.
        let one_of = |ty: &str| {
            let alternatives: Vec<String> = (0..400)
                .map(|i| {
                    format!(r#"{{"properties":{{"p{i}":{{"type":"{ty}"}}}},"required":["p{i}"]}}"#)
                })
                .collect();
            format!(r#"{{"oneOf":[{}]}}"#, alternatives.join(","))
        };
        let writer = parse(&one_of("string"));
        let reader = parse(&one_of("integer"));
        let started = std::time::Instant::now();
        let problems = read_problems(&writer, &reader);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        assert!(
            problems.iter().any(|p| p.contains("limit of 100000")),
            "{problems:?}"
        );
        // Within the budget nothing is added.
        assert!(read_problems(&writer, &writer).is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        #[test]
        fn depth_around_the_limit(
            kinds in proptest::collection::vec(0u8..4, MAX_NESTING_DEPTH + 3),
            cut in 0usize..3,
            below in proptest::bool::ANY,
        ) {
            // A random mix of keywords holding sub-schemas, one JSON level each ("items" as a
            // schema, "not") or two ("allOf" array, "properties" map).
            let limit = if below { MAX_NESTING_DEPTH - cut } else { MAX_NESTING_DEPTH + 1 + cut };
            let mut text = String::from("{}");
            let mut depth = 1;
            for k in &kinds {
                let (next, levels) = match k {
                    0 => (format!(r#"{{"items":{text}}}"#), 1),
                    1 => (format!(r#"{{"not":{text}}}"#), 1),
                    2 => (format!(r#"{{"allOf":[{text}]}}"#), 2),
                    _ => (format!(r#"{{"properties":{{"p":{text}}}}}"#), 2),
                };
                if depth + levels > limit {
                    break;
                }
                text = next;
                depth += levels;
            }
            while depth < limit {
                text = format!(r#"{{"not":{text}}}"#);
                depth += 1;
            }
            let verdict = on_handler_stack(move || JsonSchema::parse(&text, &[]).map(|s| read_problems(&s, &s).len()));
            if below {
                proptest::prop_assert_eq!(verdict, Ok(0));
            } else {
                let err = verdict.err().unwrap_or_default();
                proptest::prop_assert!(is_depth_error(&err), "{}", err);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn refs_anywhere_compare_and_end(
            targets in proptest::collection::vec(0usize..6, 1..8),
            kinds in proptest::collection::vec(0u8..4, 8),
        ) {
            // Definitions whose bodies refer to one another (and to the root) at random,
            // through properties, items, combinators and bare $refs: cycles of every shape.
            let pointer = |t: usize| if t == 0 { "#".to_string() } else { format!("#/definitions/d{t}") };
            let defs: Vec<String> = (1..6)
                .map(|i| {
                    let t = pointer(targets[i % targets.len()]);
                    let body = match kinds[i % kinds.len()] {
                        0 => format!(r#"{{"type":"object","properties":{{"p":{{"$ref":"{t}"}}}}}}"#),
                        1 => format!(r#"{{"type":"array","items":{{"$ref":"{t}"}}}}"#),
                        2 => format!(r#"{{"anyOf":[{{"$ref":"{t}"}},{{"type":"string"}}]}}"#),
                        _ => format!(r#"{{"$ref":"{t}"}}"#),
                    };
                    format!(r#""d{i}":{body}"#)
                })
                .collect();
            let root = pointer(targets[0]);
            let text = format!(r#"{{"$ref":"{root}","definitions":{{{}}}}}"#, defs.join(","));
            let other = text.replace("string", "integer");
            let verdict = on_handler_stack(move || {
                let (a, b) = (JsonSchema::parse(&text, &[]), JsonSchema::parse(&other, &[]));
                match (a, b) {
                    (Ok(a), Ok(b)) => Ok((read_problems(&a, &a).len(), read_problems(&a, &b).len())),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            });
            let (same, _) = verdict.map_err(proptest::test_runner::TestCaseError::fail)?;
            proptest::prop_assert_eq!(same, 0);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
            let _ = JsonSchema::parse(&text, &[]);
        }
    }
}
