//! What a connector plugin provides to the runtime: its settings (for validation), how its
//! work splits into tasks, and the task itself.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::runtime::TaskContext;

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Source or sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// Reads from elsewhere into Kafka.
    Source,
    /// Writes from Kafka elsewhere.
    Sink,
}

impl PluginKind {
    /// Connect's name for it.
    pub fn name(self) -> &'static str {
        match self {
            PluginKind::Source => "source",
            PluginKind::Sink => "sink",
        }
    }
}

/// The type of a setting, as Connect's `ConfigDef` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigType {
    String,
    Int,
    Boolean,
    List,
    Password,
}

/// One setting a plugin accepts.
#[derive(Debug, Clone)]
pub(crate) struct ConfigDef {
    pub(crate) name: &'static str,
    pub(crate) kind: ConfigType,
    pub(crate) default: Option<&'static str>,
    pub(crate) doc: &'static str,
    pub(crate) required: bool,
}

impl ConfigDef {
    /// An optional setting.
    pub(crate) fn new(
        name: &'static str,
        kind: ConfigType,
        default: Option<&'static str>,
        doc: &'static str,
    ) -> Self {
        Self {
            name,
            kind,
            default,
            doc,
            required: false,
        }
    }

    /// The same setting, required.
    pub(crate) fn required(mut self) -> Self {
        self.required = true;
        self
    }

    fn type_name(&self) -> &'static str {
        match self.kind {
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::List => "LIST",
            ConfigType::Password => "PASSWORD",
        }
    }
}

/// Problems found in a configuration, per setting.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    by_key: BTreeMap<String, Vec<String>>,
}

impl Problems {
    /// Records a problem with `key`.
    pub(crate) fn add(&mut self, key: &str, problem: String) {
        self.by_key.entry(key.to_owned()).or_default().push(problem);
    }

    /// Whether nothing is wrong.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The settings with problems.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.by_key.keys().map(String::as_str)
    }

    /// Required settings that are missing.
    pub(crate) fn check_definitions(
        &mut self,
        defs: &[ConfigDef],
        props: &BTreeMap<String, String>,
    ) {
        for d in defs {
            if d.required && props.get(d.name).is_none_or(|v| v.trim().is_empty()) {
                self.add(
                    d.name,
                    format!(
                        "Missing required configuration \"{}\" which has no default value.",
                        d.name
                    ),
                );
            }
        }
    }

    /// One line listing every problem.
    pub(crate) fn summary(&self) -> String {
        self.by_key
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.join("; ")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The body of `PUT /connector-plugins/{plugin}/config/validate`.
    pub(crate) fn validation_response(
        &self,
        class: &str,
        defs: &[ConfigDef],
        props: &BTreeMap<String, String>,
    ) -> Value {
        let mut configs = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (order, d) in defs.iter().enumerate() {
            seen.insert(d.name.to_owned());
            let value = props.get(d.name).map(|v| {
                if d.kind == ConfigType::Password {
                    "[hidden]".to_owned()
                } else {
                    v.clone()
                }
            });
            configs.push(json!({
                "definition": {
                    "name": d.name, "type": d.type_name(), "required": d.required,
                    "default_value": d.default, "importance": if d.required { "HIGH" } else { "MEDIUM" },
                    "documentation": d.doc, "group": "Connector", "width": "NONE",
                    "display_name": d.name, "dependents": [], "order": order as i64 + 1,
                },
                "value": {
                    "name": d.name, "value": value.or(d.default.map(str::to_owned)),
                    "recommended_values": [], "errors": self.by_key.get(d.name).cloned().unwrap_or_default(),
                    "visible": true,
                },
            }));
        }
        // Problems with settings the plugin does not define (connector.class, name, …).
        for (key, errors) in &self.by_key {
            if !seen.contains(key) {
                configs.push(json!({
                    "definition": {"name": key, "type": "STRING", "required": false, "default_value": null,
                        "importance": "HIGH", "documentation": "", "group": "Common", "width": "NONE",
                        "display_name": key, "dependents": [], "order": 0},
                    "value": {"name": key, "value": props.get(key), "recommended_values": [], "errors": errors, "visible": true},
                }));
            }
        }
        json!({
            "name": class,
            "error_count": self.by_key.values().map(Vec::len).sum::<usize>(),
            "groups": ["Common", "Connector"],
            "configs": configs,
        })
    }
}

/// Why a task stopped.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The configuration cannot work; restarting will not help.
    #[error("{0}")]
    Fatal(String),
    /// A failure that may pass (a database or broker away); the runtime restarts the task
    /// after a back-off.
    #[error("{0}")]
    Retriable(String),
}

/// A connector plugin.
pub(crate) trait Plugin: Send + Sync {
    /// Its class name, e.g. `io.debezium.connector.postgresql.PostgresConnector`.
    fn class(&self) -> &'static str;
    /// Other names it answers to (short names).
    fn aliases(&self) -> &'static [&'static str];
    /// Source or sink.
    fn kind(&self) -> PluginKind;
    /// The settings it accepts.
    fn definitions(&self) -> Vec<ConfigDef>;
    /// Checks `props`; problems per setting.
    fn validate(&self, props: &BTreeMap<String, String>) -> Problems;
    /// The configurations of its tasks, at most `max_tasks`.
    fn task_configs(
        &self,
        props: &BTreeMap<String, String>,
        max_tasks: usize,
    ) -> Vec<BTreeMap<String, String>>;
    /// Runs one task until it fails or `ctx` asks it to stop.
    fn run_task(
        &self,
        ctx: TaskContext,
        props: BTreeMap<String, String>,
    ) -> BoxFuture<Result<(), TaskError>>;
}

/// The plugins this build carries.
pub(crate) fn all() -> Vec<Arc<dyn Plugin>> {
    vec![Arc::new(crate::sources::postgres::PostgresConnector)]
}

/// The plugin `class` names, by class or alias.
pub(crate) fn find(plugins: &[Arc<dyn Plugin>], class: &str) -> Option<Arc<dyn Plugin>> {
    let short = class.rsplit('.').next().unwrap_or(class);
    plugins
        .iter()
        .find(|p| {
            p.class() == class
                || p.aliases().contains(&class)
                || p.class().rsplit('.').next() == Some(short) && !short.is_empty()
        })
        .cloned()
}
