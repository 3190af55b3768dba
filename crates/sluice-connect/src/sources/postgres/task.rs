//! One capture task: decide on a snapshot from the stored offset and the slot, take it, then
//! stream.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{json, Value};

use crate::pg::{quote_ident, Lsn, PgConnection, PgError};
use crate::plugin::{Problems, TaskError};
use crate::runtime::{self, TaskContext, TopicCreation};

use super::catalog;
use super::config::{PostgresSourceConfig, SnapshotMode};
use super::types::TypeCatalog;

/// How far the connector has durably delivered: the offset stored in Kafka.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Position {
    /// Commit LSN of the last delivered transaction (transactions at or before it are
    /// skipped when the server sends them again).
    pub(crate) lsn_commit: Lsn,
    /// Where streaming resumes: the end of that commit (or the snapshot's consistent point).
    pub(crate) end_lsn: Lsn,
    /// Its transaction id.
    pub(crate) tx_id: Option<u32>,
    /// Its commit time, µs since the epoch.
    pub(crate) ts_usec: i64,
    /// Whether the initial snapshot finished.
    pub(crate) snapshot_completed: bool,
}

impl Position {
    pub(crate) fn to_json(self) -> Value {
        json!({
            "lsn": self.end_lsn.0,
            "lsn_commit": self.lsn_commit.0,
            "txId": self.tx_id,
            "ts_usec": self.ts_usec,
            "snapshot_completed": self.snapshot_completed,
        })
    }

    fn from_json(v: &Value) -> Option<Self> {
        let end = v.get("lsn")?.as_u64()?;
        Some(Self {
            end_lsn: Lsn(end),
            lsn_commit: Lsn(v.get("lsn_commit").and_then(Value::as_u64).unwrap_or(end)),
            tx_id: v
                .get("txId")
                .and_then(Value::as_u64)
                .and_then(|x| u32::try_from(x).ok()),
            ts_usec: v.get("ts_usec").and_then(Value::as_i64).unwrap_or(0),
            snapshot_completed: v
                .get("snapshot_completed")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        })
    }
}

/// What snapshot and streaming share: the settings and the catalog's types.
pub(crate) struct Capture {
    pub(crate) config: PostgresSourceConfig,
    pub(crate) types: TypeCatalog,
}

/// Stores `position` as the connector's offset; returns once Kafka acknowledged it.
pub(crate) async fn store(
    ctx: &TaskContext,
    partition: &Value,
    position: Position,
) -> Result<(), TaskError> {
    let started = Instant::now();
    ctx.offsets
        .write(&ctx.connector, partition, &position.to_json())
        .await
        .map_err(|e| TaskError::Retriable(e.to_string()))?;
    ctx.metrics
        .offset_committed(&ctx.connector, started.elapsed());
    Ok(())
}

/// Classifies a PostgreSQL failure: configuration and permission problems are fatal, lost
/// connections and busy slots pass.
pub(crate) fn pg_error(e: PgError) -> TaskError {
    let fatal = match &e {
        PgError::Auth(_) | PgError::Protocol(_) | PgError::Tls(_) => true,
        PgError::Io(_) => false,
        // 28: invalid authorization; 42: syntax error or access rule violation;
        // 3D000: no such database.
        PgError::Server(s) => {
            s.code.starts_with("28") || s.code.starts_with("42") || s.code == "3D000"
        }
    };
    if fatal {
        TaskError::Fatal(e.to_string())
    } else {
        TaskError::Retriable(e.to_string())
    }
}

