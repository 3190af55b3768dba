//! Builds a [`ClusterModel`] from any Kafka cluster through the standard admin protocol —
//! no broker plug-in, no metrics topic: Metadata for brokers, racks, replicas and leaders;
//! DescribeLogDirs on every broker for replica sizes, log directories and disk sizes; and two
//! rounds of ListOffsets, `sample` apart, for the bytes produced per second (offset growth
//! times the partition's average bytes per offset). CPU, which the protocol does not expose,
//! comes from a measurement of each broker's busy cores if one is given (see [`cpu`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_admin::{AdminConfig, AdminConnection, AdminError, ClusterMetadata};

use crate::model::{
    cpu, Broker, Capacity, ClusterModel, Load, LogDir, ModelSettings, Partition, Replica,
    MODEL_VERSION,
};

/// Capacities the protocol cannot tell: per broker node id, with a default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityFile {
    /// For brokers not listed.
    #[serde(default)]
    pub default: Capacity,
    /// By node id.
    #[serde(default)]
    pub brokers: BTreeMap<i32, Capacity>,
}

/// How to sample the cluster.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Time between the two ListOffsets rounds (0: no rates, sizes only).
    pub sample: Duration,
    /// Capacities to use.
    pub capacity: CapacityFile,
    /// Load estimate settings.
    pub settings: ModelSettings,
    /// Leave out internal topics (`__consumer_offsets`, …).
    pub skip_internal: bool,
    /// Cores each broker keeps busy, by node id, measured elsewhere (e.g. Prometheus).
    pub cpu_usage: BTreeMap<i32, f64>,
}

/// Why a model could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// An admin request failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The cluster's answers did not fit together.
    #[error("{0}")]
    Inconsistent(String),
}

/// Per partition: `(size on disk, log directory path)` per replica broker, from
/// DescribeLogDirs.
type Sizes = HashMap<(String, i32), HashMap<i32, (i64, String)>>;

/// Collects the model of the cluster `config` reaches.
pub async fn collect(
    config: &AdminConfig,
    options: &CollectOptions,
) -> Result<ClusterModel, CollectError> {
    let mut bootstrap = AdminConnection::connect(config).await?;
    let metadata = sluice_admin::cluster_metadata(&mut bootstrap).await?;
    let mut brokers = Vec::new();
    let mut sizes: Sizes = HashMap::new();
    let mut connections: HashMap<i32, AdminConnection> = HashMap::new();
    let mut sorted = metadata.brokers.clone();
    sorted.sort_by_key(|b| b.id);
    for info in &sorted {
        let broker_config = AdminConfig {
            bootstrap: info.address(),
            ..config.clone()
        };
        let mut conn = AdminConnection::connect(&broker_config).await?;
        let dirs = sluice_admin::describe_log_dirs(&mut conn).await?;
        let mut log_dirs = Vec::new();
        for dir in dirs.iter().filter(|d| d.error.is_none()) {
            for r in dir.replicas.iter().filter(|r| !r.is_future) {
                sizes
                    .entry((r.topic.clone(), r.partition))
                    .or_default()
                    .insert(info.id, (r.size, dir.path.clone()));
            }
            log_dirs.push(LogDir {
                path: dir.path.clone(),
                capacity_bytes: (dir.total_bytes > 0).then_some(dir.total_bytes as f64),
            });
        }
        if log_dirs.is_empty() {
            log_dirs.push(LogDir {
                path: String::new(),
                capacity_bytes: None,
            });
        }
        let mut capacity = options
            .capacity
            .brokers
            .get(&info.id)
            .copied()
            .unwrap_or(options.capacity.default);
        if capacity.disk_bytes.is_none() {
            let total: f64 = log_dirs.iter().filter_map(|d| d.capacity_bytes).sum();
            capacity.disk_bytes = (total > 0.0).then_some(total);
        }
        brokers.push(Broker {
            id: info.id,
            rack: info.rack.clone(),
            capacity,
            log_dirs,
            excluded: false,
            added: false,
        });
        connections.insert(info.id, conn);
    }
    let rates = bytes_in_rates(&metadata, &mut connections, &sizes, options).await?;
    build(&metadata, brokers, &sizes, &rates, options)
}

