//! Broker settings. The `sluice` binary fills these from flags, environment and `sluice.toml`.
//!
//! Every settings type lives here, including those of the coordinators and the TLS listeners
//! (re-exported where they are used), so that this module is the bottom layer: it depends on no
//! other module of the crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sluice_log::LogConfig;

/// When an `acks=-1` produce is acknowledged relative to fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsyncPolicy {
    /// acks=-1 waits for the data to be fsynced (group commit); acks=1 waits only for the write.
    /// The default: an acknowledged acks=all message survives power loss.
    Always,
    /// Nothing waits for fsync; the flusher syncs every `flush_interval`. Faster, but an
    /// acknowledged message may be lost if the machine (not just the process) crashes.
    Interval,
}

/// Everything a broker needs to start.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// This broker's node id (Kafka `node.id`).
    pub node_id: i32,
    /// The cluster id reported in Metadata and DescribeCluster; persisted on first start.
    pub cluster_id: Option<String>,
    /// Address to listen on for Kafka clients.
    pub listen: SocketAddr,
    /// Host and port clients are told to connect to (defaults to `listen`).
    pub advertised: Option<(String, u16)>,
    /// Root of all data: metadata files under `<data_dir>/meta/`, and the partitions
    /// (`<data_dir>/<topic>-<partition>/`) unless `log_dirs` is set.
    pub data_dir: PathBuf,
    /// `log.dirs`: the directories partitions live in, usually one per disk; empty means
    /// `data_dir`. A new partition goes to the one with the fewest partitions;
    /// AlterReplicaLogDirs moves partitions between them.
    pub log_dirs: Vec<PathBuf>,
    /// `replica.alter.log.dirs.io.max.bytes.per.second`: the copying rate of all partition
    /// moves between log directories together (`None`: unlimited).
    pub replica_alter_log_dirs_io_max_bytes_per_second: Option<u64>,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of an auto-created topic or a CreateTopics with -1.
    pub default_partitions: i32,
    /// Broker-wide log defaults that topic configs override.
    pub log_defaults: LogConfig,
    /// fsync policy for acknowledgements.
    pub fsync_policy: FsyncPolicy,
    /// With [`FsyncPolicy::Interval`], how often the flusher syncs.
    pub flush_interval: Duration,
    /// `socket.request.max.bytes`: larger requests close the connection (default 100 MiB).
    pub socket_request_max_bytes: usize,
    /// Serve the PLAINTEXT listener on `listen` (default true). Off, clients can only come in
    /// over the configured `listeners` (e.g. SSL), and at least one must exist.
    pub plaintext: bool,
    /// `queued.max.request.bytes`: bytes of large requests being read and of requests being
    /// processed, all connections together; reading pauses while they are spent (256 MiB).
    pub queued_max_request_bytes: usize,
    /// `fetch.max.bytes`: most record bytes one fetch response carries, whatever the client
    /// asks (default 55 MiB, as Kafka).
    pub fetch_max_bytes: usize,
    /// Fetched record bytes that may be in memory at once on their way to TLS connections
    /// (plaintext ones `sendfile` them; default 256 MiB).
    pub fetch_memory_bytes: usize,
    /// `connections.max.idle.ms`: a connection with nothing to do for this long is closed
    /// (default 10 minutes, as Kafka).
    pub connections_max_idle: Duration,
    /// A request whose bytes stop arriving for this long closes its connection (default 30 s).
    pub request_read_timeout: Duration,
    /// `max.connections`: connections accepted at once over all listeners (default 10,000,
    /// lowered at start to half the process's open-file limit).
    pub max_connections: usize,
    /// `max.connections.per.ip`: connections accepted at once from one address (default 1,000).
    pub max_connections_per_ip: usize,
    /// How often retention, compaction and segment-age rolls run.
    pub housekeeping_interval: Duration,
    /// Consumer group coordinator settings (`offsets.*`, `group.*`).
    pub groups: GroupConfig,
    /// Transaction coordinator settings.
    pub transactions: TxnConfig,
    /// Named listeners besides the PLAINTEXT `listen` one (Kafka `listeners`), e.g. SSL.
    pub listeners: Vec<ListenerConfig>,
    /// ACL authorization; `None` allows every request (no `authorizer.class.name`).
    pub authorizer: Option<AuthorizerConfig>,
    /// `ssl.principal.mapping.rules` (`None`: `DEFAULT`, the certificate subject as is).
    pub ssl_principal_mapping_rules: Option<String>,
    /// SASL settings of the SASL_PLAINTEXT and SASL_SSL listeners.
    pub sasl: SaslConfig,
    /// Run-time control of the process's log levels (the BROKER_LOGGER config resource);
    /// `None` when the embedding program does not offer it.
    pub log_levels: Option<std::sync::Arc<dyn LogLevels>>,
}

