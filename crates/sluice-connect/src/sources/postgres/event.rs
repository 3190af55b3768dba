//! Debezium-compatible change events: per table a key schema (the primary key), a value
//! schema (the row) and the envelope (`before`, `after`, `source`, `op`, `ts_ms`,
//! `transaction`), written with the JSON converter.

use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use crate::convert::Prepared;
use crate::data::{Datum, Field, Schema, SchemaType};
use crate::runtime::SourceRecord;

use super::config::PostgresSourceConfig;
use super::types::Kind;

/// One column as the events describe it.
#[derive(Debug, Clone)]
pub(crate) struct ColumnInfo {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) optional: bool,
    pub(crate) primary_key: bool,
}

/// A cell of a row as it arrived.
pub(crate) enum Cell<'a> {
    Null,
    /// An unchanged TOASTed value that was not sent.
    Unavailable,
    /// Absent from a key-only old tuple.
    Missing,
    Text(&'a str),
}

/// The operation of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Read,
    Create,
    Update,
    Delete,
    Truncate,
}

impl Op {
    fn code(self) -> &'static str {
        match self {
            Op::Read => "r",
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Truncate => "t",
        }
    }
}

/// Where an event came from (the `source` block).
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceInfo {
    /// Commit (or snapshot) time, µs since the epoch.
    pub(crate) ts_us: i64,
    /// `true`, `last` or `false`.
    pub(crate) snapshot: &'static str,
    pub(crate) tx_id: Option<i64>,
    pub(crate) lsn: Option<i64>,
    /// `["<last commit LSN>","<this LSN>"]`.
    pub(crate) sequence: Option<String>,
}

/// A captured table's schemas.
#[derive(Debug, Clone)]
pub(crate) struct TableSchema {
    pub(crate) schema: String,
    pub(crate) table: String,
    pub(crate) topic: String,
    pub(crate) columns: Vec<ColumnInfo>,
    key_schema: Option<Arc<Prepared>>,
    value_schema: Schema,
    envelope_schema: Arc<Prepared>,
    key_columns: Vec<usize>,
}

