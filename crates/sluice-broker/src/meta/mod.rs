//! Topics, partitions and their configs: the broker's catalogue, persisted under the data
//! directory so it survives restarts.
//!
//! Contract (shared by the produce/fetch path and the topic-admin handlers):
//! - [`Metadata::open`] loads the catalogue and opens every partition log (running recovery);
//! - lookups ([`Metadata::topic`], [`Metadata::partition`], [`Metadata::topics`]) are lock-light
//!   and return `Arc`s, so the hot path never holds the catalogue lock while it works;
//! - changes ([`Metadata::create_topic`], [`Metadata::delete_topic`],
//!   [`Metadata::create_partitions`], [`Metadata::alter_topic_configs`]) validate, persist the
//!   catalogue atomically (write temp file, fsync, rename) and only then become visible.

pub mod broker_defaults;
pub mod configs;
pub mod disk;
pub mod log_dirs;
mod producer_ids;
pub mod relocation;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_log::{LogConfig, LogError};
use tracing::{info, warn};

use crate::partition::Partition;
use broker_defaults::{BrokerDefaults, BrokerScope, DynamicConfigs};
use configs::AlterTarget;

pub use log_dirs::{partition_dir, LogDirs};
pub use producer_ids::ProducerIdAllocator;
pub use relocation::{MoveRefused, MoveStatus, Relocations};
pub use store::{read_json, sync_dir, write_atomic, write_json, write_private};

/// Longest topic name Kafka accepts (leaves room for the partition suffix in file names).
const MAX_TOPIC_NAME_LEN: usize = 249;
/// Sanity cap on partitions per topic for one broker.
const MAX_PARTITIONS: i32 = 10_000;
/// Most directory preferences kept for partitions that do not exist yet (AlterReplicaLogDirs
/// before creation); more are answered but not remembered.
const MAX_PREFERRED_DIRS: usize = 100_000;
/// The dynamic broker config that throttles partition moves between log directories.
const MOVE_THROTTLE: &str = "replica.alter.log.dirs.io.max.bytes.per.second";

