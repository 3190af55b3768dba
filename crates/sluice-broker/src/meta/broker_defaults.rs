//! Dynamic broker configs: the broker-level defaults of topic configs (`log.retention.ms`,
//! `message.max.bytes`, `log.cleanup.policy` …) changed at run time with AlterConfigs or
//! IncrementalAlterConfigs on the BROKER resource, cluster-wide (resource name `""`) or for
//! this broker (its node id), persisted in `<data_dir>/meta/broker-configs.json` and applied to
//! every topic that does not override them, without a restart.
//!
//! Layers, highest first, as Kafka's: this broker's dynamic config, the cluster-wide dynamic
//! default, the startup settings (`sluice.toml`, flags), Kafka's default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sluice_log::LogConfig;

use super::configs::{self, ConfigSource, Synonym, TopicConfigDef, TOPIC_CONFIGS};
use super::store::{read_json, write_json};
use super::MetaError;

/// Name of the dynamic broker config file under `<data_dir>/meta/`.
const FILE_NAME: &str = "broker-configs.json";

/// Which dynamic layer a change or a description is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerScope {
    /// Cluster-wide defaults (the BROKER resource with the empty name).
    ClusterDefault,
    /// This broker (the BROKER resource named by its node id).
    ThisBroker,
}

/// Dynamic broker configs by broker-level name, per layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicConfigs {
    /// Cluster-wide defaults.
    pub cluster: BTreeMap<String, String>,
    /// This broker's own values.
    pub broker: BTreeMap<String, String>,
}

impl DynamicConfigs {
    /// The configs of one layer.
    pub fn scope(&self, scope: BrokerScope) -> &BTreeMap<String, String> {
        match scope {
            BrokerScope::ClusterDefault => &self.cluster,
            BrokerScope::ThisBroker => &self.broker,
        }
    }

    /// Replaces the configs of one layer.
    pub fn with_scope(mut self, scope: BrokerScope, configs: BTreeMap<String, String>) -> Self {
        match scope {
            BrokerScope::ClusterDefault => self.cluster = configs,
            BrokerScope::ThisBroker => self.broker = configs,
        }
        self
    }

    /// Loads the dynamic configs of `data_dir` (none if the file does not exist yet).
    pub fn load(data_dir: &Path) -> Result<Self, MetaError> {
        Ok(read_json(&path(data_dir))?.unwrap_or_default())
    }

    /// Persists them atomically.
    pub fn save(&self, data_dir: &Path) -> Result<(), MetaError> {
        Ok(write_json(&path(data_dir), self)?)
    }
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("meta").join(FILE_NAME)
}

/// The defaults topic configs fall back to: the startup settings overlaid by the dynamic
/// broker configs.
#[derive(Debug, Clone)]
pub struct BrokerDefaults {
    startup: LogConfig,
    dynamic: DynamicConfigs,
    effective: LogConfig,
}

impl BrokerDefaults {
    /// Defaults from the startup settings and validated dynamic configs.
    pub fn new(startup: LogConfig, dynamic: DynamicConfigs) -> Result<Self, MetaError> {
        let mut as_topic_configs = BTreeMap::new();
        for layer in [&dynamic.cluster, &dynamic.broker] {
            for (name, value) in layer {
                if let Some(def) = configs::broker_only_dynamic(name) {
                    def.validate(value)?;
                    continue;
                }
                let def = dynamic_config(name).ok_or_else(|| MetaError::InvalidConfig {
                    key: name.clone(),
                    value: value.clone(),
                    reason: "not a dynamic broker config; dynamic are the broker-level \
                             defaults of topic configs (e.g. log.retention.ms, \
                             message.max.bytes) and replica.alter.log.dirs.io.max.bytes.per.second, \
                             leader/follower.replication.throttled.rate"
                        .to_owned(),
                })?;
                def.validate(value)?;
                // This broker's layer is applied last and wins.
                as_topic_configs.insert(def.name.to_owned(), value.clone());
            }
        }
        let effective = configs::log_config(&startup, &as_topic_configs)?;
        Ok(BrokerDefaults {
            startup,
            dynamic,
            effective,
        })
    }

    /// Defaults from the startup settings alone.
    pub fn startup(startup: LogConfig) -> Self {
        BrokerDefaults {
            effective: startup.clone(),
            startup,
            dynamic: DynamicConfigs::default(),
        }
    }

    /// The startup log defaults, without the dynamic configs.
    pub fn startup_config(&self) -> &LogConfig {
        &self.startup
    }

    /// The effective log defaults.
    pub fn log(&self) -> &LogConfig {
        &self.effective
    }

    /// The dynamic configs.
    pub fn dynamic(&self) -> &DynamicConfigs {
        &self.dynamic
    }