impl TableSchema {
    pub(crate) fn new(
        config: &PostgresSourceConfig,
        schema: &str,
        table: &str,
        columns: Vec<ColumnInfo>,
    ) -> Self {
        let topic = config.topic(schema, table);
        let base = format!("{}.{schema}.{table}", config.prefix);
        let key_columns: Vec<usize> = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.primary_key)
            .map(|(i, _)| i)
            .collect();
        let field = |c: &ColumnInfo, optional: bool| Field {
            name: c.name.clone(),
            schema: c.kind.schema(optional, config.decimals),
        };
        let key_schema = (!key_columns.is_empty()).then(|| {
            Prepared::new(Schema::structure(
                &format!("{base}.Key"),
                false,
                key_columns
                    .iter()
                    .map(|&i| field(&columns[i], false))
                    .collect(),
            ))
        });
        let value_schema = Schema::structure(
            &format!("{base}.Value"),
            true,
            columns.iter().map(|c| field(c, c.optional)).collect(),
        );
        let envelope_schema = Prepared::new(Schema::structure(
            &format!("{base}.Envelope"),
            false,
            vec![
                Field {
                    name: "before".into(),
                    schema: value_schema.clone(),
                },
                Field {
                    name: "after".into(),
                    schema: value_schema.clone(),
                },
                Field {
                    name: "source".into(),
                    schema: source_schema(),
                },
                Field {
                    name: "op".into(),
                    schema: Schema::primitive(SchemaType::String, false),
                },
                Field {
                    name: "ts_ms".into(),
                    schema: Schema::primitive(SchemaType::Int64, true),
                },
                Field {
                    name: "transaction".into(),
                    schema: transaction_schema(),
                },
            ],
        ));
        Self {
            schema: schema.to_owned(),
            table: table.to_owned(),
            topic,
            columns,
            key_schema,
            value_schema,
            envelope_schema,
            key_columns,
        }
    }

    /// Converts a row of cells in column order.
    pub(crate) fn row<'a>(
        &self,
        cells: impl IntoIterator<Item = Cell<'a>>,
        config: &PostgresSourceConfig,
    ) -> Result<Datum, String> {
        let mut values = Vec::with_capacity(self.columns.len());
        let mut cells = cells.into_iter();
        for (c, field) in self.columns.iter().zip(&self.value_schema.fields) {
            let cell = cells.next().unwrap_or(Cell::Missing);
            values.push(match cell {
                Cell::Null => Datum::Null,
                Cell::Missing => field.schema.zero(),
                Cell::Unavailable => c.kind.unavailable(&field.schema),
                Cell::Text(t) => c
                    .kind
                    .parse(t, config.decimals)
                    .map_err(|e| format!("{}.{}.{}: {e}", self.schema, self.table, c.name))?,
            });
        }
        Ok(Datum::Struct(values))
    }

    fn key_of(&self, row: &Datum) -> Option<Datum> {
        let Datum::Struct(values) = row else {
            return None;
        };
        self.key_schema.as_ref()?;
        Some(Datum::Struct(
            self.key_columns
                .iter()
                .map(|&i| values.get(i).cloned().unwrap_or(Datum::Null))
                .collect(),
        ))
    }

    /// The change event (and, after a delete, its tombstone).
    pub(crate) fn event(
        &self,
        config: &PostgresSourceConfig,
        op: Op,
        before: Option<Datum>,
        after: Option<Datum>,
        source: &SourceInfo,
    ) -> Vec<SourceRecord> {
        let key = match op {
            Op::Truncate => None,
            _ => after
                .as_ref()
                .or(before.as_ref())
                .and_then(|row| self.key_of(row)),
        };
        let key = match (key, &self.key_schema) {
            (Some(k), Some(s)) => Some((s.clone(), k)),
            _ => None,
        };
        let now = now_ms();
        let envelope = Datum::Struct(vec![
            before.unwrap_or(Datum::Null),
            after.unwrap_or(Datum::Null),
            self.source_datum(config, source),
            Datum::String(op.code().to_owned()),
            Datum::Int(now),
            Datum::Null,
        ]);
        let timestamp_ms = Some(source.ts_us.div_euclid(1000));
        let mut out = vec![SourceRecord {
            topic: self.topic.clone(),
            key: key.clone(),
            value: Some((self.envelope_schema.clone(), envelope)),
            timestamp_ms,
            headers: Vec::new(),
        }];
        if op == Op::Delete && config.tombstones && key.is_some() {
            out.push(SourceRecord {
                topic: self.topic.clone(),
                key,
                value: None,
                timestamp_ms,
                headers: Vec::new(),
            });
        }
        out
    }

    fn source_datum(&self, config: &PostgresSourceConfig, s: &SourceInfo) -> Datum {
        let opt_int = |v: Option<i64>| v.map_or(Datum::Null, Datum::Int);
        Datum::Struct(vec![
            Datum::String(concat!(env!("CARGO_PKG_VERSION"), "-sluice").to_owned()),
            Datum::String("postgresql".to_owned()),
            Datum::String(config.prefix.clone()),
            Datum::Int(s.ts_us.div_euclid(1000)),
            Datum::String(s.snapshot.to_owned()),
            Datum::String(config.pg.dbname.clone()),
            s.sequence.clone().map_or(Datum::Null, Datum::String),
            Datum::Int(s.ts_us),
            Datum::String(self.schema.clone()),
            Datum::String(self.table.clone()),
            opt_int(s.tx_id),
            opt_int(s.lsn),
            Datum::Null,
        ])
    }
}

