//! Change data capture from PostgreSQL through logical replication (`pgoutput`), emitting
//! Debezium-compatible change events: a snapshot consistent with the replication slot, then
//! every insert, update, delete and truncate in commit order. The slot's confirmed position
//! advances only after Kafka acknowledged the events before it.

mod catalog;
mod config;
mod event;
mod snapshot;
mod stream;
mod task;
mod types;

use std::collections::BTreeMap;

use crate::plugin::{BoxFuture, ConfigDef, Plugin, PluginKind, Problems, TaskError};
use crate::runtime::TaskContext;

/// The PostgreSQL source plugin.
pub(crate) struct PostgresConnector;

impl Plugin for PostgresConnector {
    fn class(&self) -> &'static str {
        "io.debezium.connector.postgresql.PostgresConnector"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["PostgresConnector", "postgres", "postgresql"]
    }

    fn kind(&self) -> PluginKind {
        PluginKind::Source
    }

    fn definitions(&self) -> Vec<ConfigDef> {
        config::definitions()
    }

    fn validate(&self, props: &BTreeMap<String, String>) -> Problems {
        let mut problems = Problems::default();
        let _ = config::PostgresSourceConfig::parse(props, &mut problems);
        problems
    }

    fn task_configs(
        &self,
        props: &BTreeMap<String, String>,
        _max_tasks: usize,
    ) -> Vec<BTreeMap<String, String>> {
        // One slot is read by one connection: capture is a single task, as in Debezium.
        vec![props.clone()]
    }

    fn run_task(
        &self,
        ctx: TaskContext,
        props: BTreeMap<String, String>,
    ) -> BoxFuture<Result<(), TaskError>> {
        Box::pin(task::run(ctx, props))
    }
}