/// Run-time control of log levels, which the program that installed the logger provides
/// (Kafka's BROKER_LOGGER resource: DescribeConfigs lists the loggers, IncrementalAlterConfigs
/// sets or removes their levels).
pub trait LogLevels: Send + Sync + std::fmt::Debug {
    /// The root level (named `root`) and every logger with a level of its own.
    fn levels(&self) -> Vec<(String, String)>;
    /// Sets (`Some`) or removes (`None`, so the root level applies again) the levels of
    /// loggers, all or none: a change naming an invalid logger or level applies nothing. With
    /// `validate_only`, only checks.
    fn apply(
        &self,
        changes: &[(String, Option<String>)],
        validate_only: bool,
    ) -> Result<(), String>;
}

/// SASL settings (Kafka's `sasl.*` broker configs), shared by every SASL listener.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SaslConfig {
    /// `sasl.enabled.mechanisms`; `None`: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, plus OAUTHBEARER
    /// when a token key is configured.
    pub enabled_mechanisms: Option<Vec<sluice_sasl::Mechanism>>,
    /// A JWKS file whose signature keys OAUTHBEARER tokens may be signed with.
    pub oauthbearer_jwks: Option<PathBuf>,
    /// A PEM file of `PUBLIC KEY`s OAUTHBEARER tokens may be signed with (e.g. the KSS token
    /// issuer's key).
    pub oauthbearer_public_key: Option<PathBuf>,
    /// What OAUTHBEARER tokens must say (audience, issuer, principal claim, clock skew).
    pub oauthbearer: sluice_sasl::JwtValidatorConfig,
    /// `connections.max.reauth.ms` (KIP-368): a SASL session ends this long after it
    /// authenticated (or when its token expires, if sooner) unless the client re-authenticates;
    /// `None` (Kafka's 0): sessions never expire.
    pub max_reauth: Option<Duration>,
}

/// One named listener: where it listens, what clients are told, and its TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Listener name, e.g. `SSL` (shown in logs).
    pub name: String,
    /// Address to bind (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Host and port advertised to clients that connect here (defaults to the bound address).
    pub advertised: Option<(String, u16)>,
    /// TLS settings; `None` is a plaintext listener.
    pub tls: Option<TlsSettings>,
    /// Clients authenticate with SASL (SASL_PLAINTEXT, or SASL_SSL with `tls`).
    pub sasl: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            cluster_id: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised: None,
            data_dir: PathBuf::from("sluice-data"),
            log_dirs: Vec::new(),
            replica_alter_log_dirs_io_max_bytes_per_second: None,
            auto_create_topics: true,
            default_partitions: 1,
            log_defaults: LogConfig::default(),
            fsync_policy: FsyncPolicy::Always,
            flush_interval: Duration::from_millis(1000),
            socket_request_max_bytes: 100 * 1024 * 1024,
            plaintext: true,
            queued_max_request_bytes: 256 << 20,
            fetch_max_bytes: 55 << 20,
            fetch_memory_bytes: 256 << 20,
            connections_max_idle: Duration::from_secs(600),
            request_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            housekeeping_interval: Duration::from_secs(30),
            groups: GroupConfig::default(),
            transactions: TxnConfig::default(),
            listeners: Vec::new(),
            authorizer: None,
            ssl_principal_mapping_rules: None,
            sasl: SaslConfig::default(),
            log_levels: None,
        }
    }
}

