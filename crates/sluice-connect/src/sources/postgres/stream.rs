//! Streaming: pgoutput messages become change events in commit order; each commit is a
//! position marker, and a marker acknowledged by Kafka is stored as the offset and then
//! confirmed to the slot so PostgreSQL may release the WAL before it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::pg::pgoutput::{self, LogicalMessage, Relation, TupleValue};
use crate::pg::{
    quote_ident, quote_literal, Lsn, PgConnection, ReplicationMessage, ReplicationStream,
};
use crate::plugin::TaskError;
use crate::runtime::{Acks, RecordSender, TaskContext};

use super::catalog;
use super::config::PostgresSourceConfig;
use super::event::{now_ms, now_us, Cell, Op, SourceInfo, TableSchema};
use super::snapshot::send_all;
use super::task::{pg_error, store, Capture, Position};
use super::types::TypeCatalog;
use crate::data::Datum;

/// How often acknowledged positions are stored (Connect's `offset.flush.interval.ms`).
const OFFSET_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Everything streaming needs, handed over by the task.
pub(crate) struct Streaming {
    pub(crate) ctx: TaskContext,
    pub(crate) capture: Capture,
    pub(crate) catalog_conn: PgConnection,
    pub(crate) repl: PgConnection,
    pub(crate) sender: RecordSender<Position>,
    pub(crate) acks: Acks<Position>,
    pub(crate) partition: Value,
    pub(crate) position: Position,
}

struct Txn {
    xid: u32,
    commit_us: i64,
    /// Delivered before (at or below the stored commit LSN): the server sends it again
    /// because the slot's confirmation lags the stored offset.
    skip: bool,
}

