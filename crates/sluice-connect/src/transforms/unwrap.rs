//! Debezium's `ExtractNewRecordState`: a change event's value becomes the row's new state
//! (the envelope's `after`), so consumers that want rows rather than changes (sinks, JDBC
//! tables) read them directly. Deletes are dropped, passed on as tombstones or rewritten to
//! the old row with `__deleted=true`; fields of the envelope and its `source` block can be
//! added to the row (`add.fields`) or as headers (`add.headers`).

use std::collections::HashMap;
use std::sync::Arc;

use super::settings::Settings;
use super::Transform;
use crate::convert::Prepared;
use crate::data::{Datum, Field, Schema, SchemaType};
use crate::plugin::Problems;
use crate::runtime::SourceRecord;

pub(super) const CLASS: &str = "io.debezium.transforms.ExtractNewRecordState";

/// Output shapes remembered at most; schemas change rarely, so this is only a bound.
const MAX_SHAPES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeleteHandling {
    /// Deletes are not passed on.
    Drop,
    /// Deletes become records with a null value.
    None,
    /// Deletes carry the old row with `__deleted` = `true`.
    Rewrite,
}

pub(super) struct ExtractNewRecordState {
    drop_tombstones: bool,
    deletes: DeleteHandling,
    /// Envelope paths such as `op` or `source.ts_ms`.
    add_fields: Vec<String>,
    add_headers: Vec<String>,
    fields_prefix: String,
    headers_prefix: String,
    /// Per envelope schema (by address, kept alive here so the address stays unique).
    shapes: HashMap<usize, (Arc<Prepared>, Arc<Shape>)>,
}

/// Where things are in one envelope schema, and the output schemas.
struct Shape {
    before: usize,
    after: usize,
    op: usize,
    /// Paths of `add.fields`, in order.
    fields: Vec<Vec<usize>>,
    /// Paths and names of `add.headers`.
    headers: Vec<(Vec<usize>, String)>,
    /// For created, updated and read rows.
    row: Arc<Prepared>,
}

impl ExtractNewRecordState {
    pub(super) fn parse(settings: &Settings<'_>, problems: &mut Problems) -> Option<Self> {
        let deletes = match settings.choice(
            "delete.handling.mode",
            &["drop", "none", "rewrite"],
            problems,
        ) {
            "none" => DeleteHandling::None,
            "rewrite" => DeleteHandling::Rewrite,
            _ => DeleteHandling::Drop,
        };
        Some(Self {
            drop_tombstones: settings.boolean("drop.tombstones", true, problems),
            deletes,
            add_fields: settings.list("add.fields"),
            add_headers: settings.list("add.headers"),
            fields_prefix: settings
                .get("add.fields.prefix")
                .unwrap_or_else(|| "__".into()),
            headers_prefix: settings
                .get("add.headers.prefix")
                .unwrap_or_else(|| "__".into()),
            shapes: HashMap::new(),
        })
    }