/// Why a catalogue change was refused; each maps to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// `TOPIC_ALREADY_EXISTS`.
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// `UNKNOWN_TOPIC_OR_PARTITION`.
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// `INVALID_TOPIC_EXCEPTION`: name empty, too long, `.`/`..`, or characters outside
    /// `[a-zA-Z0-9._-]`.
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopic {
        /// The refused name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// `INVALID_PARTITIONS`.
    #[error("invalid partition count {0}: {1}")]
    InvalidPartitions(i32, &'static str),
    /// `INVALID_REPLICATION_FACTOR`: this broker has one node.
    #[error("replication factor {0} is larger than the 1 broker available")]
    InvalidReplicationFactor(i16),
    /// `INVALID_CONFIG`: unknown key or bad value.
    #[error("invalid config {key}={value}: {reason}")]
    InvalidConfig {
        /// Config name.
        key: String,
        /// Offered value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `KAFKA_STORAGE_ERROR`: the log or catalogue file could not be written.
    #[error(transparent)]
    Storage(#[from] sluice_log::LogError),
    /// The log directories do not fit the catalogue (start-up only).
    #[error("log directories: {0}")]
    InvalidLogDirs(String),
}

impl MetaError {
    /// The Kafka error code this refusal is reported as.
    pub fn error_code(&self) -> kafka_protocol::error::ResponseError {
        use kafka_protocol::error::ResponseError as E;
        match self {
            MetaError::TopicExists(_) => E::TopicAlreadyExists,
            MetaError::UnknownTopic(_) => E::UnknownTopicOrPartition,
            MetaError::InvalidTopic { .. } => E::InvalidTopicException,
            MetaError::InvalidPartitions(..) => E::InvalidPartitions,
            MetaError::InvalidReplicationFactor(_) => E::InvalidReplicationFactor,
            MetaError::InvalidConfig { .. } => E::InvalidConfig,
            MetaError::Storage(_) | MetaError::InvalidLogDirs(_) => E::KafkaStorageError,
        }
    }
}

/// One topic: its id, partitions and explicitly set configs.
#[derive(Debug)]
pub struct Topic {
    /// Topic name.
    pub name: String,
    /// Topic id (Kafka's topic UUID), stable across restarts.
    pub id: uuid::Uuid,
    /// Partitions, indexed by partition number.
    pub partitions: Vec<Arc<Partition>>,
    /// Configs set on the topic (only overrides; defaults come from the broker config).
    pub configs: BTreeMap<String, String>,
    /// The effective log config (broker defaults + overrides).
    pub log_config: LogConfig,
    /// True for internal topics such as `__consumer_offsets`.
    pub internal: bool,
}

impl Topic {
    /// The same topic and partitions with other overrides and effective config.
    fn reconfigured(&self, configs: BTreeMap<String, String>, log_config: LogConfig) -> Topic {
        Topic {
            name: self.name.clone(),
            id: self.id,
            partitions: self.partitions.clone(),
            configs,
            log_config,
            internal: self.internal,
        }
    }
}

/// The catalogue of all topics.
#[derive(Debug)]
pub struct Metadata {
    data_dir: PathBuf,
    log_dirs: LogDirs,
    relocations: Relocations,
    /// The move throttle set at start-up (0: none), below the dynamic one.
    startup_move_throttle: std::sync::atomic::AtomicU64,
    /// Log directories asked for partitions not created yet: where they will be created (as
    /// Kafka records them; not persisted, as in Kafka).
    preferred_dirs: parking_lot::Mutex<HashMap<(String, i32), PathBuf>>,
    /// Startup log defaults overlaid by the dynamic broker configs; swapped whole on a change.
    defaults: parking_lot::RwLock<Arc<BrokerDefaults>>,
    default_partitions: AtomicI32,
    /// Readers clone `Arc`s out and release the lock at once.
    catalogue: parking_lot::RwLock<Catalogue>,
    /// Serializes changes, including writing `topics.json`, without blocking readers.
    changes: parking_lot::Mutex<()>,
}

/// The in-memory catalogue.
#[derive(Debug, Default, Clone)]
struct Catalogue {
    by_name: BTreeMap<String, Arc<Topic>>,
    by_id: HashMap<uuid::Uuid, Arc<Topic>>,
}

impl Catalogue {
    fn insert(&mut self, topic: Arc<Topic>) {
        self.by_id.insert(topic.id, topic.clone());
        self.by_name.insert(topic.name.clone(), topic);
    }

    fn remove(&mut self, name: &str) -> Option<Arc<Topic>> {
        let topic = self.by_name.remove(name)?;
        self.by_id.remove(&topic.id);
        Some(topic)
    }
}

/// One topic as stored in `topics.json`.
#[derive(Debug, Serialize, Deserialize)]
struct TopicRecord {
    name: String,
    id: uuid::Uuid,
    partitions: i32,
    #[serde(default)]
    configs: BTreeMap<String, String>,
    #[serde(default)]
    internal: bool,
}

/// The layout of `topics.json`.
#[derive(Debug, Serialize, Deserialize)]
struct CatalogueFile {
    version: u32,
    topics: Vec<TopicRecord>,
}

/// The layout of `cluster.json`.
#[derive(Debug, Serialize, Deserialize)]
struct ClusterFile {
    cluster_id: String,
}

/// Checks a topic name against Kafka's rules.
pub fn validate_topic_name(name: &str) -> Result<(), MetaError> {
    let invalid = |reason| {
        Err(MetaError::InvalidTopic {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("the name is empty");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed");
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return invalid("longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// The effective log config of a topic: broker defaults with the topic's overrides applied.
fn effective_log_config(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, MetaError> {
    configs::log_config(defaults, overrides)
}

/// Loads the cluster id from `<data_dir>/meta/cluster.json`, creating it on first start (from
/// `configured` if given, else a random id).
pub fn load_or_create_cluster_id(
    data_dir: &Path,
    configured: Option<&str>,
) -> Result<String, MetaError> {
    let path = data_dir.join("meta").join("cluster.json");
    if let Some(file) = store::read_json::<ClusterFile>(&path)? {
        if let Some(wanted) = configured {
            if wanted != file.cluster_id {
                warn!(persisted = %file.cluster_id, configured = wanted, "ignoring configured cluster id: the data directory already belongs to another cluster id");
            }
        }
        return Ok(file.cluster_id);
    }
    let cluster_id =
        configured.map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
    store::write_json(
        &path,
        &ClusterFile {
            cluster_id: cluster_id.clone(),
        },
    )?;
    Ok(cluster_id)
}

impl Metadata {
    /// Loads the catalogue from `data_dir` and opens every partition, each found in one of
    /// `log_dirs` (`data_dir` itself when empty).
    pub fn open(
        data_dir: &Path,
        log_dirs: &[PathBuf],
        startup: LogConfig,
    ) -> Result<Self, MetaError> {
        std::fs::create_dir_all(data_dir.join("meta")).map_err(|e| LogError::io(data_dir, e))?;
        let log_dirs = if log_dirs.is_empty() {
            LogDirs::open(&[data_dir.to_owned()])?
        } else {
            LogDirs::open(log_dirs)?
        };
        let defaults = BrokerDefaults::new(startup, DynamicConfigs::load(data_dir)?)?;
        let file = store::read_json::<CatalogueFile>(&data_dir.join("meta").join("topics.json"))?;
        let mut catalogue = Catalogue::default();
        for record in file.map(|f| f.topics).unwrap_or_default() {
            let log_config = effective_log_config(defaults.log(), &record.configs)?;
            let partitions = (0..record.partitions)
                .map(|p| {
                    let log_dir = log_dirs.locate(&record.name, p)?;
                    open_partition(log_dir, &record.name, p, &log_config)
                })
                .collect::<Result<Vec<_>, _>>()?;
            catalogue.insert(Arc::new(Topic {
                name: record.name,
                id: record.id,
                partitions,
                configs: record.configs,
                log_config,
                internal: record.internal,
            }));
        }
        info!(topics = catalogue.by_name.len(), data_dir = %data_dir.display(), log_dirs = log_dirs.dirs().len(), "catalogue loaded");
        let relocations = Relocations::start().map_err(|e| LogError::io("log mover thread", e))?;
        let metadata = Metadata {
            data_dir: data_dir.to_owned(),
            log_dirs,
            relocations,
            startup_move_throttle: std::sync::atomic::AtomicU64::new(0),
            preferred_dirs: parking_lot::Mutex::new(HashMap::new()),
            defaults: parking_lot::RwLock::new(Arc::new(defaults)),
            default_partitions: AtomicI32::new(1),
            catalogue: parking_lot::RwLock::new(catalogue),
            changes: parking_lot::Mutex::new(()),
        };
        metadata.apply_move_throttle();
        Ok(metadata)
    }

    /// Sets `num.partitions`, used when a topic is created with `-1` partitions.
    pub fn set_default_partitions(&self, partitions: i32) {
        self.default_partitions
            .store(partitions.max(1), Ordering::Relaxed);
    }

    /// The broker-wide defaults that topic configs override (startup settings overlaid by
    /// dynamic broker configs).
    pub fn log_defaults(&self) -> Arc<BrokerDefaults> {
        self.defaults.read().clone()
    }

    /// Replaces one layer of dynamic broker configs with what `change` makes of it (validated),
    /// persists it, and applies the new defaults to every topic that does not override them.
    /// `change` runs under the change lock, like [`Metadata::alter_topic_configs`]'s.
    pub fn alter_broker_configs<E: From<MetaError>>(
        &self,
        scope: BrokerScope,
        change: impl FnOnce(
            &BTreeMap<String, String>,
            AlterTarget<'_>,
        ) -> Result<BTreeMap<String, String>, E>,
        validate_only: bool,
    ) -> Result<(), E> {
        let _changes = self.changes.lock();
        let current = self.log_defaults();
        let configs = change(
            current.dynamic().scope(scope),
            AlterTarget::Broker(&current, scope),
        )?;
        let dynamic = current.dynamic().clone().with_scope(scope, configs);
        let next = BrokerDefaults::new(current.startup_config().clone(), dynamic)?;
        // Every topic must still be valid over the new defaults before anything changes.
        let mut catalogue = self.catalogue.read().clone();
        let mut retuned = Vec::new();
        for topic in catalogue.by_name.values() {
            let log_config = effective_log_config(next.log(), &topic.configs)?;
            retuned.push((topic.clone(), log_config));
        }
        if validate_only {
            return Ok(());
        }
        next.dynamic().save(&self.data_dir)?;
        for (topic, log_config) in retuned {
            for partition in &topic.partitions {
                let config = log_config.clone();
                partition.with_log(|log| log.set_config(config));
            }
            catalogue.insert(Arc::new(
                topic.reconfigured(topic.configs.clone(), log_config),
            ));
        }
        *self.defaults.write() = Arc::new(next);
        *self.catalogue.write() = catalogue;
        self.apply_move_throttle();
        info!(?scope, "dynamic broker configs altered");
        Ok(())
    }

    /// The data directory this catalogue lives in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The log directories partitions live in.
    pub fn log_dirs(&self) -> &LogDirs {
        &self.log_dirs
    }

    /// Calls `each(topic, partition, log directory, size in bytes)` for every partition that
    /// `wanted(topic, partition)` accepts, with the configured directory it is stored in.
    pub fn for_each_stored(
        &self,
        mut wanted: impl FnMut(&str, i32) -> bool,
        mut each: impl FnMut(&str, i32, &Path, u64),
    ) {
        for topic in self.topics() {
            for p in topic
                .partitions
                .iter()
                .filter(|p| wanted(&topic.name, p.index))
            {
                let (dir, size) = p.with_log(|log| (log.dir().to_owned(), log.size_bytes()));
                if let Some(log_dir) = self.log_dirs.owner(&dir) {
                    each(&topic.name, p.index, log_dir, size);
                }
            }
        }
    }

    /// The configured log directory `partition` lives in now.
    pub fn log_dir_of(&self, partition: &Partition) -> Option<PathBuf> {
        self.log_dirs.owner(&partition.dir()).map(Path::to_path_buf)
    }

    /// Moves `partition` to the configured log directory `log_dir` (AlterReplicaLogDirs; see
    /// [`relocation`]).
    pub fn move_partition(
        &self,
        partition: &Arc<Partition>,
        log_dir: &Path,
    ) -> Result<(), MoveRefused> {
        self.relocations.request(partition, log_dir)
    }

    /// Caps the rate at which partition moves copy, all together (Kafka's
    /// `replica.alter.log.dirs.io.max.bytes.per.second`; `None`: unlimited).
    /// A dynamic `replica.alter.log.dirs.io.max.bytes.per.second` takes precedence.
    pub fn set_move_throttle(&self, bytes_per_second: Option<u64>) {
        self.startup_move_throttle
            .store(bytes_per_second.unwrap_or(0), Ordering::Relaxed);
        self.apply_move_throttle();
    }

    fn apply_move_throttle(&self) {
        let dynamic = self
            .log_defaults()
            .broker_only(MOVE_THROTTLE)
            .and_then(|v| v.trim().parse::<u64>().ok());
        let startup = Some(self.startup_move_throttle.load(Ordering::Relaxed)).filter(|&r| r > 0);
        self.relocations.set_throttle(dynamic.or(startup));
    }

    /// Records that `topic`-`partition`, which does not exist yet, is to be created in
    /// `log_dir` (AlterReplicaLogDirs before a reassignment creates the replica).
    pub fn prefer_log_dir(&self, topic: &str, partition: i32, log_dir: &Path) {
        let mut preferred = self.preferred_dirs.lock();
        if preferred.len() < MAX_PREFERRED_DIRS {
            preferred.insert((topic.to_owned(), partition), log_dir.to_owned());
        }
    }

    /// The partition moves in progress.
    pub fn moves(&self) -> Vec<MoveStatus> {
        self.relocations.status()
    }

    /// How many partitions each log directory holds.
    fn partition_counts(&self) -> HashMap<PathBuf, usize> {
        let mut counts = HashMap::new();
        for topic in self.topics() {
            for partition in &topic.partitions {
                if let Some(dir) = self.log_dir_of(partition) {
                    *counts.entry(dir).or_default() += 1;
                }
            }
        }
        counts
    }

    /// Opens new partitions `from..to` of `name`, each in the emptiest log directory; on a
    /// failure removes what it created.
    fn open_new_partitions(
        &self,
        name: &str,
        from: i32,
        to: i32,
        config: &LogConfig,
    ) -> Result<Vec<Arc<Partition>>, MetaError> {
        let mut counts = self.partition_counts();
        let mut opened = Vec::new();
        for p in from..to {
            // A directory left by a crash between its creation and the catalogue write is stale.
            self.log_dirs.remove_everywhere(name, p);
            let preferred = self.preferred_dirs.lock().remove(&(name.to_owned(), p));
            let log_dir = match preferred {
                Some(dir) => {
                    *counts.entry(dir.clone()).or_default() += 1;
                    dir
                }
                None => self.log_dirs.choose(&mut counts).to_owned(),
            };
            match open_partition(&log_dir, name, p, config) {
                Ok(part) => opened.push(part),
                Err(e) => {
                    self.remove_new_partitions(name, from, p);
                    return Err(e);
                }
            }
        }
        Ok(opened)
    }

    fn remove_new_partitions(&self, name: &str, from: i32, to: i32) {
        (from..to).for_each(|q| self.log_dirs.remove_everywhere(name, q));
    }

    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.catalogue.read().by_name.get(name).cloned()
    }

    /// The topic with id `id`.
    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<Arc<Topic>> {
        self.catalogue.read().by_id.get(&id).cloned()
    }

    /// One partition of a topic.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let topic = self.topic(topic)?;
        let index = usize::try_from(partition).ok()?;
        topic.partitions.get(index).cloned()
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.catalogue.read().by_name.values().cloned().collect()
    }

    /// Creates a topic. `partitions == -1` means the broker default; `configs` are validated
    /// overrides. With `validate_only` nothing is changed and the returned topic has no opened
    /// partitions (its `partitions` vector is empty).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, MetaError> {
        self.create(
            name,
            partitions,
            replication_factor,
            configs,
            validate_only,
            false,
        )
    }

    /// Creates an internal topic (such as `__consumer_offsets`) unless it exists; returns the
    /// topic either way. Internal topics are flagged in Metadata responses.
    pub fn create_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, MetaError> {
        match self.create(name, partitions, 1, configs, false, true) {
            Err(MetaError::TopicExists(_)) => self
                .topic(name)
                .ok_or_else(|| MetaError::UnknownTopic(name.to_owned())),
            other => other,
        }
    }

    /// Shared implementation of topic creation.
    fn create(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        internal: bool,
    ) -> Result<Arc<Topic>, MetaError> {
        validate_topic_name(name)?;
        let partitions = match partitions {
            -1 => self.default_partitions.load(Ordering::Relaxed),
            p if p < 1 => {
                return Err(MetaError::InvalidPartitions(
                    p,
                    "a topic needs at least one partition",
                ))
            }
            p if p > MAX_PARTITIONS => {
                return Err(MetaError::InvalidPartitions(
                    p,
                    "more than the 10000 partitions one broker hosts",
                ));
            }
            p => p,
        };
        if replication_factor != -1 && replication_factor != 1 {
            return Err(MetaError::InvalidReplicationFactor(replication_factor));
        }
        // Under the change lock, so a concurrent change of the broker defaults cannot slip in.
        let _changes = self.changes.lock();
        let log_config = effective_log_config(self.log_defaults().log(), &configs)?;
        if self.topic(name).is_some() {
            return Err(MetaError::TopicExists(name.to_owned()));
        }
        let mut topic = Topic {
            name: name.to_owned(),
            id: uuid::Uuid::new_v4(),
            partitions: Vec::new(),
            configs,
            log_config,
            internal,
        };
        if validate_only {
            return Ok(Arc::new(topic));
        }
        topic.partitions = self.open_new_partitions(name, 0, partitions, &topic.log_config)?;
        let topic = Arc::new(topic);
        let mut next = self.catalogue.read().clone();
        next.insert(topic.clone());
        if let Err(e) = self.persist(&next) {
            self.remove_new_partitions(name, 0, partitions);
            return Err(e);
        }
        *self.catalogue.write() = next;
        info!(topic = name, partitions, internal, "topic created");
        Ok(topic)
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<(), MetaError> {
        let _changes = self.changes.lock();
        let mut next = self.catalogue.read().clone();
        let topic = next
            .remove(name)
            .ok_or_else(|| MetaError::UnknownTopic(name.to_owned()))?;
        self.persist(&next)?;
        *self.catalogue.write() = next;
        // In-flight requests may still hold the partitions; their open files stay valid after
        // the directories are unlinked.
        self.relocations.cancel_topic(name);
        for partition in &topic.partitions {
            log_dirs::remove_dir(&partition.retire());
        }
        info!(topic = name, "topic deleted");
        Ok(())
    }

    /// Grows a topic to `total` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(), MetaError> {
        let _changes = self.changes.lock();
        let topic = self
            .topic(name)
            .ok_or_else(|| MetaError::UnknownTopic(name.to_owned()))?;
        let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        if total <= current {
            return Err(MetaError::InvalidPartitions(
                total,
                "the partition count can only be increased",
            ));
        }
        if total > MAX_PARTITIONS {
            return Err(MetaError::InvalidPartitions(
                total,
                "more than the 10000 partitions one broker hosts",
            ));
        }
        if validate_only {
            return Ok(());
        }
        let mut partitions = topic.partitions.clone();
        partitions.extend(self.open_new_partitions(name, current, total, &topic.log_config)?);
        let grown = Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            partitions,
            configs: topic.configs.clone(),
            log_config: topic.log_config.clone(),
            internal: topic.internal,
        });
        let mut next = self.catalogue.read().clone();
        next.insert(grown);
        if let Err(e) = self.persist(&next) {
            self.remove_new_partitions(name, current, total);
            return Err(e);
        }
        *self.catalogue.write() = next;
        info!(topic = name, from = current, to = total, "partitions added");
        Ok(())
    }

    /// Replaces a topic's config overrides with what `change` makes of the current ones
    /// (validated) and applies them to its partition logs. `change` runs under the change
    /// lock, so concurrent alterations build on each other instead of overwriting.
    pub fn alter_topic_configs<E: From<MetaError>>(
        &self,
        name: &str,
        change: impl FnOnce(
            &BTreeMap<String, String>,
            AlterTarget<'_>,
        ) -> Result<BTreeMap<String, String>, E>,
        validate_only: bool,
    ) -> Result<(), E> {
        let _changes = self.changes.lock();
        let topic = self
            .topic(name)
            .ok_or_else(|| MetaError::UnknownTopic(name.to_owned()))?;
        let defaults = self.log_defaults();
        let configs = change(&topic.configs, AlterTarget::Topic(&defaults))?;
        let log_config = effective_log_config(defaults.log(), &configs)?;
        if validate_only {
            return Ok(());
        }
        let altered = Arc::new(topic.reconfigured(configs, log_config.clone()));
        let mut next = self.catalogue.read().clone();
        next.insert(altered);
        self.persist(&next)?;
        *self.catalogue.write() = next;
        for partition in &topic.partitions {
            partition.with_log(|log| log.set_config(log_config.clone()));
        }
        info!(topic = name, "topic configs altered");
        Ok(())
    }

    /// Flushes and closes every partition log this catalogue still owns alone (shutdown).
    /// Partitions still referenced elsewhere are fsynced instead. Every partition is attempted;
    /// the first failure is returned.
    pub fn close(self) -> Result<(), LogError> {
        // Moves hold partitions; stopped first so that the partitions can be closed.
        self.relocations.stop();
        drop(self.relocations);
        let catalogue = self.catalogue.into_inner();
        drop(catalogue.by_id);
        let mut first_error = None;
        for (_, topic) in catalogue.by_name {
            let partitions = match Arc::try_unwrap(topic) {
                Ok(topic) => topic.partitions,
                Err(shared) => shared.partitions.clone(),
            };
            for partition in partitions {
                let (name, index) = (partition.topic.clone(), partition.index);
                let result = match Arc::try_unwrap(partition) {
                    Ok(p) => p.into_log().close(),
                    Err(shared) => shared.sync_handle().map_or(Ok(()), |h| h.sync()),
                };
                if let Err(e) = result {
                    warn!(topic = %name, partition = index, error = %e, "closing the partition log failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Writes `catalogue` to `topics.json` atomically.
    fn persist(&self, catalogue: &Catalogue) -> Result<(), MetaError> {
        let file = CatalogueFile {
            version: 1,
            topics: catalogue
                .by_name
                .values()
                .map(|t| TopicRecord {
                    name: t.name.clone(),
                    id: t.id,
                    partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
                    configs: t.configs.clone(),
                    internal: t.internal,
                })
                .collect(),
        };
        store::write_json(&self.data_dir.join("meta").join("topics.json"), &file)?;
        Ok(())
    }
}

fn open_partition(
    log_dir: &Path,
    topic: &str,
    index: i32,
    config: &LogConfig,
) -> Result<Arc<Partition>, MetaError> {
    let dir = partition_dir(log_dir, topic, index);
    Ok(Arc::new(Partition::open(
        topic,
        index,
        &dir,
        config.clone(),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Metadata {
        Metadata::open(dir, &[], LogConfig::default()).expect("open catalogue")
    }

    #[test]
    fn topics_survive_reopen_and_deletes_stick() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = open(dir.path());
        let configs = BTreeMap::from([("retention.ms".to_owned(), "1000".to_owned())]);
        let created = meta
            .create_topic("orders", 3, 1, configs, false)
            .expect("create");
        meta.create_internal_topic("__internal", 2, BTreeMap::new())
            .expect("internal");
        meta.create_topic("gone", 1, -1, BTreeMap::new(), false)
            .expect("create");
        meta.create_partitions("orders", 4, false).expect("grow");
        meta.delete_topic("gone").expect("delete");
        meta.close().expect("close");

        let meta = open(dir.path());
        let orders = meta.topic("orders").expect("persisted");
        assert_eq!(orders.id, created.id);
        assert_eq!(orders.partitions.len(), 4);
        assert_eq!(orders.log_config.retention_ms, 1000);
        assert!(meta.topic_by_id(created.id).is_some());
        assert!(meta.topic("__internal").expect("internal").internal);
        assert!(meta.topic("gone").is_none());
        assert!(!partition_dir(dir.path(), "gone", 0).exists());
        assert!(matches!(
            meta.create_partitions("orders", 2, false),
            Err(MetaError::InvalidPartitions(2, _))
        ));
    }

    #[test]
    fn invalid_requests_are_refused_without_side_effects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = open(dir.path());
        for name in ["", ".", "..", "a/b", "sp ace", &"x".repeat(250)] {
            assert!(matches!(
                meta.create_topic(name, 1, 1, BTreeMap::new(), false),
                Err(MetaError::InvalidTopic { .. })
            ));
        }
        assert!(matches!(
            meta.create_topic("t", 0, 1, BTreeMap::new(), false),
            Err(MetaError::InvalidPartitions(0, _))
        ));
        assert!(matches!(
            meta.create_topic("t", 1, 3, BTreeMap::new(), false),
            Err(MetaError::InvalidReplicationFactor(3))
        ));
        let checked = meta
            .create_topic("t", 2, 1, BTreeMap::new(), true)
            .expect("validate only");
        assert!(checked.partitions.is_empty());
        assert!(meta.topic("t").is_none());
        assert!(!partition_dir(dir.path(), "t", 0).exists());
    }
}