/// Settings of the group coordinator, mirroring Kafka's broker configs of the same names.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions` (default 50, as Kafka). Only used when the topic is
    /// created; an existing `__consumer_offsets` keeps its partition count.
    pub offsets_topic_partitions: i32,
    /// `offsets.topic.segment.bytes` (default 100 MiB).
    pub offsets_topic_segment_bytes: u64,
    /// `group.initial.rebalance.delay.ms` (default 3 s): how long a group formed from scratch
    /// waits for more members before its first rebalance completes.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms` (default 6 s).
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms` (default 30 min).
    pub max_session_timeout: Duration,
    /// `offsets.retention.minutes` (default 7 days): how long offsets of an empty group live.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms` (default 10 min).
    pub offsets_retention_check_interval: Duration,
    /// `offset.metadata.max.bytes` (default 4096).
    pub offset_metadata_max_bytes: usize,
    /// How often deadlines and sessions are checked (not a Kafka setting; default 100 ms).
    pub tick_interval: Duration,
    /// `group.consumer.session.timeout.ms` for KIP-848 members (default 45 s).
    pub consumer_session_timeout: Duration,
    /// `group.consumer.heartbeat.interval.ms` for KIP-848 members (default 5 s).
    pub consumer_heartbeat_interval: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            offsets_topic_partitions: 50,
            offsets_topic_segment_bytes: 100 * 1024 * 1024,
            initial_rebalance_delay: Duration::from_millis(3000),
            min_session_timeout: Duration::from_millis(6000),
            max_session_timeout: Duration::from_millis(1_800_000),
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            offsets_retention_check_interval: Duration::from_secs(600),
            offset_metadata_max_bytes: 4096,
            tick_interval: Duration::from_millis(100),
            consumer_session_timeout: Duration::from_secs(45),
            consumer_heartbeat_interval: Duration::from_secs(5),
        }
    }
}

/// Settings of the transaction coordinator, mirroring Kafka's broker configs.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions` (default 50); only used when the topic is created.
    pub state_log_partitions: i32,
    /// `transaction.state.log.segment.bytes` (default 100 MiB).
    pub state_log_segment_bytes: u64,
    /// `transaction.max.timeout.ms` (default 15 min): the largest `transaction.timeout.ms` a
    /// producer may ask for.
    pub max_timeout: Duration,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (default 10 s).
    pub abort_timed_out_interval: Duration,
    /// `transactional.id.expiration.ms` (default 7 days): idle transactional ids are removed.
    pub id_expiration: Duration,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            state_log_partitions: 50,
            state_log_segment_bytes: 100 * 1024 * 1024,
            max_timeout: Duration::from_secs(900),
            abort_timed_out_interval: Duration::from_secs(10),
            id_expiration: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Authorizer settings (`super.users`, `allow.everyone.if.no.acl.found`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Principals allowed everything regardless of ACLs, e.g. `User:admin`.
    pub super_users: Vec<String>,
    /// Allow an operation on a resource that has no ACLs at all (Kafka default: false).
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerConfig {
    /// Parses Kafka's `super.users` value: principals separated by `;`.
    pub fn parse_super_users(value: &str) -> Vec<String> {
        value
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Whether clients of a listener must present a certificate (`ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No certificate is asked for; every client is `User:ANONYMOUS`.
    #[default]
    None,
    /// A certificate is asked for and verified if sent; clients without one are anonymous.
    Requested,
    /// A certificate verified against the CA bundle is mandatory.
    Required,
}

impl ClientAuth {
    /// Parses Kafka's `ssl.client.auth` values (`none`, `requested`, `required`).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" => Some(ClientAuth::None),
            "requested" => Some(ClientAuth::Requested),
            "required" => Some(ClientAuth::Required),
            _ => None,
        }
    }
}

/// The PEM files and client-auth mode of one SSL listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Server certificate chain (leaf first).
    pub cert: PathBuf,
    /// Server private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA bundle that client certificates are verified against.
    pub ca: Option<PathBuf>,
    /// Whether a client certificate is required, requested or not asked for.
    pub client_auth: ClientAuth,
}