    fn shape(&mut self, envelope: &Arc<Prepared>) -> Result<Option<Arc<Shape>>, String> {
        let address = Arc::as_ptr(envelope) as usize;
        if let Some((_, shape)) = self.shapes.get(&address) {
            return Ok(Some(shape.clone()));
        }
        let schema = &envelope.schema;
        let index = |name: &str| schema.fields.iter().position(|f| f.name == name);
        let (Some(before), Some(after), Some(op)) = (index("before"), index("after"), index("op"))
        else {
            // Not a change event (a heartbeat, a schema change): passed on as it is.
            return Ok(None);
        };
        let Some(row_schema) = schema.fields.get(after).map(|f| &f.schema) else {
            return Ok(None);
        };
        let resolve = |path: &str| -> Result<(Vec<usize>, Schema), String> {
            let mut at = schema;
            let mut indexes = Vec::new();
            // A bare name that is not an envelope field is one of the source block's, as in
            // Debezium's `add.fields=table,lsn`.
            let qualified;
            let path = if !path.contains('.') && index(path).is_none() {
                qualified = format!("source.{path}");
                qualified.as_str()
            } else {
                path
            };
            for part in path.split('.') {
                let i = at
                    .fields
                    .iter()
                    .position(|f| f.name == part)
                    .ok_or_else(|| format!("the change event has no field {path}"))?;
                indexes.push(i);
                at = &at.fields[i].schema;
            }
            Ok((
                indexes,
                Schema {
                    optional: true,
                    ..at.clone()
                },
            ))
        };
        let flat = |path: &str| path.replace('.', "_");
        let mut fields = Vec::new();
        let mut out_fields = row_schema.fields.clone();
        for path in &self.add_fields {
            let (indexes, field_schema) = resolve(path)?;
            fields.push(indexes);
            out_fields.push(Field {
                name: format!("{}{}", self.fields_prefix, flat(path)),
                schema: field_schema,
            });
        }
        if self.deletes == DeleteHandling::Rewrite {
            out_fields.push(Field {
                name: format!("{}deleted", self.fields_prefix),
                schema: Schema::primitive(SchemaType::String, true),
            });
        }
        let mut headers = Vec::new();
        for path in &self.add_headers {
            let (indexes, _) = resolve(path)?;
            headers.push((indexes, format!("{}{}", self.headers_prefix, flat(path))));
        }
        let row = Prepared::new(Schema {
            fields: out_fields,
            ..row_schema.clone()
        });
        let shape = Arc::new(Shape {
            before,
            after,
            op,
            fields,
            headers,
            row,
        });
        if self.shapes.len() >= MAX_SHAPES {
            self.shapes.clear();
        }
        self.shapes
            .insert(address, (envelope.clone(), shape.clone()));
        Ok(Some(shape))
    }
}

fn pick<'a>(mut datum: &'a Datum, path: &[usize]) -> &'a Datum {
    for &i in path {
        match datum {
            Datum::Struct(values) => match values.get(i) {
                Some(d) => datum = d,
                None => return &Datum::Null,
            },
            _ => return &Datum::Null,
        }
    }
    datum
}

/// A header's text, as SimpleHeaderConverter writes primitives.
fn header_text(datum: &Datum) -> Option<Vec<u8>> {
    Some(
        match datum {
            Datum::Null => return None,
            Datum::Bool(b) => b.to_string(),
            Datum::Int(i) => i.to_string(),
            Datum::Float(f) => f.to_string(),
            Datum::String(s) => s.clone(),
            Datum::Bytes(b) => return Some(b.clone()),
            Datum::Array(_) | Datum::Struct(_) => return None,
        }
        .into_bytes(),
    )
}

impl Transform for ExtractNewRecordState {
    fn apply(&mut self, mut record: SourceRecord) -> Result<Option<SourceRecord>, String> {
        let Some((envelope_schema, envelope)) = record.value.take() else {
            return Ok((!self.drop_tombstones).then_some(record));
        };
        let Some(shape) = self.shape(&envelope_schema)? else {
            record.value = Some((envelope_schema, envelope));
            return Ok(Some(record));
        };
        let Datum::Struct(parts) = &envelope else {
            return Err("the change event's value is not a struct".into());
        };
        let op = match parts.get(shape.op) {
            Some(Datum::String(op)) => op.as_str(),
            _ => return Err("the change event has no op".into()),
        };
        let deleted = match op {
            "d" => true,
            // A truncate has no row state.
            "t" => return Ok(None),
            _ => false,
        };
        if deleted && self.deletes == DeleteHandling::Drop {
            return Ok(None);
        }
        for (path, name) in &shape.headers {
            if let Some(text) = header_text(pick(&envelope, path)) {
                record.headers.push((name.clone(), text));
            }
        }
        if deleted && self.deletes == DeleteHandling::None {
            record.value = None;
            return Ok(Some(record));
        }
        let row = parts.get(if deleted { shape.before } else { shape.after });
        let mut values = match row {
            Some(Datum::Struct(values)) => values.clone(),
            _ => return Err(format!("the change event (op {op}) has no row")),
        };
        for path in &shape.fields {
            values.push(pick(&envelope, path).clone());
        }
        if self.deletes == DeleteHandling::Rewrite {
            values.push(Datum::String(deleted.to_string()));
        }
        record.value = Some((shape.row.clone(), Datum::Struct(values)));
        Ok(Some(record))
    }
}
