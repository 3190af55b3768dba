//! Broker settings. The `sluice` binary fills these from flags, environment and `sluice.toml`.

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
    /// Root of all data: `<data_dir>/<topic>-<partition>/` plus metadata files.
    pub data_dir: PathBuf,
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
    /// Record bytes all fetch responses being assembled may hold at once (default 256 MiB).
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
    pub groups: crate::group::GroupConfig,
    /// Transaction coordinator settings.
    pub transactions: crate::txn::TxnConfig,
    /// Named listeners besides the PLAINTEXT `listen` one (Kafka `listeners`), e.g. SSL.
    pub listeners: Vec<ListenerConfig>,
    /// ACL authorization; `None` allows every request (no `authorizer.class.name`).
    pub authorizer: Option<crate::auth::AuthorizerConfig>,
    /// `ssl.principal.mapping.rules` (`None`: `DEFAULT`, the certificate subject as is).
    pub ssl_principal_mapping_rules: Option<String>,
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
    pub tls: Option<crate::net::tls::TlsSettings>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            cluster_id: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised: None,
            data_dir: PathBuf::from("sluice-data"),
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
            groups: crate::group::GroupConfig::default(),
            transactions: crate::txn::TxnConfig::default(),
            listeners: Vec::new(),
            authorizer: None,
            ssl_principal_mapping_rules: None,
        }
    }
}
