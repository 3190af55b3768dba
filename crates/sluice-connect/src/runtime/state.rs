//! The cluster's view of connectors, rebuilt from the config and status topics in Kafka
//! Connect's record layout, so a restarted worker (or another one) sees the same state.
//!
//! Config topic keys: `connector-<name>` → `{"properties": {…}}`, `task-<name>-<n>` →
//! `{"properties": {…}}` (applied when `commit-<name>` → `{"tasks": N}` follows),
//! `target-state-<name>` → `{"state": "STARTED" | "PAUSED" | "STOPPED"}`; a null value
//! deletes. Status topic keys: `status-connector-<name>`, `status-task-<name>-<n>`.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

/// The state an operator asked a connector to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetState {
    Started,
    Paused,
    Stopped,
}

impl TargetState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TargetState::Started => "STARTED",
            TargetState::Paused => "PAUSED",
            TargetState::Stopped => "STOPPED",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "STARTED" => Some(TargetState::Started),
            "PAUSED" => Some(TargetState::Paused),
            "STOPPED" => Some(TargetState::Stopped),
            _ => None,
        }
    }
}

/// One connector as configured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConnectorConfig {
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) target: TargetState,
    pub(crate) tasks: Vec<BTreeMap<String, String>>,
}

/// Every connector's configuration.
#[derive(Debug, Default)]
pub(crate) struct ConfigState {
    pub(crate) connectors: BTreeMap<String, ConnectorConfig>,
    staged_tasks: HashMap<String, BTreeMap<u32, BTreeMap<String, String>>>,
    /// Target states seen before their connector's config.
    early_targets: HashMap<String, TargetState>,
}

fn properties(value: &Value) -> Option<BTreeMap<String, String>> {
    let props = value.get("properties")?.as_object()?;
    Some(
        props
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect(),
    )
}

impl ConfigState {
    /// Applies one record of the config topic.
    pub(crate) fn apply(&mut self, key: &str, value: Option<&Value>) {
        if let Some(name) = key.strip_prefix("connector-") {
            match value.and_then(properties) {
                Some(config) => {
                    let target = self.early_targets.remove(name);
                    let entry =
                        self.connectors
                            .entry(name.to_owned())
                            .or_insert_with(|| ConnectorConfig {
                                config: BTreeMap::new(),
                                target: TargetState::Started,
                                tasks: Vec::new(),
                            });
                    entry.config = config;
                    if let Some(t) = target {
                        entry.target = t;
                    }
                }
                None => {
                    self.connectors.remove(name);
                    self.staged_tasks.remove(name);
                }
            }
        } else if let Some(name) = key.strip_prefix("target-state-") {
            let state = value
                .and_then(|v| v.get("state.v2").or_else(|| v.get("state")))
                .and_then(Value::as_str)
                .and_then(TargetState::parse)
                .unwrap_or(TargetState::Started);
            match self.connectors.get_mut(name) {
                Some(c) => c.target = state,
                None => {
                    self.early_targets.insert(name.to_owned(), state);
                }
            }
        } else if let Some(rest) = key.strip_prefix("task-") {
            // task-<name>-<n>: the name may itself contain '-'.
            if let Some((name, n)) = rest.rsplit_once('-') {
                if let (Ok(n), Some(props)) = (n.parse::<u32>(), value.and_then(properties)) {
                    self.staged_tasks
                        .entry(name.to_owned())
                        .or_default()
                        .insert(n, props);
                }
            }
        } else if let Some(name) = key.strip_prefix("commit-") {
            let count = value
                .and_then(|v| v.get("tasks"))
                .and_then(Value::as_u64)
                .unwrap_or(0) as u32;
            let staged = self.staged_tasks.remove(name).unwrap_or_default();
            if let Some(c) = self.connectors.get_mut(name) {
                let complete = (0..count).all(|i| staged.contains_key(&i));
                if complete {
                    c.tasks = (0..count).filter_map(|i| staged.get(&i).cloned()).collect();
                }
            }
        }
    }
}

/// The config-topic records that create or replace connector `name`.
pub(crate) fn config_records(
    name: &str,
    config: &BTreeMap<String, String>,
    tasks: &[BTreeMap<String, String>],
) -> Vec<(String, Option<Value>)> {
    let mut out = vec![(
        format!("connector-{name}"),
        Some(json!({ "properties": config })),
    )];
    for (i, t) in tasks.iter().enumerate() {
        out.push((format!("task-{name}-{i}"), Some(json!({ "properties": t }))));
    }
    out.push((
        format!("commit-{name}"),
        Some(json!({ "tasks": tasks.len() })),
    ));
    out
}

/// The record setting `name`'s target state.
pub(crate) fn target_record(name: &str, state: TargetState) -> (String, Option<Value>) {
    (
        format!("target-state-{name}"),
        Some(json!({ "state": state.name(), "state.v2": state.name() })),
    )
}

/// The records deleting `name`.
pub(crate) fn delete_records(name: &str) -> Vec<(String, Option<Value>)> {
    vec![
        (format!("connector-{name}"), None),
        (format!("target-state-{name}"), None),
    ]
}

/// One status record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Status {
    pub(crate) state: String,
    pub(crate) trace: Option<String>,
    pub(crate) worker_id: String,
}

impl Status {
    pub(crate) fn to_value(&self, generation: u64) -> Value {
        json!({"state": self.state, "trace": self.trace, "worker_id": self.worker_id, "generation": generation})
    }

    pub(crate) fn from_value(v: &Value) -> Option<Self> {
        Some(Self {
            state: v.get("state")?.as_str()?.to_owned(),
            trace: v.get("trace").and_then(Value::as_str).map(str::to_owned),
            worker_id: v
                .get("worker_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }
}

/// Status key of connector `name`.
pub(crate) fn connector_status_key(name: &str) -> String {
    format!("status-connector-{name}")
}

/// Status key of task `n` of `name`.
pub(crate) fn task_status_key(name: &str, n: u32) -> String {
    format!("status-task-{name}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilds_from_records() {
        let mut state = ConfigState::default();
        let config: BTreeMap<String, String> =
            [("connector.class".to_string(), "x".to_string())].into();
        for (k, v) in config_records("my-conn", &config, std::slice::from_ref(&config)) {
            state.apply(&k, v.as_ref());
        }
        let (k, v) = target_record("my-conn", TargetState::Paused);
        state.apply(&k, v.as_ref());
        let c = &state.connectors["my-conn"];
        assert_eq!(c.tasks.len(), 1);
        assert_eq!(c.target, TargetState::Paused);
        // Tasks without their commit record are not applied.
        state.apply("task-my-conn-1", Some(&json!({"properties": {}})));
        assert_eq!(state.connectors["my-conn"].tasks.len(), 1);
        for (k, v) in delete_records("my-conn") {
            state.apply(&k, v.as_ref());
        }
        assert!(state.connectors.is_empty());
    }
}
