//! `MaskField$Key` / `MaskField$Value`: the listed fields get their type's empty value (0,
//! "", false, an empty array) or a replacement, so personal data never reaches the topic.
//! With `field.syntax.version=V2` (KIP-821) a dotted name reaches into nested structs, e.g.
//! `after.email` in a Debezium envelope.

use super::settings::Settings;
use super::Transform;
use crate::data::{Datum, Schema, SchemaType};
use crate::plugin::Problems;
use crate::runtime::SourceRecord;

pub(super) const KEY_CLASS: &str = "org.apache.kafka.connect.transforms.MaskField$Key";
pub(super) const VALUE_CLASS: &str = "org.apache.kafka.connect.transforms.MaskField$Value";

/// Connect's logical decimal, carried as two's-complement bytes.
const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";

pub(super) struct MaskField {
    key: bool,
    /// Field paths (one segment each under the V1 syntax).
    paths: Vec<Vec<String>>,
    replacement: Option<String>,
}

impl MaskField {
    pub(super) fn parse(
        settings: &Settings<'_>,
        key: bool,
        problems: &mut Problems,
    ) -> Option<Self> {
        let nested = settings.choice("field.syntax.version", &["V1", "V2"], problems) == "V2";
        let fields = settings.list("fields");
        if fields.is_empty() {
            problems.add(
                &settings.key("fields"),
                "Missing required configuration: the fields to mask".into(),
            );
            return None;
        }
        let paths = fields
            .into_iter()
            .map(|f| {
                if nested {
                    f.split('.').map(str::to_owned).collect()
                } else {
                    vec![f]
                }
            })
            .collect();
        Some(Self {
            key,
            paths,
            replacement: settings.get("replacement").filter(|r| !r.is_empty()),
        })
    }
}

impl Transform for MaskField {
    fn apply(&mut self, mut record: SourceRecord) -> Result<Option<SourceRecord>, String> {
        let side = if self.key {
            &mut record.key
        } else {
            &mut record.value
        };
        if let Some((schema, datum)) = side {
            for path in &self.paths {
                mask_path(&schema.schema, datum, path, self.replacement.as_deref())?;
            }
        }
        Ok(Some(record))
    }
}

fn mask_path(
    schema: &Schema,
    datum: &mut Datum,
    path: &[String],
    replacement: Option<&str>,
) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(());
    };
    let Datum::Struct(values) = datum else {
        // A null struct has nothing to mask.
        return Ok(());
    };
    // Names that are not in the schema are skipped, as Kafka's MaskField does.
    let Some(i) = schema.fields.iter().position(|f| &f.name == first) else {
        return Ok(());
    };
    let (Some(field), Some(value)) = (schema.fields.get(i), values.get_mut(i)) else {
        return Ok(());
    };
    if rest.is_empty() {
        if *value != Datum::Null {
            *value = masked(&field.schema, replacement)
                .map_err(|e| format!("cannot mask {}: {e}", path.join(".")))?;
        }
        Ok(())
    } else {
        mask_path(&field.schema, value, rest, replacement)
    }
}

fn masked(schema: &Schema, replacement: Option<&str>) -> Result<Datum, String> {
    let decimal = schema.name.as_deref() == Some(DECIMAL);
    let Some(r) = replacement else {
        return match schema.kind {
            SchemaType::Struct => Err("a struct cannot be masked".into()),
            // Zero as a decimal's unscaled two's-complement value.
            SchemaType::Bytes if decimal => Ok(Datum::Bytes(vec![0])),
            _ => Ok(Schema {
                optional: false,
                ..schema.clone()
            }
            .zero()),
        };
    };
    let bad = || format!("{r:?} is not a valid {}", schema.kind.name());
    match schema.kind {
        SchemaType::String => Ok(Datum::String(r.to_owned())),
        SchemaType::Int16 => r
            .parse::<i16>()
            .map(|i| Datum::Int(i.into()))
            .map_err(|_| bad()),
        SchemaType::Int32 => r
            .parse::<i32>()
            .map(|i| Datum::Int(i.into()))
            .map_err(|_| bad()),
        SchemaType::Int64 => r.parse().map(Datum::Int).map_err(|_| bad()),
        SchemaType::Float32 | SchemaType::Float64 => r.parse().map(Datum::Float).map_err(|_| bad()),
        other => Err(format!(
            "a replacement can only stand in for numbers and strings, not {}",
            other.name()
        )),
    }
}
