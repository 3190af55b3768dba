//! Canonical texts of recently submitted schemas. Serializers send the same schemas over and
//! over (on every start, and on every re-registration of a known schema); parsing one costs
//! far more than answering, so the text is kept keyed by exactly what parsing reads.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::{ParsedSchema, ResolvedReference, SchemaType};

/// Most text the cache holds (keys and values), in bytes; it starts over when full.
const MAX_CACHED_BYTES: usize = 16 * 1024 * 1024;

/// Everything [`ParsedSchema::parse`] and `stored_text` depend on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    schema_type: SchemaType,
    normalize: bool,
    text: String,
    references: Vec<ResolvedReference>,
}

impl Key {
    fn bytes(&self) -> usize {
        self.text.len()
            + self
                .references
                .iter()
                .map(|r| r.name.len() + r.schema.len())
                .sum::<usize>()
    }
}

#[derive(Default)]
struct Entries {
    map: HashMap<Key, String>,
    bytes: usize,
}

/// Canonical texts by submitted text and resolved references, bounded by
/// `MAX_CACHED_BYTES` (16 MiB).
#[derive(Default)]
pub struct CanonicalCache {
    entries: Mutex<Entries>,
}

impl CanonicalCache {
    /// The stored form of `text` ([`ParsedSchema::stored_text`]), parsing it only when this
    /// exact input was not seen recently. The error names the problem, for a 42201 answer.
    pub fn canonical(
        &self,
        schema_type: SchemaType,
        text: &str,
        references: &[ResolvedReference],
        normalize: bool,
    ) -> Result<String, String> {
        let key = Key {
            schema_type,
            normalize,
            text: text.to_string(),
            references: references.to_vec(),
        };
        if let Some(found) = self.entries.lock().map.get(&key) {
            return Ok(found.clone());
        }
        let canonical = ParsedSchema::parse(schema_type, text, references)?.stored_text(normalize);
        let size = key.bytes() + canonical.len();
        if size <= MAX_CACHED_BYTES / 4 {
            let mut entries = self.entries.lock();
            if entries.bytes + size > MAX_CACHED_BYTES {
                *entries = Entries::default();
            }
            entries.bytes += size;
            entries.map.insert(key, canonical.clone());
        }
        Ok(canonical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_the_cache_only_for_identical_inputs() {
        let cache = CanonicalCache::default();
        // Valid as AVRO and as JSON Schema alike.
        let avro = r#"{"type": "string"}"#;
        let first = cache.canonical(SchemaType::Avro, avro, &[], false);
        assert_eq!(cache.canonical(SchemaType::Avro, avro, &[], false), first);
        assert_eq!(cache.entries.lock().map.len(), 1);
        // Another type, normalization or set of references is another input.
        let _ = cache.canonical(SchemaType::Json, avro, &[], false);
        let _ = cache.canonical(SchemaType::Avro, avro, &[], true);
        let reference = ResolvedReference {
            name: "x".into(),
            schema: "\"string\"".into(),
        };
        let _ = cache.canonical(SchemaType::Avro, avro, &[reference], false);
        assert_eq!(cache.entries.lock().map.len(), 4);
        // Invalid schemas are errors every time, and not kept.
        assert!(cache.canonical(SchemaType::Avro, "{", &[], false).is_err());
        assert_eq!(cache.entries.lock().map.len(), 4);
    }

    #[test]
    fn the_cache_stays_within_its_byte_bound() {
        let cache = CanonicalCache::default();
        let padding = " ".repeat(512 * 1024 - 64);
        for i in 0..80 {
            let text = format!(r#"{{"type": "record", "name": "R{i}", "fields": []}}{padding}"#);
            assert!(cache.canonical(SchemaType::Avro, &text, &[], false).is_ok());
            assert!(cache.entries.lock().bytes <= MAX_CACHED_BYTES);
        }
    }
}
