//! JSON Schema: structural validation of the document and Confluent's open/closed content
//! model compatibility rules.

use serde_json::{Map, Value};

use super::limits::{self, Syntax, MAX_COMPARISONS};

/// A JSON Schema document.
#[derive(Debug, Clone)]
pub struct JsonSchema {
    root: Value,
}

const TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "integer", "string",
];

impl JsonSchema {
    /// Parses `text` and checks the keywords this registry reasons about are well-formed.
    ///
    /// The text is first held to the limits of [`limits`]: serde_json, the meta-schema
    /// validation and the walks here all recurse once per level. `$ref`s are never followed
    /// (neither here nor by the compatibility check), so self-referencing and cyclic `$ref`s
    /// cannot make either loop.
    pub fn parse(text: &str) -> Result<Self, String> {
        limits::check_text(text, Syntax::Json)
            .map_err(|e| format!("Invalid schema: the JSON schema {e}"))?;
        let root: Value = serde_json::from_str(text)
            .map_err(|e| format!("Invalid schema: the JSON schema is not valid JSON: {e}"))?;
        if root.is_object() {
            match jsonschema::meta::try_is_valid(&root) {
                Ok(true) => {}
                Ok(false) => {
                    let detail = jsonschema::meta::validate(&root)
                        .err()
                        .map(|e| format!("{e} at {}", e.instance_path))
                        .unwrap_or_default();
                    return Err(format!(
                        "Invalid schema: the JSON schema does not conform to its meta-schema: {detail}"
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "Invalid schema: cannot find the meta-schema named by $schema: {e}"
                    ))
                }
            }
        }
        validate(&root, "#")?;
        Ok(Self { root })
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

/// Why data valid against `writer` may be invalid against `reader` (Confluent's rules).
///
/// At most [`MAX_COMPARISONS`] pairs of sub-schemas are compared; schemas needing more are
/// reported as incompatible, with a problem saying so.
pub fn read_problems(writer: &JsonSchema, reader: &JsonSchema) -> Vec<String> {
    let mut out = Vec::new();
    let mut budget = Budget {
        left: MAX_COMPARISONS,
        exhausted: false,
    };
    check(&writer.root, &reader.root, "#", &mut out, &mut budget);
    if budget.exhausted {
        out.push(format!(
            "#: the schemas are too complex to compare: the check needs more than the limit of {MAX_COMPARISONS} sub-schema comparisons"
        ));
    }
    out
}

/// What is left of the comparisons one compatibility check may make.
struct Budget {
    left: usize,
    exhausted: bool,
}

impl Budget {
    /// Takes one comparison; false once none are left.
    fn take(&mut self) -> bool {
        match self.left.checked_sub(1) {
            Some(left) => {
                self.left = left;
                true
            }
            None => {
                self.exhausted = true;
                false
            }
        }
    }
}

fn types_of(v: &Map<String, Value>) -> Option<Vec<String>> {
    match v.get("type")? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

/// Whether `obj` accepts properties it does not list (open content model).
fn is_open(obj: &Map<String, Value>) -> bool {
    !matches!(obj.get("additionalProperties"), Some(Value::Bool(false)))
        && !matches!(obj.get("unevaluatedProperties"), Some(Value::Bool(false)))
}

fn required(obj: &Map<String, Value>) -> Vec<&str> {
    obj.get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn is_empty_schema(v: &Value) -> bool {
    matches!(v, Value::Bool(true)) || v.as_object().is_some_and(Map::is_empty)
}

fn num(obj: &Map<String, Value>, key: &str) -> Option<f64> {
    obj.get(key).and_then(Value::as_f64)
}

fn check(writer: &Value, reader: &Value, path: &str, out: &mut Vec<String>, budget: &mut Budget) {
    if !budget.take() || writer == reader || is_empty_schema(reader) {
        return;
    }
    let (w, r) = match (writer, reader) {
        (Value::Object(w), Value::Object(r)) => (w, r),
        (_, Value::Bool(false)) => {
            out.push(format!("{path}: the reader rejects everything"));
            return;
        }
        (Value::Bool(true), _) => {
            out.push(format!(
                "{path}: the writer accepts anything but the reader is restricted"
            ));
            return;
        }
        _ => return,
    };
    if let Some(rt) = types_of(r) {
        let wt = types_of(w).unwrap_or_else(|| TYPES.iter().map(|s| s.to_string()).collect());
        for t in &wt {
            let widened = t == "integer" && rt.iter().any(|x| x == "number");
            if !rt.contains(t) && !widened {
                out.push(format!(
                    "{path}: TYPE_CHANGED: type '{t}' of the writer is not accepted by the reader"
                ));
            }
        }
    }
    // Tightened numeric and size bounds reject data the writer allowed.
    for (key, tighter_is_larger) in [
        ("minLength", true),
        ("minimum", true),
        ("exclusiveMinimum", true),
        ("minItems", true),
        ("minProperties", true),
        ("maxLength", false),
        ("maximum", false),
        ("exclusiveMaximum", false),
        ("maxItems", false),
        ("maxProperties", false),
    ] {
        if let Some(rv) = num(r, key) {
            let tightened = match num(w, key) {
                Some(wv) if tighter_is_larger => rv > wv,
                Some(wv) => rv < wv,
                None => true,
            };
            if tightened {
                out.push(format!("{path}: {key} was added or tightened to {rv}"));
            }
        }
    }
    if let Some(re) = r.get("enum").and_then(Value::as_array) {
        match w.get("enum").and_then(Value::as_array) {
            Some(we) => {
                for v in we {
                    if !re.contains(v) {
                        out.push(format!(
                            "{path}: ENUM_ARRAY_NARROWED: value {v} was removed"
                        ));
                    }
                }
            }
            None => out.push(format!("{path}: enum was added")),
        }
    }
    let empty = Map::new();
    let wp = w
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let rp = r
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let w_open = is_open(w);
    let r_open = is_open(r);
    if w_open && !r_open {
        out.push(format!(
            "{path}: ADDITIONAL_PROPERTIES_REMOVED: the reader closed the content model"
        ));
    }
    let w_req = required(w);
    for req in required(r) {
        if !w_req.contains(&req) {
            let has_default = rp
                .get(req)
                .and_then(Value::as_object)
                .is_some_and(|p| p.contains_key("default"));
            if !has_default {
                out.push(format!(
                    "{path}: REQUIRED_PROPERTY_ADDED: property '{req}' became required"
                ));
            }
        }
    }
    for (name, rs) in rp {
        let sub = format!("{path}/properties/{name}");
        match wp.get(name) {
            Some(ws) => check(ws, rs, &sub, out, budget),
            None => {
                // Data from an open writer may carry this property with any value.
                if w_open && !is_empty_schema(rs) {
                    let wa = w.get("additionalProperties");
                    match wa {
                        Some(wa) if !matches!(wa, Value::Bool(true)) => check(wa, rs, &sub, out, budget),
                        _ => out.push(format!(
                            "{sub}: PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL: the writer allowed any value here"
                        )),
                    }
                }
            }
        }
    }
    for (name, ws) in wp {
        if !rp.contains_key(name) {
            let sub = format!("{path}/properties/{name}");
            match r.get("additionalProperties") {
                Some(Value::Bool(false)) => out.push(format!(
                    "{sub}: PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL: the reader rejects this property"
                )),
                Some(ra) if !matches!(ra, Value::Bool(true)) => check(ws, ra, &sub, out, budget),
                _ => {}
            }
        }
    }
    if let (Some(wi), Some(ri)) = (w.get("items"), r.get("items")) {
        check(wi, ri, &format!("{path}/items"), out, budget);
    } else if let (None, Some(ri)) = (w.get("items"), r.get("items")) {
        if !is_empty_schema(ri) && types_of(w).is_some_and(|t| t.iter().any(|x| x == "array")) {
            out.push(format!(
                "{path}/items: ITEMS_ADDED: the writer allowed any items"
            ));
        }
    }
    if let (Some(wa), Some(ra)) = (
        w.get("additionalProperties").filter(|v| v.is_object()),
        r.get("additionalProperties").filter(|v| v.is_object()),
    ) {
        check(wa, ra, &format!("{path}/additionalProperties"), out, budget);
    }
    for key in ["oneOf", "anyOf"] {
        if let (Some(wv), Some(rv)) = (
            w.get(key).and_then(Value::as_array),
            r.get(key).and_then(Value::as_array),
        ) {
            for (i, ws) in wv.iter().enumerate() {
                let readable = rv.iter().any(|rs| {
                    let mut tmp = Vec::new();
                    check(ws, rs, path, &mut tmp, budget);
                    tmp.is_empty()
                });
                if !readable {
                    out.push(format!("{path}/{key}/{i}: COMBINED_TYPE_SUBSCHEMAS_CHANGED: no reader alternative accepts it"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_schema_violations_are_named() {
        let err = JsonSchema::parse(r#"{"type":"object","properties":{"a":{"minLength":-1}}}"#)
            .err()
            .unwrap_or_default();
        assert!(err.contains("meta-schema"), "{err}");
        let err = JsonSchema::parse(r#"{"$schema":"http://example.invalid/none","type":"string"}"#)
            .err()
            .unwrap_or_default();
        assert!(err.contains("$schema"), "{err}");
        assert!(JsonSchema::parse(
            r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"string"}"#
        )
        .is_ok());
        assert!(JsonSchema::parse("true").is_ok());
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
        JsonSchema::parse(text).unwrap_or_else(|e| panic!("{e}: {text}"))
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
            let err = on_handler_stack(move || JsonSchema::parse(&text).err());
            let err = err.unwrap_or_default();
            assert!(is_depth_error(&err), "{err}");
        }
    }

    #[test]
    fn everything_runs_at_the_limit_on_a_handler_stack() {
        let (ok, problems) = on_handler_stack(|| {
            let text = nested_properties(MAX_NESTING_DEPTH - 1);
            let a = JsonSchema::parse(&text);
            let b = JsonSchema::parse(&text.replace("string", "integer"));
            match (a, b) {
                (Ok(a), Ok(b)) => (true, read_problems(&a, &b).len()),
                _ => (false, 0),
            }
        });
        assert_eq!((ok, problems), (true, 1));
        let err = JsonSchema::parse(&nested_properties(MAX_NESTING_DEPTH + 1))
            .err()
            .unwrap_or_default();
        assert!(is_depth_error(&err), "{err}");
    }

    #[test]
    fn self_and_cyclic_refs_are_not_followed() {
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
            let verdict = on_handler_stack(move || JsonSchema::parse(&text).map(|s| read_problems(&s, &s).len()));
            if below {
                proptest::prop_assert_eq!(verdict, Ok(0));
            } else {
                let err = verdict.err().unwrap_or_default();
                proptest::prop_assert!(is_depth_error(&err), "{}", err);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
            let _ = JsonSchema::parse(&text);
        }
    }
}
