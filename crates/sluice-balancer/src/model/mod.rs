//! The cluster model the optimizer works on: brokers with their racks, capacities and log
//! directories, and partitions with their replicas and estimated load. It is built from the
//! admin protocol alone ([`crate::collect`]), or generated ([`generate`]), and can be saved to
//! and loaded from JSON, so that a production cluster's shape can be balanced offline and
//! attached to a bug report.

pub mod cpu;
pub mod generate;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// Version of the JSON layout, checked on load.
pub const MODEL_VERSION: u32 = 1;

/// Resources a broker has, per second for the network. `None` is unknown: goals on that
/// resource treat the broker as unlimited and balance by load alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// Disk bytes, all log directories together.
    pub disk_bytes: Option<f64>,
    /// Bytes per second the broker can take in.
    pub network_in: Option<f64>,
    /// Bytes per second the broker can send.
    pub network_out: Option<f64>,
    /// CPU cores.
    pub cpu_cores: Option<f64>,
}

/// One log directory of a broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogDir {
    /// Its absolute path, as DescribeLogDirs reports it.
    pub path: String,
    /// Total bytes of its file system, if known.
    pub capacity_bytes: Option<f64>,
}

/// One broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broker {
    /// Kafka node id.
    pub id: i32,
    /// `broker.rack`, if set.
    #[serde(default)]
    pub rack: Option<String>,
    /// What it can hold and carry.
    #[serde(default)]
    pub capacity: Capacity,
    /// Its log directories; a broker that reported none gets one unnamed directory.
    #[serde(default)]
    pub log_dirs: Vec<LogDir>,
    /// Being removed (`sluice balance broker remove`): every replica must leave it.
    #[serde(default)]
    pub excluded: bool,
    /// Just added (`sluice balance broker add`): while any broker is, replicas move only onto
    /// added brokers, as Cruise Control's `add_broker` does.
    #[serde(default)]
    pub added: bool,
}

/// One replica: the broker holding it and the log directory (index into the broker's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Replica {
    /// Index of the broker in [`ClusterModel::brokers`].
    pub broker: u32,
    /// Index of the log directory in that broker's [`Broker::log_dirs`].
    pub log_dir: u16,
}

/// The load of a partition, estimated from the cluster (sizes from DescribeLogDirs, rates from
/// offset growth).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Bytes on disk of one replica.
    pub disk_bytes: f64,
    /// Bytes per second produced to the partition (every replica takes them in).
    pub bytes_in: f64,
    /// Bytes per second consumers read from the leader.
    pub bytes_out: f64,
    /// CPU cores the leader replica keeps busy (see [`cpu`]; 0 when not measured).
    #[serde(default)]
    pub cpu_leader: f64,
    /// CPU cores a follower replica keeps busy.
    #[serde(default)]
    pub cpu_follower: f64,
}

/// One partition: its replicas, the first being the preferred leader (the leader once a
/// proposal is executed), and its load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// Index of the topic in [`ClusterModel::topics`].
    pub topic: u32,
    /// Partition number.
    pub index: i32,
    /// Replicas, preferred leader first.
    pub replicas: Vec<Replica>,
    /// The broker index of the current leader, if the partition has one.
    pub leader: Option<u32>,
    /// Estimated load.
    pub load: Load,
}

/// Settings that shape the load estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelSettings {
    /// How many times consumers read what is produced, when it could not be measured.
    pub consumer_fanout: f64,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            consumer_fanout: 1.0,
        }
    }
}

/// A whole cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterModel {
    /// Layout version ([`MODEL_VERSION`]).
    pub version: u32,
    /// Brokers, in node-id order.
    pub brokers: Vec<Broker>,
    /// Topic names.
    pub topics: Vec<String>,
    /// Partitions, in (topic, index) order.
    pub partitions: Vec<Partition>,
}

/// Why a model is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The JSON could not be read.
    #[error("cannot read the model: {0}")]
    Json(#[from] serde_json::Error),
    /// The layout is from another version.
    #[error("model version {0} is not supported (expected {MODEL_VERSION})")]
    Version(u32),
    /// The model contradicts itself.
    #[error("invalid model: {0}")]
    Invalid(String),
}

impl ClusterModel {
    /// Reads a model saved with [`ClusterModel::to_json`], checking it.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let model: ClusterModel = serde_json::from_str(text)?;
        if model.version != MODEL_VERSION {
            return Err(ModelError::Version(model.version));
        }
        model.validate()?;
        Ok(model)
    }

    /// The model as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Checks that every index points somewhere and no partition has two replicas on one
    /// broker.
    pub fn validate(&self) -> Result<(), ModelError> {
        let invalid = |s: String| Err(ModelError::Invalid(s));
        if self.brokers.is_empty() {
            return invalid("no brokers".to_owned());
        }
        if u32::try_from(self.brokers.len()).is_err() {
            return invalid("too many brokers".to_owned());
        }
        if self.topics.iter().collect::<HashSet<_>>().len() != self.topics.len() {
            return invalid("a topic is listed twice".to_owned());
        }
        let mut ids = HashSet::new();
        for b in &self.brokers {
            if !ids.insert(b.id) {
                return invalid(format!("broker {} is listed twice", b.id));
            }
            if b.log_dirs.is_empty() || b.log_dirs.len() > usize::from(u16::MAX) {
                return invalid(format!("broker {} needs 1 to 65535 log directories", b.id));
            }
        }
        let mut partitions = HashSet::new();
        for p in &self.partitions {
            let Some(topic) = self.topics.get(p.topic as usize) else {
                return invalid(format!("partition {} names topic #{}", p.index, p.topic));
            };
            if p.replicas.is_empty() {
                return invalid(format!("{topic}-{} has no replicas", p.index));
            }
            let mut seen = HashSet::new();
            for r in &p.replicas {
                let Some(broker) = self.brokers.get(r.broker as usize) else {
                    return invalid(format!("{topic}-{} names broker #{}", p.index, r.broker));
                };
                if usize::from(r.log_dir) >= broker.log_dirs.len() {
                    return invalid(format!(
                        "{topic}-{} names log dir #{} of broker {}",
                        p.index, r.log_dir, broker.id
                    ));
                }
                if !seen.insert(r.broker) {
                    return invalid(format!(
                        "{topic}-{} has two replicas on broker {}",
                        p.index, broker.id
                    ));
                }
            }
            if let Some(leader) = p.leader {
                if !p.replicas.iter().any(|r| r.broker == leader) {
                    return invalid(format!(
                        "{topic}-{} is led by broker #{leader}, which holds no replica of it",
                        p.index
                    ));
                }
            }
            if !partitions.insert((p.topic, p.index)) {
                return invalid(format!("{topic}-{} is listed twice", p.index));
            }
            let load = &p.load;
            if ![
                load.disk_bytes,
                load.bytes_in,
                load.bytes_out,
                load.cpu_leader,
                load.cpu_follower,
            ]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0)
            {
                return invalid(format!(
                    "{topic}-{} has a negative or unknown load",
                    p.index
                ));
            }
        }
        Ok(())
    }

    /// `topic-partition` of a partition, for messages.
    pub fn partition_name(&self, p: &Partition) -> String {
        let topic = self
            .topics
            .get(p.topic as usize)
            .map_or("?", String::as_str);
        format!("{topic}-{}", p.index)
    }
}