/// Streams until stopped or failed.
pub(crate) async fn run(s: Streaming) -> Result<(), TaskError> {
    let Streaming {
        mut ctx,
        capture,
        mut catalog_conn,
        repl,
        mut sender,
        mut acks,
        partition,
        position,
    } = s;
    let Capture { config, types } = &capture;
    let command = format!(
        "START_REPLICATION SLOT {} LOGICAL {} (\"proto_version\" '1', \"publication_names\" {})",
        quote_ident(&config.slot),
        position.end_lsn,
        quote_literal(&quote_ident(&config.publication))
    );
    let mut stream = repl.start_replication(&command).await.map_err(pg_error)?;
    tracing::info!(connector = %ctx.connector, slot = %config.slot, from = %position.end_lsn, "streaming changes");
    let mut relations: HashMap<u32, Option<Arc<TableSchema>>> = HashMap::new();
    let mut txn: Option<Txn> = None;
    let mut last_commit = position.lsn_commit;
    // The last marker queued, the last acknowledged, the last stored in Kafka, and the
    // position confirmed to the server.
    let mut marked = position;
    let mut acked = position;
    let mut stored = position;
    let mut confirmed = position.end_lsn;
    // A keepalive's end of WAL while nothing is in flight: safe to confirm.
    let mut idle_end: Option<Lsn> = None;
    let mut flush_tick = tokio::time::interval(OFFSET_FLUSH_INTERVAL);
    let mut status_due = Instant::now() + config.status_interval;
    let mut heartbeat_due = config.heartbeat.map(|h| Instant::now() + h);
    loop {
        tokio::select! {
            message = stream.recv() => {
                match message.map_err(pg_error)? {
                    ReplicationMessage::XLogData { start, data, .. } => {
                        let message = pgoutput::decode(data).map_err(pg_error)?;
                        match message {
                            LogicalMessage::Begin { final_lsn, commit_time, xid } => {
                                idle_end = None;
                                txn = Some(Txn {
                                    xid,
                                    commit_us: crate::pg::pg_micros_to_unix_micros(commit_time),
                                    skip: final_lsn <= position.lsn_commit && position.lsn_commit.0 != 0,
                                });
                            }
                            LogicalMessage::Commit { commit_lsn, end_lsn, commit_time } => {
                                if let Some(t) = txn.take() {
                                    if !t.skip {
                                        marked = Position {
                                            lsn_commit: commit_lsn,
                                            end_lsn,
                                            tx_id: Some(t.xid),
                                            ts_usec: crate::pg::pg_micros_to_unix_micros(commit_time),
                                            snapshot_completed: true,
                                        };
                                        sender.mark(marked).await?;
                                    }
                                }
                                last_commit = commit_lsn;
                            }
                            LogicalMessage::Relation(rel) => {
                                let schema = resolve(&rel, config, types, &mut catalog_conn).await?;
                                relations.insert(rel.id, schema);
                            }
                            LogicalMessage::Other(_) => {}
                            change => {
                                let Some(t) = txn.as_ref() else {
                                    return Err(TaskError::Fatal("a change outside a transaction".into()));
                                };
                                if t.skip {
                                    continue;
                                }
                                let source = SourceInfo {
                                    ts_us: t.commit_us,
                                    snapshot: "false",
                                    tx_id: Some(i64::from(t.xid)),
                                    lsn: i64::try_from(start.0).ok(),
                                    sequence: Some(format!("[\"{}\",\"{}\"]", last_commit.0, start.0)),
                                };
                                for (schema, op, before, after) in events(change, &relations, config)? {
                                    send_all(&mut sender, schema.event(config, op, before, after, &source)).await?;
                                }
                            }
                        }
                    }
                    ReplicationMessage::Keepalive { end, reply } => {
                        if txn.is_none() && acked == marked {
                            idle_end = Some(end);
                        }
                        if reply {
                            stream.send_status(confirmed, false).await.map_err(pg_error)?;
                        }
                    }
                }
            }
            next = acks.next() => {
                acked = next?;
                ctx.metrics.behind(&ctx.connector, (now_us() - acked.ts_usec) / 1000);
            }
            _ = flush_tick.tick() => {
                if acked != stored {
                    store(&ctx, &partition, acked).await?;
                    stored = acked;
                }
                let target = match idle_end {
                    Some(end) if acked == marked && txn.is_none() => end.max(stored.end_lsn),
                    _ => stored.end_lsn,
                };
                if target > confirmed || Instant::now() >= status_due {
                    confirmed = confirmed.max(target);
                    stream.send_status(confirmed, false).await.map_err(pg_error)?;
                }
                if Instant::now() >= status_due {
                    status_due = Instant::now() + config.status_interval;
                    if let Some(lag) = catalog::slot_lag(&mut catalog_conn, &config.slot).await.map_err(pg_error)? {
                        ctx.metrics.slot_lag(&ctx.connector, lag);
                    }
                }
                if let (Some(due), Some(every)) = (heartbeat_due, config.heartbeat) {
                    if Instant::now() >= due {
                        heartbeat(&mut sender, config).await?;
                        heartbeat_due = Some(Instant::now() + every);
                    }
                }
            }
            _ = ctx.stop.changed() => {
                return finish(&mut ctx, stream, &mut acks, marked, acked, stored, &partition).await;
            }
        }
    }
}

/// On stop: waits briefly for what is in flight, stores the last acknowledged position and
/// confirms it, so a restart repeats as little as possible.
async fn finish(
    ctx: &mut TaskContext,
    mut stream: ReplicationStream,
    acks: &mut Acks<Position>,
    marked: Position,
    mut acked: Position,
    stored: Position,
    partition: &Value,
) -> Result<(), TaskError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while acked != marked {
        match tokio::time::timeout_at(deadline, acks.next()).await {
            Ok(Ok(p)) => acked = p,
            _ => break,
        }
    }
    if acked != stored {
        store(ctx, partition, acked).await?;
    }
    let _ = stream.send_status(acked.end_lsn, false).await;
    stream.close().await;
    Ok(())
}

/// The schemas of a relation the server describes, or `None` when it is not captured.
async fn resolve(
    rel: &Relation,
    config: &PostgresSourceConfig,
    types: &TypeCatalog,
    catalog_conn: &mut PgConnection,
) -> Result<Option<Arc<TableSchema>>, TaskError> {
    if !config.captures(&rel.namespace, &rel.name) {
        return Ok(None);
    }
    let known = catalog::columns(catalog_conn, rel.id)
        .await
        .map_err(pg_error)?;
    let shape: Vec<_> = rel
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.type_oid, c.type_modifier))
        .collect();
    Ok(Some(Arc::new(catalog::table_schema(
        config,
        types,
        &rel.namespace,
        &rel.name,
        &shape,
        &known,
    ))))
}