/// Runs the capture until stopped or failed.
pub(crate) async fn run(
    mut ctx: TaskContext,
    props: BTreeMap<String, String>,
) -> Result<(), TaskError> {
    let mut problems = Problems::default();
    let config = PostgresSourceConfig::parse(&props, &mut problems)
        .ok_or_else(|| TaskError::Fatal(problems.summary()))?;
    let partition = json!({ "server": config.prefix });
    let stored = ctx
        .offsets
        .read(&ctx.connector, &partition)
        .await
        .map_err(|e| TaskError::Retriable(e.to_string()))?
        .as_ref()
        .and_then(Position::from_json);
    let mut catalog_conn = PgConnection::connect(&config.pg, false)
        .await
        .map_err(pg_error)?;
    let types = catalog::types(&mut catalog_conn).await.map_err(pg_error)?;
    let tables = catalog::tables(&mut catalog_conn, &config)
        .await
        .map_err(pg_error)?;
    catalog::ensure_publication(&mut catalog_conn, &config, &tables)
        .await
        .map_err(pg_error)?;
    let slot = catalog::slot(&mut catalog_conn, &config.slot)
        .await
        .map_err(pg_error)?;
    if let Some(s) = &slot {
        if s.plugin != "pgoutput" || s.database != config.pg.dbname {
            return Err(TaskError::Fatal(format!(
                "replication slot {} belongs to plugin {} in database {}; this connector needs pgoutput in {}",
                config.slot, s.plugin, s.database, config.pg.dbname
            )));
        }
    }
    let completed = stored.is_some_and(|p| p.snapshot_completed);
    let snapshot = match config.snapshot {
        SnapshotMode::Initial | SnapshotMode::InitialOnly => !completed,
        SnapshotMode::Never => false,
        SnapshotMode::WhenNeeded => !completed || slot.is_none(),
        SnapshotMode::Always => true,
    };
    let creation = TopicCreation {
        partitions: config.topic_partitions,
        replication_factor: config.topic_replication,
    };
    let pipeline = config.pipeline.build(&props)?;
    let (mut sender, mut acks) = runtime::source_channel::<Position>(&ctx, creation, pipeline)?;
    let capture = Capture { config, types };
    let config = &capture.config;
    let mut repl = PgConnection::connect(&config.pg, true)
        .await
        .map_err(pg_error)?;
    let slot_name = quote_ident(&config.slot);
    let mut position = stored.unwrap_or_default();
    if snapshot {
        // A snapshot must match the slot's start exactly: a slot left from an unfinished
        // snapshot (nothing confirmed from it yet) is recreated with an exported snapshot.
        let reuse_slot = slot.is_some() && config.snapshot == SnapshotMode::Always && completed;
        if slot.is_some() && !reuse_slot {
            catalog::drop_slot(&mut catalog_conn, &config.slot)
                .await
                .map_err(pg_error)?;
        }
        repl.query("BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ")
            .await
            .map_err(pg_error)?;
        let consistent = if reuse_slot {
            position.end_lsn
        } else {
            let created = repl
                .query_one(&format!(
                    "CREATE_REPLICATION_SLOT {slot_name} LOGICAL pgoutput USE_SNAPSHOT"
                ))
                .await
                .map_err(pg_error)?;
            created
                .text(0, 1)
                .and_then(|l| l.parse().ok())
                .ok_or_else(|| {
                    TaskError::Fatal("CREATE_REPLICATION_SLOT gave no consistent point".into())
                })?
        };
        let rows = super::snapshot::run(
            &capture,
            &mut repl,
            &mut catalog_conn,
            &tables,
            consistent,
            &mut sender,
        )
        .await?;
        ctx.metrics.snapshot_rows(&ctx.connector, rows);
        repl.query("COMMIT").await.map_err(pg_error)?;
        position = Position {
            lsn_commit: consistent,
            end_lsn: consistent,
            tx_id: None,
            ts_usec: super::event::now_us(),
            snapshot_completed: true,
        };
        sender.mark(position).await?;
        let acked = acks.next().await?;
        store(&ctx, &partition, acked).await?;
        if config.snapshot == SnapshotMode::InitialOnly {
            tracing::info!(connector = %ctx.connector, "snapshot.mode=initial_only: snapshot done, not streaming");
            ctx.stopped().await;
            return Ok(());
        }
    } else if slot.is_none() {
        repl.query(&format!(
            "CREATE_REPLICATION_SLOT {slot_name} LOGICAL pgoutput NOEXPORT_SNAPSHOT"
        ))
        .await
        .map_err(pg_error)?;
    }
    super::stream::run(super::stream::Streaming {
        ctx,
        capture,
        catalog_conn,
        repl,
        sender,
        acks,
        partition,
        position,
    })
    .await
}
