//! Broker settings from flags, environment and `sluice.toml`, merged into a [`BrokerConfig`].
//!
//! Precedence is flag > environment > file > built-in default. clap already resolves flag over
//! environment (every field carries an `env`), so [`BrokerSettings`] parsed from the command
//! line holds the upper two layers; [`BrokerSettings::or`] lays it over the file's `[broker]`
//! table and [`BrokerSettings::resolve`] fills what is still unset from
//! [`BrokerConfig::default`]. One struct serves both clap and serde so a setting cannot exist in
//! one source and be forgotten in the other.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use sluice_broker::config::FsyncPolicy;
use sluice_broker::BrokerConfig;
use sluice_log::{CleanupPolicy, TimestampType};

/// The file read when no `--config` is given, if it exists in the working directory.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "sluice.toml";

/// The whole `sluice.toml`: one table per platform component.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// The `[broker]` table.
    #[serde(default)]
    pub broker: BrokerSettings,
    /// The `[security]` table: SSL listener and ACLs.
    #[serde(default)]
    pub security: crate::security::SecuritySettings,
}

/// Every broker setting, each optional so that unset layers fall through to the next one.
#[derive(Debug, Default, Clone, PartialEq, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BrokerSettings {
    /// Address to listen on for Kafka clients [default: 127.0.0.1:9092].
    #[arg(long, env = "SLUICE_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<ListenAddr>,
    /// Host and port clients are told to connect to [default: the listen address].
    #[arg(long, env = "SLUICE_ADVERTISED", value_name = "HOST:PORT")]
    pub advertised: Option<Advertised>,
    /// Address of the broker's Prometheus endpoint, `GET /metrics` [default: none].
    #[arg(long, env = "SLUICE_METRICS_LISTEN", value_name = "HOST:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Directory holding all topic data and metadata [default: ./sluice-data].
    #[arg(long, env = "SLUICE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Kafka's `log.dirs`: directories the partitions live in, usually one per disk,
    /// comma-separated; new partitions go to the emptiest and AlterReplicaLogDirs moves them
    /// between these [default: the data directory].
    #[arg(
        long,
        env = "SLUICE_LOG_DIRS",
        value_name = "DIR,...",
        value_delimiter = ','
    )]
    pub log_dirs: Option<Vec<PathBuf>>,
    /// Kafka's `replica.alter.log.dirs.io.max.bytes.per.second`: bytes per second all
    /// partition moves between log directories copy together [default: unlimited].
    #[arg(
        long,
        env = "SLUICE_REPLICA_ALTER_LOG_DIRS_IO_MAX_BYTES_PER_SECOND",
        value_name = "BYTES"
    )]
    pub replica_alter_log_dirs_io_max_bytes_per_second: Option<u64>,
    /// Kafka `node.id` of this broker [default: 1].
    #[arg(long, env = "SLUICE_NODE_ID")]
    pub node_id: Option<i32>,
    /// Cluster id for a fresh data directory [default: generated, then persisted].
    #[arg(long, env = "SLUICE_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Create topics on first Metadata/Produce: true or false [default: true].
    #[arg(
        long,
        env = "SLUICE_AUTO_CREATE_TOPICS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub auto_create_topics: Option<bool>,
    /// Partitions of auto-created topics and of CreateTopics with -1 [default: 1].
    #[arg(long, env = "SLUICE_DEFAULT_PARTITIONS", value_name = "N")]
    pub default_partitions: Option<i32>,
    /// `always`: acks=all waits for fsync (group commit); `interval`: fsync every
    /// flush_interval_ms, faster but a machine crash may lose acknowledged data [default: always].
    #[arg(long, env = "SLUICE_FSYNC", value_name = "always|interval", value_parser = parse_fsync)]
    pub fsync: Option<FsyncPolicy>,
    /// With fsync=interval, milliseconds between fsyncs [default: 1000].
    #[arg(long, env = "SLUICE_FLUSH_INTERVAL_MS", value_name = "MS")]
    pub flush_interval_ms: Option<u64>,
    /// Largest accepted request; bigger ones close the connection [default: 104857600].
    #[arg(long, env = "SLUICE_SOCKET_REQUEST_MAX_BYTES", value_name = "BYTES")]
    pub socket_request_max_bytes: Option<usize>,
    /// Serve the PLAINTEXT listener on `listen`: true or false [default: true]. Turn it off
    /// when clients must come in over the SSL listener only.
    #[arg(
        long,
        env = "SLUICE_PLAINTEXT",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub plaintext: Option<bool>,
    /// `queued.max.request.bytes`: bytes of requests being read or processed, all connections
    /// together; reading pauses while they are spent [default: 268435456].
    #[arg(long, env = "SLUICE_QUEUED_MAX_REQUEST_BYTES", value_name = "N")]
    pub queued_max_request_bytes: Option<usize>,
    /// `fetch.max.bytes`: most record bytes in one fetch response [default: 57671680].
    #[arg(long, env = "SLUICE_FETCH_MAX_BYTES", value_name = "N")]
    pub fetch_max_bytes: Option<usize>,
    /// Fetched record bytes in memory at once on their way to TLS connections (plaintext ones use sendfile) [default: 268435456].
    #[arg(long, env = "SLUICE_FETCH_MEMORY_BYTES", value_name = "N")]
    pub fetch_memory_bytes: Option<usize>,
    /// `connections.max.idle.ms`: close connections idle this long [default: 600000].
    #[arg(long, env = "SLUICE_CONNECTIONS_MAX_IDLE_MS", value_name = "N")]
    pub connections_max_idle_ms: Option<u64>,
    /// Close a connection whose request stops arriving for this long [default: 30000].
    #[arg(long, env = "SLUICE_REQUEST_READ_TIMEOUT_MS", value_name = "N")]
    pub request_read_timeout_ms: Option<u64>,
    /// `max.connections`: connections at once over all listeners [default: 10000, at most
    /// half the open-file limit].
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// `max.connections.per.ip`: connections at once from one address [default: 1000].
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Largest uncompressed size of one record batch; compressed batches inflating past it
    /// are refused (decompression bombs) [default: 67108864].
    #[arg(long, env = "SLUICE_MAX_UNCOMPRESSED_BATCH_BYTES", value_name = "N")]
    pub max_uncompressed_batch_bytes: Option<u64>,
    /// Milliseconds between retention, compaction and segment-age checks [default: 30000].
    #[arg(long, env = "SLUICE_HOUSEKEEPING_INTERVAL_MS", value_name = "MS")]
    pub housekeeping_interval_ms: Option<u64>,
    /// Default `segment.bytes`: roll a segment at this size [default: 1073741824].
    #[arg(long, env = "SLUICE_SEGMENT_BYTES", value_name = "BYTES")]
    pub segment_bytes: Option<u64>,
    /// Default `segment.ms`: roll a segment this old [default: 604800000].
    #[arg(long, env = "SLUICE_SEGMENT_MS", value_name = "MS")]
    pub segment_ms: Option<i64>,
    /// Default `retention.ms`; -1 keeps data forever [default: 604800000].
    #[arg(
        long,
        env = "SLUICE_RETENTION_MS",
        value_name = "MS",
        allow_negative_numbers = true
    )]
    pub retention_ms: Option<i64>,
    /// Default `retention.bytes` per partition; -1 is unlimited [default: -1].
    #[arg(
        long,
        env = "SLUICE_RETENTION_BYTES",
        value_name = "BYTES",
        allow_negative_numbers = true
    )]
    pub retention_bytes: Option<i64>,
    /// Default `cleanup.policy`: delete, compact or compact,delete [default: delete].
    #[arg(long, env = "SLUICE_CLEANUP_POLICY", value_name = "POLICY")]
    pub cleanup_policy: Option<Cleanup>,
    /// Default `delete.retention.ms`: how long compaction keeps tombstones [default: 86400000].
    #[arg(long, env = "SLUICE_DELETE_RETENTION_MS", value_name = "MS")]
    pub delete_retention_ms: Option<i64>,
    /// Default `min.compaction.lag.ms` [default: 0].
    #[arg(long, env = "SLUICE_MIN_COMPACTION_LAG_MS", value_name = "MS")]
    pub min_compaction_lag_ms: Option<i64>,
    /// Default `max.message.bytes`: largest accepted record batch [default: 1048588].
    #[arg(long, env = "SLUICE_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<u32>,
    /// Default `index.interval.bytes` between sparse index entries [default: 4096].
    #[arg(long, env = "SLUICE_INDEX_INTERVAL_BYTES", value_name = "BYTES")]
    pub index_interval_bytes: Option<u32>,
    /// Default `segment.index.bytes`: maximum index file size [default: 10485760].
    #[arg(long, env = "SLUICE_SEGMENT_INDEX_BYTES", value_name = "BYTES")]
    pub segment_index_bytes: Option<u32>,
    /// Default `message.timestamp.type`: CreateTime or LogAppendTime [default: CreateTime].
    #[arg(long, env = "SLUICE_MESSAGE_TIMESTAMP_TYPE", value_name = "TYPE")]
    pub message_timestamp_type: Option<Timestamps>,
    /// `group.initial.rebalance.delay.ms`: how long a new group waits for more members before
    /// its first rebalance [default: 3000].
    #[arg(
        long,
        env = "SLUICE_GROUP_INITIAL_REBALANCE_DELAY_MS",
        value_name = "MS"
    )]
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// `group.min.session.timeout.ms`: shortest session timeout a consumer may ask for
    /// [default: 6000].
    #[arg(long, env = "SLUICE_GROUP_MIN_SESSION_TIMEOUT_MS", value_name = "MS")]
    pub group_min_session_timeout_ms: Option<u64>,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets` when it is created
    /// [default: 50].
    #[arg(long, env = "SLUICE_OFFSETS_TOPIC_NUM_PARTITIONS", value_name = "N")]
    pub offsets_topic_num_partitions: Option<i32>,
    /// `offsets.retention.minutes`: how long committed offsets of an empty group are kept
    /// [default: 10080].
    #[arg(long, env = "SLUICE_OFFSETS_RETENTION_MINUTES", value_name = "MINUTES")]
    pub offsets_retention_minutes: Option<u64>,
    /// `transaction.max.timeout.ms`: the largest `transaction.timeout.ms` a producer may ask
    /// for [default: 900000].
    #[arg(long, env = "SLUICE_TRANSACTION_MAX_TIMEOUT_MS", value_name = "MS")]
    pub transaction_max_timeout_ms: Option<u64>,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often transactions
    /// open longer than their timeout are aborted [default: 10000].
    #[arg(
        long,
        env = "SLUICE_TRANSACTION_ABORT_TIMED_OUT_INTERVAL_MS",
        value_name = "MS"
    )]
    pub transaction_abort_timed_out_interval_ms: Option<u64>,
    /// `transactional.id.expiration.ms`: idle transactional ids are forgotten after this long
    /// [default: 604800000].
    #[arg(long, env = "SLUICE_TRANSACTIONAL_ID_EXPIRATION_MS", value_name = "MS")]
    pub transactional_id_expiration_ms: Option<u64>,
    /// `transaction.state.log.num.partitions`: partitions of `__transaction_state` when it is
    /// created [default: 50].
    #[arg(
        long,
        env = "SLUICE_TRANSACTION_STATE_LOG_NUM_PARTITIONS",
        value_name = "N"
    )]
    pub transaction_state_log_num_partitions: Option<i32>,
}

impl BrokerSettings {
    /// Fills every setting unset in `self` from `lower` (the next layer down).
    pub(crate) fn or(self, lower: BrokerSettings) -> BrokerSettings {
        BrokerSettings {
            listen: self.listen.or(lower.listen),
            advertised: self.advertised.or(lower.advertised),
            data_dir: self.data_dir.or(lower.data_dir),
            metrics_listen: self.metrics_listen.or(lower.metrics_listen),
            log_dirs: self.log_dirs.or(lower.log_dirs),
            replica_alter_log_dirs_io_max_bytes_per_second: self
                .replica_alter_log_dirs_io_max_bytes_per_second
                .or(lower.replica_alter_log_dirs_io_max_bytes_per_second),
            node_id: self.node_id.or(lower.node_id),
            cluster_id: self.cluster_id.or(lower.cluster_id),
            auto_create_topics: self.auto_create_topics.or(lower.auto_create_topics),
            default_partitions: self.default_partitions.or(lower.default_partitions),
            fsync: self.fsync.or(lower.fsync),
            flush_interval_ms: self.flush_interval_ms.or(lower.flush_interval_ms),
            socket_request_max_bytes: self
                .socket_request_max_bytes
                .or(lower.socket_request_max_bytes),
            plaintext: self.plaintext.or(lower.plaintext),
            queued_max_request_bytes: self
                .queued_max_request_bytes
                .or(lower.queued_max_request_bytes),
            fetch_max_bytes: self.fetch_max_bytes.or(lower.fetch_max_bytes),
            fetch_memory_bytes: self.fetch_memory_bytes.or(lower.fetch_memory_bytes),
            connections_max_idle_ms: self
                .connections_max_idle_ms
                .or(lower.connections_max_idle_ms),
            request_read_timeout_ms: self
                .request_read_timeout_ms
                .or(lower.request_read_timeout_ms),
            max_connections: self.max_connections.or(lower.max_connections),
            max_connections_per_ip: self.max_connections_per_ip.or(lower.max_connections_per_ip),
            max_uncompressed_batch_bytes: self
                .max_uncompressed_batch_bytes
                .or(lower.max_uncompressed_batch_bytes),
            housekeeping_interval_ms: self
                .housekeeping_interval_ms
                .or(lower.housekeeping_interval_ms),
            segment_bytes: self.segment_bytes.or(lower.segment_bytes),
            segment_ms: self.segment_ms.or(lower.segment_ms),
            retention_ms: self.retention_ms.or(lower.retention_ms),
            retention_bytes: self.retention_bytes.or(lower.retention_bytes),
            cleanup_policy: self.cleanup_policy.or(lower.cleanup_policy),
            delete_retention_ms: self.delete_retention_ms.or(lower.delete_retention_ms),
            min_compaction_lag_ms: self.min_compaction_lag_ms.or(lower.min_compaction_lag_ms),
            max_message_bytes: self.max_message_bytes.or(lower.max_message_bytes),
            group_initial_rebalance_delay_ms: self
                .group_initial_rebalance_delay_ms
                .or(lower.group_initial_rebalance_delay_ms),
            group_min_session_timeout_ms: self
                .group_min_session_timeout_ms
                .or(lower.group_min_session_timeout_ms),
            offsets_topic_num_partitions: self
                .offsets_topic_num_partitions
                .or(lower.offsets_topic_num_partitions),
            offsets_retention_minutes: self
                .offsets_retention_minutes
                .or(lower.offsets_retention_minutes),
            transaction_max_timeout_ms: self
                .transaction_max_timeout_ms
                .or(lower.transaction_max_timeout_ms),
            transaction_abort_timed_out_interval_ms: self
                .transaction_abort_timed_out_interval_ms
                .or(lower.transaction_abort_timed_out_interval_ms),
            transactional_id_expiration_ms: self
                .transactional_id_expiration_ms
                .or(lower.transactional_id_expiration_ms),
            transaction_state_log_num_partitions: self
                .transaction_state_log_num_partitions
                .or(lower.transaction_state_log_num_partitions),
            index_interval_bytes: self.index_interval_bytes.or(lower.index_interval_bytes),
            segment_index_bytes: self.segment_index_bytes.or(lower.segment_index_bytes),
            message_timestamp_type: self.message_timestamp_type.or(lower.message_timestamp_type),
        }
    }

    /// Turns the merged settings into a [`BrokerConfig`], defaulting what is unset and
    /// rejecting values the broker cannot run with (the error names the setting).
    pub(crate) fn resolve(self) -> anyhow::Result<BrokerConfig> {
        let d = BrokerConfig::default();
        let log = d.log_defaults.clone();
        let config = BrokerConfig {
            node_id: at_least("node_id", self.node_id, d.node_id, 0)?,
            cluster_id: self.cluster_id.or(d.cluster_id),
            listen: self.listen.map_or(d.listen, |l| l.0),
            advertised: self.advertised.map(|a| (a.host, a.port)).or(d.advertised),
            data_dir: self.data_dir.unwrap_or(d.data_dir),
            log_dirs: self.log_dirs.unwrap_or(d.log_dirs),
            replica_alter_log_dirs_io_max_bytes_per_second: self
                .replica_alter_log_dirs_io_max_bytes_per_second
                .map(|rate| {
                    at_least(
                        "replica_alter_log_dirs_io_max_bytes_per_second",
                        Some(rate),
                        rate,
                        1,
                    )
                })
                .transpose()?,
            auto_create_topics: self.auto_create_topics.unwrap_or(d.auto_create_topics),
            default_partitions: at_least(
                "default_partitions",
                self.default_partitions,
                d.default_partitions,
                1,
            )?,
            fsync_policy: self.fsync.unwrap_or(d.fsync_policy),
            flush_interval: self
                .flush_interval_ms
                .map(|ms| positive_ms("flush_interval_ms", ms))
                .transpose()?
                .unwrap_or(d.flush_interval),
            socket_request_max_bytes: at_least(
                "socket_request_max_bytes",
                self.socket_request_max_bytes,
                d.socket_request_max_bytes,
                1,
            )?,
            plaintext: self.plaintext.unwrap_or(d.plaintext),
            queued_max_request_bytes: at_least(
                "queued_max_request_bytes",
                self.queued_max_request_bytes,
                d.queued_max_request_bytes,
                1 << 20,
            )?,
            fetch_max_bytes: at_least(
                "fetch_max_bytes",
                self.fetch_max_bytes,
                d.fetch_max_bytes,
                1,
            )?,
            fetch_memory_bytes: at_least(
                "fetch_memory_bytes",
                self.fetch_memory_bytes,
                d.fetch_memory_bytes,
                1 << 20,
            )?,
            connections_max_idle: self
                .connections_max_idle_ms
                .map(|ms| positive_ms("connections_max_idle_ms", ms))
                .transpose()?
                .unwrap_or(d.connections_max_idle),
            request_read_timeout: self
                .request_read_timeout_ms
                .map(|ms| positive_ms("request_read_timeout_ms", ms))
                .transpose()?
                .unwrap_or(d.request_read_timeout),
            max_connections: at_least(
                "max_connections",
                self.max_connections,
                d.max_connections,
                1,
            )?,
            max_connections_per_ip: at_least(
                "max_connections_per_ip",
                self.max_connections_per_ip,
                d.max_connections_per_ip,
                1,
            )?,
            housekeeping_interval: self
                .housekeeping_interval_ms
                .map(|ms| positive_ms("housekeeping_interval_ms", ms))
                .transpose()?
                .unwrap_or(d.housekeeping_interval),
            groups: sluice_broker::group::GroupConfig {
                initial_rebalance_delay: self
                    .group_initial_rebalance_delay_ms
                    .map_or(d.groups.initial_rebalance_delay, Duration::from_millis),
                min_session_timeout: self
                    .group_min_session_timeout_ms
                    .map_or(d.groups.min_session_timeout, Duration::from_millis),
                offsets_topic_partitions: at_least(
                    "offsets_topic_num_partitions",
                    self.offsets_topic_num_partitions,
                    d.groups.offsets_topic_partitions,
                    1,
                )?,
                offsets_retention: at_least(
                    "offsets_retention_minutes",
                    self.offsets_retention_minutes,
                    d.groups.offsets_retention.as_secs() / 60,
                    1,
                )
                .map(|m| Duration::from_secs(m.saturating_mul(60)))?,
                ..d.groups.clone()
            },
            transactions: sluice_broker::txn::TxnConfig {
                max_timeout: self
                    .transaction_max_timeout_ms
                    .map(|ms| positive_ms("transaction_max_timeout_ms", ms))
                    .transpose()?
                    .unwrap_or(d.transactions.max_timeout),
                abort_timed_out_interval: self
                    .transaction_abort_timed_out_interval_ms
                    .map(|ms| positive_ms("transaction_abort_timed_out_interval_ms", ms))
                    .transpose()?
                    .unwrap_or(d.transactions.abort_timed_out_interval),
                id_expiration: self
                    .transactional_id_expiration_ms
                    .map(|ms| positive_ms("transactional_id_expiration_ms", ms))
                    .transpose()?
                    .unwrap_or(d.transactions.id_expiration),
                state_log_partitions: at_least(
                    "transaction_state_log_num_partitions",
                    self.transaction_state_log_num_partitions,
                    d.transactions.state_log_partitions,
                    1,
                )?,
                ..d.transactions.clone()
            },
            log_defaults: sluice_log::LogConfig {
                segment_bytes: at_least("segment_bytes", self.segment_bytes, log.segment_bytes, 1)?,
                segment_ms: at_least("segment_ms", self.segment_ms, log.segment_ms, 1)?,
                retention_ms: at_least("retention_ms", self.retention_ms, log.retention_ms, -1)?,
                retention_bytes: at_least(
                    "retention_bytes",
                    self.retention_bytes,
                    log.retention_bytes,
                    -1,
                )?,
                cleanup_policy: self.cleanup_policy.map_or(log.cleanup_policy, |c| c.0),
                delete_retention_ms: at_least(
                    "delete_retention_ms",
                    self.delete_retention_ms,
                    log.delete_retention_ms,
                    0,
                )?,
                min_compaction_lag_ms: at_least(
                    "min_compaction_lag_ms",
                    self.min_compaction_lag_ms,
                    log.min_compaction_lag_ms,
                    0,
                )?,
                max_message_bytes: at_least(
                    "max_message_bytes",
                    self.max_message_bytes,
                    log.max_message_bytes,
                    1,
                )?,
                index_interval_bytes: at_least(
                    "index_interval_bytes",
                    self.index_interval_bytes,
                    log.index_interval_bytes,
                    1,
                )?,
                segment_index_bytes: at_least(
                    "segment_index_bytes",
                    self.segment_index_bytes,
                    log.segment_index_bytes,
                    1,
                )?,
                timestamp_type: self
                    .message_timestamp_type
                    .map_or(log.timestamp_type, |t| t.0),
                max_uncompressed_batch_bytes: at_least(
                    "max_uncompressed_batch_bytes",
                    self.max_uncompressed_batch_bytes,
                    log.max_uncompressed_batch_bytes,
                    1 << 20,
                )?,
                // Derived from the fsync policy by the broker itself.
                visible_after_sync: log.visible_after_sync,
            },
            // Listeners, TLS, SASL and ACLs come from the `[security]` settings.
            listeners: Vec::new(),
            authorizer: None,
            ssl_principal_mapping_rules: None,
            sasl: Default::default(),
            // Installed by `sluice broker` / `sluice up`, which own the logger.
            log_levels: None,
        };
        Ok(config)
    }
}

/// The value of a numeric setting, or its default; below `min` is an error naming the setting.
fn at_least<T>(key: &str, value: Option<T>, default: T, min: T) -> anyhow::Result<T>
where
    T: PartialOrd + fmt::Display + Copy,
{
    match value {
        Some(v) if v < min => bail!(
            "invalid broker setting {key} = {v}: expected a number >= {min} \
             (set by --{flag}, SLUICE_{env} or `{key}` in [broker] of {DEFAULT_CONFIG_FILE})",
            flag = key.replace('_', "-"),
            env = key.to_uppercase(),
        ),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

/// A strictly positive millisecond interval.
fn positive_ms(key: &str, ms: u64) -> anyhow::Result<Duration> {
    at_least(key, Some(ms), 1, 1).map(Duration::from_millis)
}

/// Reads the config file: `explicit` must exist; without it `./sluice.toml` is used if present.
/// Returns the file's path with its contents, or `None` when there is no file.
pub(crate) fn load_file(explicit: Option<&Path>) -> anyhow::Result<Option<(PathBuf, ConfigFile)>> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            let implicit = PathBuf::from(DEFAULT_CONFIG_FILE);
            if !implicit.is_file() {
                return Ok(None);
            }
            implicit
        }
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read config file {}", path.display()))?;
    let file = parse_file(&text)
        .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))?;
    Ok(Some((path, file)))
}

/// Parses the text of a config file; the error names the offending key and the expected form.
pub(crate) fn parse_file(text: &str) -> Result<ConfigFile, toml::de::Error> {
    toml::from_str(text)
}

/// Resolves the broker configuration from the command line (flags and env) and the config file.
pub(crate) fn broker_config(
    cli: BrokerSettings,
    file: Option<&(PathBuf, ConfigFile)>,
) -> anyhow::Result<BrokerConfig> {
    let file_layer = file.map(|(_, f)| f.broker.clone()).unwrap_or_default();
    let resolved = cli.or(file_layer).resolve();
    match file {
        Some((path, _)) => resolved.with_context(|| format!("with config file {}", path.display())),
        None => resolved,
    }
}

/// The broker's metrics address: the command line's, else the config file's.
pub(crate) fn metrics_listen(
    cli: &BrokerSettings,
    file: Option<&(PathBuf, ConfigFile)>,
) -> Option<std::net::SocketAddr> {
    cli.metrics_listen
        .or_else(|| file.and_then(|(_, f)| f.broker.metrics_listen))
}

/// Implements `TryFrom<String>` through `FromStr` so serde reports the same message as clap.
macro_rules! deserialize_via_from_str {
    ($($ty:ty),*) => {$(
        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                s.parse()
            }
        }
    )*};
}
deserialize_via_from_str!(ListenAddr, Advertised, Cleanup, Timestamps);

/// A listen address given as `HOST:PORT`; a host name is resolved once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct ListenAddr(pub SocketAddr);

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let expected = "expected HOST:PORT such as 127.0.0.1:9092 or 0.0.0.0:9092";
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(ListenAddr(addr));
        }
        let mut addrs = s
            .to_socket_addrs()
            .map_err(|e| format!("cannot use {s:?} as a listen address ({e}); {expected}"))?;
        addrs
            .next()
            .map(ListenAddr)
            .ok_or_else(|| format!("{s:?} resolves to no address; {expected}"))
    }
}

/// The `HOST:PORT` clients are told to connect to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Advertised {
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl FromStr for Advertised {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("invalid advertised address {s:?}: expected HOST:PORT such as broker.example.com:9092")
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Advertised {
            host: host.to_string(),
            port,
        })
    }
}

/// A `cleanup.policy` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Cleanup(pub CleanupPolicy);

impl FromStr for Cleanup {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts: Vec<&str> = s.split(',').map(str::trim).collect();
        parts.sort_unstable();
        parts.dedup();
        match parts.as_slice() {
            ["delete"] => Ok(Cleanup(CleanupPolicy::Delete)),
            ["compact"] => Ok(Cleanup(CleanupPolicy::Compact)),
            ["compact", "delete"] => Ok(Cleanup(CleanupPolicy::CompactDelete)),
            _ => Err(format!(
                "invalid cleanup policy {s:?}: expected delete, compact or compact,delete"
            )),
        }
    }
}

/// A `message.timestamp.type` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Timestamps(pub TimestampType);

impl FromStr for Timestamps {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "CreateTime" => Ok(Timestamps(TimestampType::CreateTime)),
            "LogAppendTime" => Ok(Timestamps(TimestampType::LogAppendTime)),
            _ => Err(format!(
                "invalid message timestamp type {s:?}: expected CreateTime or LogAppendTime"
            )),
        }
    }
}

/// Parses the `--fsync` / `SLUICE_FSYNC` value.
fn parse_fsync(s: &str) -> Result<FsyncPolicy, String> {
    match s {
        "always" => Ok(FsyncPolicy::Always),
        "interval" => Ok(FsyncPolicy::Interval),
        _ => Err(format!(
            "invalid fsync policy {s:?}: expected always or interval"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use clap::Parser;

    use super::*;

    /// Parses just the broker settings, as `sluice broker` does.
    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(flatten)]
        settings: BrokerSettings,
    }

    /// Tests that set or read (through clap) SLUICE_* variables run one at a time.
    static ENV_LOCK: Mutex<()> = Mutex::new(());

    fn file(text: &str) -> (PathBuf, ConfigFile) {
        match parse_file(text) {
            Ok(f) => (PathBuf::from("test.toml"), f),
            Err(e) => panic!("test config should parse: {e}"),
        }
    }

    /// Parses flags; holds [`ENV_LOCK`] because clap also reads SLUICE_* variables.
    fn parse_args(args: &[&str]) -> BrokerSettings {
        let _guard = ENV_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let argv = std::iter::once("sluice").chain(args.iter().copied());
        match TestCli::try_parse_from(argv) {
            Ok(cli) => cli.settings,
            Err(e) => panic!("test arguments should parse: {e}"),
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() -> anyhow::Result<()> {
        let config = broker_config(BrokerSettings::default(), None)?;
        let d = BrokerConfig::default();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 9092)));
        assert_eq!(config.data_dir, PathBuf::from("sluice-data"));
        assert_eq!(config.fsync_policy, d.fsync_policy);
        assert_eq!(config.log_defaults, d.log_defaults);
        Ok(())
    }

    #[test]
    fn file_overrides_defaults_and_flags_override_file() -> anyhow::Result<()> {
        let f = file(
            r#"
            [broker]
            listen = "127.0.0.1:19092"
            data_dir = "/from/file"
            default_partitions = 6
            fsync = "interval"
            segment_bytes = 4096
            cleanup_policy = "compact,delete"
            "#,
        );
        let cli = parse_args(&["--data-dir", "/from/flag", "--segment-bytes", "8192"]);
        let config = broker_config(cli, Some(&f))?;
        assert_eq!(config.listen.port(), 19092, "file beats default");
        assert_eq!(config.default_partitions, 6);
        assert_eq!(config.fsync_policy, FsyncPolicy::Interval);
        assert_eq!(
            config.data_dir,
            PathBuf::from("/from/flag"),
            "flag beats file"
        );
        assert_eq!(config.log_defaults.segment_bytes, 8192);
        assert_eq!(
            config.log_defaults.cleanup_policy,
            CleanupPolicy::CompactDelete
        );
        Ok(())
    }

    #[test]
    fn env_sits_between_flag_and_file() -> anyhow::Result<()> {
        let _guard = ENV_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let f = file("[broker]\ndefault_partitions = 2\nnode_id = 7\nauto_create_topics = true\n");
        std::env::set_var("SLUICE_DEFAULT_PARTITIONS", "3");
        std::env::set_var("SLUICE_NODE_ID", "8");
        std::env::set_var("SLUICE_AUTO_CREATE_TOPICS", "false");
        let parsed = TestCli::try_parse_from(["sluice", "--node-id", "9"]);
        std::env::remove_var("SLUICE_DEFAULT_PARTITIONS");
        std::env::remove_var("SLUICE_NODE_ID");
        std::env::remove_var("SLUICE_AUTO_CREATE_TOPICS");
        let config = broker_config(parsed?.settings, Some(&f))?;
        assert_eq!(config.default_partitions, 3, "env beats file");
        assert!(!config.auto_create_topics, "env beats file");
        assert_eq!(config.node_id, 9, "flag beats env");
        Ok(())
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse_file("[broker]\nlisten = \"127.0.0.1:1\"\nsegmnet_bytes = 5\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("segmnet_bytes"), "{err}");
        let err = parse_file("[brokr]\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("brokr"), "{err}");
    }

    #[test]
    fn bad_value_names_key_and_expected_form() {
        let err = parse_file("[broker]\nfsync = \"sometimes\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("fsync"), "{err}");
        assert!(err.contains("interval"), "{err}");
        let err = parse_file("[broker]\nlisten = \"nonsense\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("listen") && err.contains("HOST:PORT"), "{err}");
    }

    #[test]
    fn out_of_range_value_names_key() {
        let f = file("[broker]\ndefault_partitions = 0\n");
        let err = broker_config(BrokerSettings::default(), Some(&f))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(
            err.contains("default_partitions") && err.contains(">= 1"),
            "{err}"
        );
        assert!(err.contains("test.toml"), "{err}");
    }

    #[test]
    fn example_config_file_parses_to_the_defaults() -> anyhow::Result<()> {
        let text = include_str!("../../../sluice.example.toml");
        let example = broker_config(BrokerSettings::default(), Some(&file(text)))?;
        let defaults = BrokerConfig::default();
        assert_eq!(example.listen, defaults.listen);
        assert_eq!(example.data_dir, PathBuf::from("./sluice-data"));
        assert_eq!(example.node_id, defaults.node_id);
        assert_eq!(example.auto_create_topics, defaults.auto_create_topics);
        assert_eq!(example.default_partitions, defaults.default_partitions);
        assert_eq!(example.fsync_policy, defaults.fsync_policy);
        assert_eq!(example.flush_interval, defaults.flush_interval);
        assert_eq!(
            example.transactions.max_timeout,
            defaults.transactions.max_timeout
        );
        assert_eq!(
            example.transactions.abort_timed_out_interval,
            defaults.transactions.abort_timed_out_interval
        );
        assert_eq!(
            example.transactions.id_expiration,
            defaults.transactions.id_expiration
        );
        assert_eq!(
            example.transactions.state_log_partitions,
            defaults.transactions.state_log_partitions
        );
        assert_eq!(
            example.socket_request_max_bytes,
            defaults.socket_request_max_bytes
        );
        assert_eq!(
            example.housekeeping_interval,
            defaults.housekeeping_interval
        );
        assert_eq!(example.log_defaults, defaults.log_defaults);
        Ok(())
    }

    #[test]
    fn advertised_and_cleanup_forms() {
        assert_eq!(
            "[::1]:9093".parse::<Advertised>(),
            Ok(Advertised {
                host: "::1".into(),
                port: 9093
            })
        );
        assert!("nohost".parse::<Advertised>().is_err());
        assert!(":9092".parse::<Advertised>().is_err());
        assert_eq!(
            "delete, compact".parse::<Cleanup>(),
            Ok(Cleanup(CleanupPolicy::CompactDelete))
        );
        assert!("compacted".parse::<Cleanup>().is_err());
    }
}
