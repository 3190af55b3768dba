//! `$ref` resolution for the compatibility check: JSON pointers into the same document
//! (`#/definitions/a`, `#/$defs/a`, `#`) and into referenced documents by their reference name
//! (`other.json`, `other.json#/$defs/a`).

use std::collections::HashMap;

use serde_json::Value;

/// Most `$ref`s followed in a row to reach one schema: a chain longer than this is a cycle of
/// references to references (`a` → `b` → `a`), which names no schema at all.
const MAX_REF_HOPS: usize = 32;

/// A sub-schema and the document it sits in (what a `#...` reference inside it is relative to).
#[derive(Debug, Clone, Copy)]
pub(super) struct Node<'a> {
    /// The sub-schema.
    pub(super) value: &'a Value,
    /// The root of the document holding it.
    pub(super) doc: &'a Value,
}

impl<'a> Node<'a> {
    /// The root of a document.
    pub(super) fn root(doc: &'a Value) -> Self {
        Self { value: doc, doc }
    }

    /// A sub-schema in the same document.
    pub(super) fn child(&self, value: &'a Value) -> Self {
        Self {
            value,
            doc: self.doc,
        }
    }
}

/// What a `$ref` could not be resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unresolved(pub(super) String);

/// Follows `node`'s `$ref` (and the target's, up to [`MAX_REF_HOPS`]) to the schema it names.
/// A node without `$ref` is returned as it is; keywords beside a `$ref` are ignored, as draft-07
/// specifies.
pub(super) fn deref<'a>(
    node: Node<'a>,
    documents: &'a HashMap<String, Value>,
) -> Result<Node<'a>, Unresolved> {
    let mut current = node;
    for _ in 0..MAX_REF_HOPS {
        let Some(reference) = current.value.get("$ref").and_then(Value::as_str) else {
            return Ok(current);
        };
        current = resolve(reference, current.doc, documents)
            .ok_or_else(|| Unresolved(reference.to_string()))?;
    }
    Err(Unresolved(format!(
        "a chain of more than {MAX_REF_HOPS} $refs"
    )))
}

fn resolve<'a>(
    reference: &str,
    doc: &'a Value,
    documents: &'a HashMap<String, Value>,
) -> Option<Node<'a>> {
    let (base, fragment) = reference.split_once('#').unwrap_or((reference, ""));
    let target = if base.is_empty() {
        doc
    } else {
        documents.get(base).or_else(|| {
            // A referenced document may also be named by its own `$id`.
            documents
                .values()
                .find(|d| d.get("$id").and_then(Value::as_str) == Some(base))
        })?
    };
    let value = if fragment.is_empty() {
        target
    } else {
        let pointer = percent_decode(fragment)?;
        target.pointer(&pointer).or_else(|| {
            // Like Confluent, `#/$defs/x` also finds a top-level `definitions` entry (draft-07
            // documents keep them there; 2019-09 renamed the keyword).
            let name = pointer.strip_prefix("/$defs/")?;
            target.get("definitions")?.pointer(&format!("/{name}"))
        })?
    };
    Some(Node { value, doc: target })
}

/// Decodes `%XX` escapes, which a URI fragment may use for characters of a JSON pointer.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_resolve_within_and_across_documents() {
        let doc = json!({
            "definitions": {"a": {"type": "string"}, "b": {"$ref": "#/definitions/a"}},
            "$defs": {"a b": {"type": "integer"}, "loop": {"$ref": "#/$defs/loop"}},
        });
        let other = json!({"$id": "urn:other", "$defs": {"x": {"type": "boolean"}}});
        let documents = HashMap::from([("other.json".to_string(), other)]);
        let at = |r: &str| {
            let node = json!({"$ref": r});
            deref(
                Node {
                    value: &node,
                    doc: &doc,
                },
                &documents,
            )
            .map(|n| n.value.clone())
        };
        assert_eq!(at("#/definitions/b"), Ok(json!({"type": "string"})));
        assert_eq!(at("#/$defs/a%20b"), Ok(json!({"type": "integer"})));
        assert_eq!(at("#/$defs/b"), Ok(json!({"type": "string"})));
        assert!(at("#/definitions/loop").is_err());
        assert_eq!(at("other.json#/$defs/x"), Ok(json!({"type": "boolean"})));
        assert_eq!(at("urn:other#/$defs/x"), Ok(json!({"type": "boolean"})));
        assert!(at("#/$defs/loop").is_err());
        assert!(at("#/nowhere").is_err());
        assert!(at("missing.json").is_err());
        assert!(at("#/$defs/%zz").is_err());
    }
}
