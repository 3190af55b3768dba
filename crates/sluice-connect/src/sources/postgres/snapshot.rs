//! The initial snapshot: every captured table read through a cursor in the transaction that
//! created the replication slot (`USE_SNAPSHOT`), so the rows are exactly the state at the
//! slot's consistent point and streaming continues from there without gap or overlap.

use std::sync::Arc;

use crate::data::Datum;
use crate::pg::{Lsn, PgConnection};
use crate::runtime::{RecordSender, SourceRecord};

use super::catalog::{self, TableRef};
use super::event::{now_us, Cell, Op, SourceInfo, TableSchema};
use super::task::{pg_error, Capture, Position};
use crate::plugin::TaskError;

/// Emits every row of `tables` as a read (`op: r`) event; the last one carries
/// `snapshot: last`. Runs on `repl` inside the slot's snapshot transaction.
pub(crate) async fn run(
    capture: &Capture,
    repl: &mut PgConnection,
    catalog_conn: &mut PgConnection,
    tables: &[TableRef],
    consistent: Lsn,
    sender: &mut RecordSender<Position>,
) -> Result<u64, TaskError> {
    let Capture { config, types } = capture;
    let started = now_us();
    let source = |snapshot| SourceInfo {
        ts_us: started,
        snapshot,
        lsn: i64::try_from(consistent.0).ok(),
        ..Default::default()
    };
    // The row before the current one: the last of all is sent with `snapshot: last`.
    let mut held: Option<(Arc<TableSchema>, Datum)> = None;
    let mut rows = 0u64;
    for table in tables {
        tracing::info!(table = %table.quoted(), "snapshot of table starting");
        let known = catalog::columns(catalog_conn, table.oid)
            .await
            .map_err(pg_error)?;
        repl.query(&format!(
            "DECLARE sluice_snapshot NO SCROLL CURSOR FOR SELECT * FROM {}",
            table.quoted()
        ))
        .await
        .map_err(pg_error)?;
        let mut schema: Option<Arc<TableSchema>> = None;
        loop {
            let batch = repl
                .query_one(&format!("FETCH {} FROM sluice_snapshot", config.fetch_size))
                .await
                .map_err(pg_error)?;
            if batch.rows.is_empty() {
                break;
            }
            let schema = schema.get_or_insert_with(|| {
                let shape: Vec<_> = batch
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.type_oid, c.type_modifier))
                    .collect();
                Arc::new(catalog::table_schema(
                    config,
                    types,
                    &table.schema,
                    &table.name,
                    &shape,
                    &known,
                ))
            });
            for values in &batch.rows {
                let cells = values.iter().map(|v| match v {
                    None => Cell::Null,
                    Some(b) => Cell::Text(std::str::from_utf8(b).unwrap_or("")),
                });
                let row = schema.row(cells, config).map_err(TaskError::Fatal)?;
                if let Some((s, previous)) = held.replace((schema.clone(), row)) {
                    send_all(
                        sender,
                        s.event(config, Op::Read, None, Some(previous), &source("true")),
                    )
                    .await?;
                }
                rows += 1;
            }
        }
        repl.query("CLOSE sluice_snapshot")
            .await
            .map_err(pg_error)?;
    }
    if let Some((s, last)) = held {
        send_all(
            sender,
            s.event(config, Op::Read, None, Some(last), &source("last")),
        )
        .await?;
    }
    tracing::info!(rows, tables = tables.len(), "snapshot done");
    Ok(rows)
}

/// Queues `records` in order.
pub(crate) async fn send_all(
    sender: &mut RecordSender<Position>,
    records: Vec<SourceRecord>,
) -> Result<(), TaskError> {
    for record in records {
        sender.send(record).await?;
    }
    Ok(())
}