/// Bytes produced per second per partition, from two ListOffsets rounds.
async fn bytes_in_rates(
    metadata: &ClusterMetadata,
    connections: &mut HashMap<i32, AdminConnection>,
    sizes: &Sizes,
    options: &CollectOptions,
) -> Result<HashMap<(String, i32), f64>, CollectError> {
    let mut rates = HashMap::new();
    if options.sample.is_zero() {
        return Ok(rates);
    }
    let mut by_leader: HashMap<i32, Vec<(String, i32)>> = HashMap::new();
    for t in &metadata.topics {
        for p in &t.partitions {
            by_leader
                .entry(p.leader)
                .or_default()
                .push((t.name.clone(), p.index));
        }
    }
    let mut first = HashMap::new();
    let mut starts = HashMap::new();
    for (leader, partitions) in &by_leader {
        let Some(conn) = connections.get_mut(leader) else {
            continue;
        };
        for (t, p, o) in sluice_admin::list_offsets(conn, partitions, sluice_admin::LATEST).await? {
            first.insert((t, p), o);
        }
        for (t, p, o) in
            sluice_admin::list_offsets(conn, partitions, sluice_admin::EARLIEST).await?
        {
            starts.insert((t, p), o);
        }
    }
    tokio::time::sleep(options.sample).await;
    let seconds = options.sample.as_secs_f64();
    for (leader, partitions) in &by_leader {
        let Some(conn) = connections.get_mut(leader) else {
            continue;
        };
        for (t, p, end) in
            sluice_admin::list_offsets(conn, partitions, sluice_admin::LATEST).await?
        {
            let key = (t, p);
            let (Some(&begin), Some(&start)) = (first.get(&key), starts.get(&key)) else {
                continue;
            };
            let size = sizes
                .get(&key)
                .and_then(|replicas| replicas.values().map(|(s, _)| *s).max())
                .unwrap_or(0);
            let offsets = (begin - start).max(0);
            if offsets == 0 || end <= begin {
                continue;
            }
            let bytes_per_offset = size as f64 / offsets as f64;
            rates.insert(key, (end - begin) as f64 * bytes_per_offset / seconds);
        }
    }
    Ok(rates)
}

fn build(
    metadata: &ClusterMetadata,
    brokers: Vec<Broker>,
    sizes: &Sizes,
    rates: &HashMap<(String, i32), f64>,
    options: &CollectOptions,
) -> Result<ClusterModel, CollectError> {
    let index: HashMap<i32, u32> = brokers
        .iter()
        .enumerate()
        .map(|(i, b)| (b.id, i as u32))
        .collect();
    let mut topics_sorted: Vec<_> = metadata
        .topics
        .iter()
        .filter(|t| !(options.skip_internal && t.internal))
        .collect();
    topics_sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut topics = Vec::new();
    let mut partitions = Vec::new();
    for t in topics_sorted {
        let topic = topics.len() as u32;
        topics.push(t.name.clone());
        let mut ps: Vec<_> = t.partitions.iter().collect();
        ps.sort_by_key(|p| p.index);
        for p in ps {
            let key = (t.name.clone(), p.index);
            let here = sizes.get(&key);
            let mut replicas = Vec::with_capacity(p.replicas.len());
            for id in &p.replicas {
                let Some(&b) = index.get(id) else {
                    return Err(CollectError::Inconsistent(format!(
                        "{}-{} has a replica on broker {id}, which Metadata does not list",
                        t.name, p.index
                    )));
                };
                let path = here.and_then(|h| h.get(id)).map(|(_, path)| path.as_str());
                let log_dir = path
                    .and_then(|path| {
                        brokers[b as usize]
                            .log_dirs
                            .iter()
                            .position(|d| d.path == path)
                    })
                    .unwrap_or(0) as u16;
                replicas.push(Replica { broker: b, log_dir });
            }
            if replicas.is_empty() {
                continue;
            }
            let disk = here
                .and_then(|h| h.values().map(|(s, _)| *s).max())
                .unwrap_or(0)
                .max(0) as f64;
            let bytes_in = rates.get(&key).copied().unwrap_or(0.0);
            partitions.push(Partition {
                topic,
                index: p.index,
                leader: index.get(&p.leader).copied(),
                replicas,
                load: Load {
                    disk_bytes: disk,
                    bytes_in,
                    bytes_out: bytes_in * options.settings.consumer_fanout,
                    ..Load::default()
                },
            });
        }
    }
    let mut model = ClusterModel {
        version: MODEL_VERSION,
        brokers,
        topics,
        partitions,
    };
    cpu::assign(&mut model, &options.cpu_usage);
    model
        .validate()
        .map_err(|e| CollectError::Inconsistent(e.to_string()))?;
    Ok(model)
}
