//! What the source reads from PostgreSQL's catalog: the captured tables, their columns
//! (nullability and primary key, which pgoutput does not send), user-defined types, the
//! publication and the replication slot.

use crate::pg::{quote_ident, quote_literal, PgConnection, PgError};

use super::config::{PostgresSourceConfig, PublicationMode};
use super::event::{ColumnInfo, TableSchema};
use super::types::{Kind, TypeCatalog};

/// A captured table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableRef {
    pub(crate) oid: u32,
    pub(crate) schema: String,
    pub(crate) name: String,
}

impl TableRef {
    /// `"schema"."name"`.
    pub(crate) fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

/// A column as the catalog knows it.
#[derive(Debug, Clone)]
pub(crate) struct CatalogColumn {
    pub(crate) name: String,
    pub(crate) not_null: bool,
    pub(crate) primary_key: bool,
}

fn parse_u32(v: Option<&str>) -> u32 {
    v.and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Enum labels and array element types of user-defined types.
pub(crate) async fn types(conn: &mut PgConnection) -> Result<TypeCatalog, PgError> {
    let mut catalog = TypeCatalog::default();
    let enums = conn
        .query_one(
            "SELECT e.enumtypid, e.enumlabel FROM pg_enum e ORDER BY e.enumtypid, e.enumsortorder",
        )
        .await?;
    for row in 0..enums.rows.len() {
        let oid = parse_u32(enums.text(row, 0));
        let label = enums.text(row, 1).unwrap_or_default().to_owned();
        catalog.enums.entry(oid).or_default().push(label);
    }
    let arrays = conn
        .query_one("SELECT oid, typelem FROM pg_type WHERE typcategory = 'A' AND typelem <> 0 AND oid >= 16384")
        .await?;
    for row in 0..arrays.rows.len() {
        catalog.arrays.insert(
            parse_u32(arrays.text(row, 0)),
            parse_u32(arrays.text(row, 1)),
        );
    }
    Ok(catalog)
}

/// The tables the configuration captures, in schema/name order.
pub(crate) async fn tables(
    conn: &mut PgConnection,
    config: &PostgresSourceConfig,
) -> Result<Vec<TableRef>, PgError> {
    let result = conn
        .query_one(
            "SELECT c.oid, n.nspname, c.relname FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' \
             ORDER BY n.nspname, c.relname",
        )
        .await?;
    Ok((0..result.rows.len())
        .map(|row| TableRef {
            oid: parse_u32(result.text(row, 0)),
            schema: result.text(row, 1).unwrap_or_default().to_owned(),
            name: result.text(row, 2).unwrap_or_default().to_owned(),
        })
        .filter(|t| config.captures(&t.schema, &t.name))
        .collect())
}

/// The columns of table `oid`, in order.
pub(crate) async fn columns(
    conn: &mut PgConnection,
    oid: u32,
) -> Result<Vec<CatalogColumn>, PgError> {
    let result = conn
        .query_one(&format!(
            "SELECT a.attname, a.attnotnull, \
                    coalesce(a.attnum = ANY(i.indkey), false) \
             FROM pg_attribute a \
             LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
             WHERE a.attrelid = {oid} AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum"
        ))
        .await?;
    Ok((0..result.rows.len())
        .map(|row| CatalogColumn {
            name: result.text(row, 0).unwrap_or_default().to_owned(),
            not_null: result.text(row, 1) == Some("t"),
            primary_key: result.text(row, 2) == Some("t"),
        })
        .collect())
}

/// The event schemas of a table whose columns (name, type, modifier) are `shape`, with
/// nullability and key from the catalog's `known` columns.
pub(crate) fn table_schema(
    config: &PostgresSourceConfig,
    types: &TypeCatalog,
    schema: &str,
    table: &str,
    shape: &[(String, u32, i32)],
    known: &[CatalogColumn],
) -> TableSchema {
    let columns = shape
        .iter()
        .map(|(name, oid, typmod)| {
            let catalog = known.iter().find(|c| &c.name == name);
            ColumnInfo {
                name: name.clone(),
                kind: Kind::of(*oid, *typmod, types),
                optional: catalog.is_none_or(|c| !c.not_null),
                primary_key: catalog.is_some_and(|c| c.primary_key),
            }
        })
        .collect();
    TableSchema::new(config, schema, table, columns)
}

/// Creates or updates the publication as `publication.autocreate.mode` says; checks that it
/// exists otherwise.
pub(crate) async fn ensure_publication(
    conn: &mut PgConnection,
    config: &PostgresSourceConfig,
    tables: &[TableRef],
) -> Result<(), PgError> {
    let exists = !conn
        .query_one(&format!(
            "SELECT 1 FROM pg_publication WHERE pubname = {}",
            quote_literal(&config.publication)
        ))
        .await?
        .rows
        .is_empty();
    let name = quote_ident(&config.publication);
    let list = || {
        tables
            .iter()
            .map(TableRef::quoted)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match config.publication_mode {
        PublicationMode::Disabled if !exists => Err(PgError::Protocol(format!(
            "publication {} does not exist and publication.autocreate.mode is disabled",
            config.publication
        ))),
        PublicationMode::Disabled => Ok(()),
        PublicationMode::AllTables if exists => Ok(()),
        PublicationMode::AllTables => conn
            .query(&format!("CREATE PUBLICATION {name} FOR ALL TABLES"))
            .await
            .map(drop),
        PublicationMode::Filtered if tables.is_empty() => Err(PgError::Protocol(
            "publication.autocreate.mode is filtered but the filters match no table".into(),
        )),
        PublicationMode::Filtered if exists => conn
            .query(&format!("ALTER PUBLICATION {name} SET TABLE {}", list()))
            .await
            .map(drop),
        PublicationMode::Filtered => conn
            .query(&format!("CREATE PUBLICATION {name} FOR TABLE {}", list()))
            .await
            .map(drop),
    }
}

/// The slot's state, if it exists.
#[derive(Debug, Clone)]
pub(crate) struct SlotInfo {
    pub(crate) plugin: String,
    pub(crate) database: String,
}

/// Looks up the replication slot `name`.
pub(crate) async fn slot(conn: &mut PgConnection, name: &str) -> Result<Option<SlotInfo>, PgError> {
    let result = conn
        .query_one(&format!(
            "SELECT plugin, database FROM pg_replication_slots WHERE slot_name = {}",
            quote_literal(name)
        ))
        .await?;
    if result.rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(SlotInfo {
        plugin: result.text(0, 0).unwrap_or_default().to_owned(),
        database: result.text(0, 1).unwrap_or_default().to_owned(),
    }))
}

/// How many bytes of WAL slot `name` holds back (`None` when it does not exist).
pub(crate) async fn slot_lag(conn: &mut PgConnection, name: &str) -> Result<Option<i64>, PgError> {
    let result = conn
        .query_one(&format!(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint \
             FROM pg_replication_slots WHERE slot_name = {}",
            quote_literal(name)
        ))
        .await?;
    Ok(result.text(0, 0).and_then(|v| v.parse().ok()))
}

/// Drops slot `name` (it must be inactive).
pub(crate) async fn drop_slot(conn: &mut PgConnection, name: &str) -> Result<(), PgError> {
    conn.query(&format!(
        "SELECT pg_drop_replication_slot({})",
        quote_literal(name)
    ))
    .await
    .map(drop)
}