/// Debezium's `io.debezium.connector.postgresql.Source` schema.
fn source_schema() -> Schema {
    use SchemaType::*;
    let f = |name: &str, schema: Schema| Field {
        name: name.into(),
        schema,
    };
    Schema::structure(
        "io.debezium.connector.postgresql.Source",
        false,
        vec![
            f("version", Schema::primitive(String, false)),
            f("connector", Schema::primitive(String, false)),
            f("name", Schema::primitive(String, false)),
            f("ts_ms", Schema::primitive(Int64, false)),
            f(
                "snapshot",
                Schema::named(String, true, "io.debezium.data.Enum", Some(1))
                    .with_parameter("allowed", "true,last,false,incremental"),
            ),
            f("db", Schema::primitive(String, false)),
            f("sequence", Schema::primitive(String, true)),
            f("ts_us", Schema::primitive(Int64, true)),
            f("schema", Schema::primitive(String, false)),
            f("table", Schema::primitive(String, false)),
            f("txId", Schema::primitive(Int64, true)),
            f("lsn", Schema::primitive(Int64, true)),
            f("xmin", Schema::primitive(Int64, true)),
        ],
    )
}

fn transaction_schema() -> Schema {
    use SchemaType::*;
    let f = |name: &str, schema: Schema| Field {
        name: name.into(),
        schema,
    };
    let mut s = Schema::structure(
        "event.block",
        true,
        vec![
            f("id", Schema::primitive(String, false)),
            f("total_order", Schema::primitive(Int64, false)),
            f("data_collection_order", Schema::primitive(Int64, false)),
        ],
    );
    s.version = Some(1);
    s
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    now_us() / 1000
}

/// Microseconds since the epoch, now.
pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{Problems, TaskError};
    use serde_json::Value;
    use std::collections::BTreeMap;

    fn futures_lite_block<F: std::future::Future<Output = Result<T, TaskError>>, T>(f: F) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
            .unwrap()
    }

    fn config() -> PostgresSourceConfig {
        let props: BTreeMap<String, String> = [
            ("database.hostname", "h"),
            ("database.user", "u"),
            ("database.dbname", "app"),
            ("topic.prefix", "shop"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        PostgresSourceConfig::parse(&props, &mut Problems::default()).unwrap()
    }

    #[test]
    fn delete_under_default_identity() {
        let config = config();
        let table = TableSchema::new(
            &config,
            "public",
            "orders",
            vec![
                ColumnInfo {
                    name: "id".into(),
                    kind: Kind::Int32,
                    optional: false,
                    primary_key: true,
                },
                ColumnInfo {
                    name: "note".into(),
                    kind: Kind::Text(None),
                    optional: false,
                    primary_key: false,
                },
            ],
        );
        let before = table
            .row([Cell::Text("7"), Cell::Missing], &config)
            .unwrap();
        let records = table.event(
            &config,
            Op::Delete,
            Some(before),
            None,
            &SourceInfo {
                snapshot: "false",
                ..Default::default()
            },
        );
        assert_eq!(records.len(), 2, "event and tombstone");
        assert_eq!(records[0].topic, "shop.public.orders");
        let converters = crate::convert::Converters::new(
            &config.pipeline.key_converter,
            &config.pipeline.value_converter,
        )
        .unwrap();
        let encode = |part: &Option<crate::runtime::record::Part>, is_key: bool| {
            let (schema, datum) = part.as_ref().unwrap();
            let converter = if is_key {
                &converters.key
            } else {
                &converters.value
            };
            futures_lite_block(converter.encode(&records[0].topic, is_key, schema, datum))
        };
        let (key, value) = (
            encode(&records[0].key, true),
            encode(&records[0].value, false),
        );
        let key: Value = serde_json::from_slice(&key.unwrap()).unwrap();
        assert_eq!(key["payload"], serde_json::json!({"id": 7}));
        let value: Value = serde_json::from_slice(&value.unwrap()).unwrap();
        assert_eq!(value["payload"]["op"], "d");
        assert_eq!(
            value["payload"]["before"],
            serde_json::json!({"id": 7, "note": ""})
        );
        assert_eq!(value["payload"]["after"], Value::Null);
        assert_eq!(value["payload"]["source"]["table"], "orders");
        assert_eq!(value["schema"]["name"], "shop.public.orders.Envelope");
        assert!(records[1].value.is_none());
    }
}