type Event = (Arc<TableSchema>, Op, Option<Datum>, Option<Datum>);

/// The events of one change: usually one, a delete and a create when a primary key changed
/// (as Debezium does), none for tables not captured or operations skipped.
fn events(
    change: LogicalMessage,
    relations: &HashMap<u32, Option<Arc<TableSchema>>>,
    config: &PostgresSourceConfig,
) -> Result<Vec<Event>, TaskError> {
    let table = |id: u32| -> Result<Option<Arc<TableSchema>>, TaskError> {
        relations.get(&id).cloned().ok_or_else(|| {
            TaskError::Fatal(format!("change to relation {id} before its description"))
        })
    };
    let row =
        |schema: &TableSchema, values: &[TupleValue], key_only: bool| -> Result<Datum, TaskError> {
            let cells = values.iter().zip(&schema.columns).map(|(v, c)| match v {
                TupleValue::Null if key_only && !c.primary_key => Cell::Missing,
                TupleValue::Null => Cell::Null,
                TupleValue::UnchangedToast => Cell::Unavailable,
                TupleValue::Text(b) | TupleValue::Binary(b) => {
                    Cell::Text(std::str::from_utf8(b).unwrap_or(""))
                }
            });
            schema.row(cells, config).map_err(TaskError::Fatal)
        };
    let skipped = config.skipped;
    Ok(match change {
        LogicalMessage::Insert { relation, new } => match table(relation)? {
            Some(s) if !skipped.create => {
                let after = row(&s, &new, false)?;
                vec![(s, Op::Create, None, Some(after))]
            }
            _ => Vec::new(),
        },
        LogicalMessage::Update { relation, old, new } => match table(relation)? {
            Some(s) if !skipped.update => {
                let after = row(&s, &new, false)?;
                let before = old
                    .map(|(marker, values)| row(&s, &values, marker == b'K'))
                    .transpose()?;
                let key_changed = before
                    .as_ref()
                    .is_some_and(|b| key_of(&s, b) != key_of(&s, &after));
                if key_changed {
                    vec![
                        (s.clone(), Op::Delete, before, None),
                        (s, Op::Create, None, Some(after)),
                    ]
                } else {
                    vec![(s, Op::Update, before, Some(after))]
                }
            }
            _ => Vec::new(),
        },
        LogicalMessage::Delete {
            relation,
            old: (marker, values),
        } => match table(relation)? {
            Some(s) if !skipped.delete => {
                let before = row(&s, &values, marker == b'K')?;
                vec![(s, Op::Delete, Some(before), None)]
            }
            _ => Vec::new(),
        },
        LogicalMessage::Truncate { relations: ids } if !skipped.truncate => {
            let mut out = Vec::new();
            for id in ids {
                if let Some(s) = table(id)? {
                    out.push((s, Op::Truncate, None, None));
                }
            }
            out
        }
        _ => Vec::new(),
    })
}

fn key_of(schema: &TableSchema, row: &Datum) -> Vec<Datum> {
    let Datum::Struct(values) = row else {
        return Vec::new();
    };
    schema
        .columns
        .iter()
        .zip(values)
        .filter(|(c, _)| c.primary_key)
        .map(|(_, v)| v.clone())
        .collect()
}

/// A heartbeat record, as Debezium writes them to `<heartbeat.topics.prefix>.<topic.prefix>`.
async fn heartbeat(
    sender: &mut RecordSender<Position>,
    config: &PostgresSourceConfig,
) -> Result<(), TaskError> {
    let topic = format!("{}.{}", config.heartbeat_prefix, config.prefix);
    let key = json!({ "serverName": config.prefix });
    let value = json!({ "ts_ms": now_ms() });
    let key = serde_json::to_vec(&key).map_err(|e| TaskError::Fatal(e.to_string()))?;
    let value = serde_json::to_vec(&value).map_err(|e| TaskError::Fatal(e.to_string()))?;
    sender.send_bytes(&topic, Some(&key), Some(&value)).await
}
