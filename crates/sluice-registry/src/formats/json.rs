//! JSON Schema: structural validation of the document and Confluent's open/closed content
//! model compatibility rules.

use serde_json::{Map, Value};

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
    pub fn parse(text: &str) -> Result<Self, String> {
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
pub fn read_problems(writer: &JsonSchema, reader: &JsonSchema) -> Vec<String> {
    let mut out = Vec::new();
    check(&writer.root, &reader.root, "#", &mut out);
    out
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

fn check(writer: &Value, reader: &Value, path: &str, out: &mut Vec<String>) {
    if writer == reader || is_empty_schema(reader) {
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
            Some(ws) => check(ws, rs, &sub, out),
            None => {
                // Data from an open writer may carry this property with any value.
                if w_open && !is_empty_schema(rs) {
                    let wa = w.get("additionalProperties");
                    match wa {
                        Some(wa) if !matches!(wa, Value::Bool(true)) => check(wa, rs, &sub, out),
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
                Some(ra) if !matches!(ra, Value::Bool(true)) => check(ws, ra, &sub, out),
                _ => {}
            }
        }
    }
    if let (Some(wi), Some(ri)) = (w.get("items"), r.get("items")) {
        check(wi, ri, &format!("{path}/items"), out);
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
        check(wa, ra, &format!("{path}/additionalProperties"), out);
    }
    for key in ["oneOf", "anyOf"] {
        if let (Some(wv), Some(rv)) = (
            w.get(key).and_then(Value::as_array),
            r.get(key).and_then(Value::as_array),
        ) {
            for (i, ws) in wv.iter().enumerate() {
                let readable = rv.iter().any(|rs| {
                    let mut tmp = Vec::new();
                    check(ws, rs, path, &mut tmp);
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

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
            let _ = JsonSchema::parse(&text);
        }
    }
}