    /// The values `def` falls back to, highest precedence first (the first one is in force),
    /// named by the broker-level config.
    pub fn layers(&self, def: &TopicConfigDef) -> Vec<Synonym> {
        let name = def.broker_synonym;
        let mut layers = Vec::with_capacity(3);
        for (map, source) in [
            (&self.dynamic.broker, ConfigSource::DynamicBrokerConfig),
            (
                &self.dynamic.cluster,
                ConfigSource::DynamicDefaultBrokerConfig,
            ),
        ] {
            if let Some(value) = map.get(name) {
                layers.push(Synonym {
                    name,
                    value: value.clone(),
                    source,
                });
            }
        }
        let kafka_default = def.default_value(&LogConfig::default());
        let startup = def.default_value(&self.startup);
        if startup != kafka_default {
            layers.push(Synonym {
                name,
                value: startup,
                source: ConfigSource::StaticBrokerConfig,
            });
        }
        layers.push(Synonym {
            name,
            value: kafka_default,
            source: ConfigSource::DefaultConfig,
        });
        layers
    }

    /// The dynamic values of the broker-only config `name`, this broker's first.
    pub fn broker_only_layers(&self, name: &'static str) -> Vec<Synonym> {
        [
            (&self.dynamic.broker, ConfigSource::DynamicBrokerConfig),
            (
                &self.dynamic.cluster,
                ConfigSource::DynamicDefaultBrokerConfig,
            ),
        ]
        .into_iter()
        .filter_map(|(map, source)| {
            map.get(name).map(|value| Synonym {
                name,
                value: value.clone(),
                source,
            })
        })
        .collect()
    }

    /// The dynamic value in force of the broker-only config `name`, if one is set.
    pub fn broker_only(&self, name: &'static str) -> Option<String> {
        self.broker_only_layers(name)
            .into_iter()
            .next()
            .map(|s| s.value)
    }

    /// The value `def` has below the dynamic layer `scope` (what that layer's list starts from).
    pub fn value_below(&self, def: &TopicConfigDef, scope: BrokerScope) -> String {
        let skip = |source: ConfigSource| match scope {
            BrokerScope::ThisBroker => source == ConfigSource::DynamicBrokerConfig,
            BrokerScope::ClusterDefault => matches!(
                source,
                ConfigSource::DynamicBrokerConfig | ConfigSource::DynamicDefaultBrokerConfig
            ),
        };
        self.layers(def)
            .into_iter()
            .find(|s| !skip(s.source))
            .map_or_else(|| def.default_value(&self.startup), |s| s.value)
    }

    /// The value in force for `def` when a topic does not override it, and where it comes from.
    pub fn value_of(&self, def: &TopicConfigDef) -> (String, ConfigSource) {
        let top = self.layers(def).into_iter().next();
        top.map_or_else(
            || {
                (
                    def.default_value(&self.effective),
                    ConfigSource::DefaultConfig,
                )
            },
            |s| (s.value, s.source),
        )
    }
}

/// The topic config whose broker-level default `name` is, if it may be changed dynamically.
pub fn dynamic_config(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS
        .iter()
        .find(|def| def.broker_synonym == name && !def.read_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::string_map as map;

    #[test]
    fn this_broker_beats_the_cluster_default_beats_startup() {
        let startup = LogConfig {
            retention_ms: 1000,
            ..LogConfig::default()
        };
        let def = configs::topic_config("retention.ms").unwrap();
        let only_startup = BrokerDefaults::startup(startup.clone());
        assert_eq!(
            only_startup.value_of(def),
            ("1000".to_owned(), ConfigSource::StaticBrokerConfig)
        );
        let dynamic = DynamicConfigs {
            cluster: map(&[("log.retention.ms", "2000"), ("message.max.bytes", "5000")]),
            broker: map(&[("log.retention.ms", "3000")]),
        };
        let defaults = BrokerDefaults::new(startup, dynamic).unwrap();
        assert_eq!(defaults.log().retention_ms, 3000);
        assert_eq!(defaults.log().max_message_bytes, 5000);
        let sources: Vec<(String, ConfigSource)> = defaults
            .layers(def)
            .into_iter()
            .map(|s| (s.value, s.source))
            .collect();
        assert_eq!(
            sources,
            vec![
                ("3000".to_owned(), ConfigSource::DynamicBrokerConfig),
                ("2000".to_owned(), ConfigSource::DynamicDefaultBrokerConfig),
                ("1000".to_owned(), ConfigSource::StaticBrokerConfig),
                ("604800000".to_owned(), ConfigSource::DefaultConfig),
            ]
        );
    }

    #[test]
    fn only_valid_dynamic_configs_are_accepted() {
        let bad = [
            map(&[("log.retention.ms", "soon")]),
            map(&[("num.partitions", "3")]),
            map(&[("retention.ms", "1")]),
        ];
        for cluster in bad {
            let dynamic = DynamicConfigs {
                cluster,
                broker: BTreeMap::new(),
            };
            assert!(BrokerDefaults::new(LogConfig::default(), dynamic).is_err());
        }
    }

    #[test]
    fn persisted_configs_load_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            DynamicConfigs::load(dir.path()).unwrap(),
            DynamicConfigs::default()
        );
        let dynamic =
            DynamicConfigs::default().with_scope(BrokerScope::ThisBroker, map(&[("a", "b")]));
        dynamic.save(dir.path()).unwrap();
        assert_eq!(DynamicConfigs::load(dir.path()).unwrap(), dynamic);
    }
}
