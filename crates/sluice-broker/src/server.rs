//! Starting and stopping a broker: catalogue, listener, flusher and housekeeping tasks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_log::CleanupPolicy;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{BrokerConfig, FsyncPolicy};
use crate::durability::{Flusher, FlusherThread};
use crate::group::GroupCoordinator;
use crate::meta::{self, MetaError, Metadata, ProducerIdAllocator};
use crate::state::Broker;
use crate::state_log::StateLogError;

mod scrape;
use crate::txn::TxnCoordinator;

/// How long shutdown waits for connections to answer what they already read.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}; check the path and its permissions")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The catalogue or a partition log could not be loaded.
    #[error("cannot load the catalogue: {0}")]
    Catalogue(#[from] MetaError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}; is another broker running there?")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Consumer group state could not be loaded from `__consumer_offsets`.
    #[error("cannot load consumer groups: {0}")]
    Groups(#[from] StateLogError),
    /// A startup task panicked or was cancelled.
    #[error("startup task failed: {0}")]
    Task(String),
    /// An extra listener could not be set up (TLS files, mapping rules).
    #[error("cannot set up a listener: {0}")]
    Listener(crate::net::listener::ListenerError),
    /// The persisted ACLs could not be loaded.
    #[error("cannot load ACLs: {0}")]
    Acls(#[from] crate::auth::AclError),
    /// SASL credentials or token keys could not be loaded.
    #[error("cannot set up SASL: {0}")]
    Sasl(#[from] crate::auth::SaslSetupError),
    /// The client quota file could not be loaded.
    #[error("cannot load client quotas: {0}")]
    Quotas(#[from] crate::quota::QuotaError),
    /// The flusher thread could not be started.
    #[error("cannot start the flusher thread: {0}")]
    Flusher(#[source] std::io::Error),
}

impl From<crate::net::listener::ListenerError> for StartError {
    fn from(e: crate::net::listener::ListenerError) -> Self {
        match e {
            crate::net::listener::ListenerError::Bind { addr, source, .. } => {
                StartError::Bind { addr, source }
            }
            other => StartError::Listener(other),
        }
    }
}

/// Why a shutdown did not leave every log cleanly closed.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// A log could not be flushed or closed; recovery at the next start repairs its tail.
    #[error("closing the logs failed: {0}; the next start recovers them")]
    Close(#[from] sluice_log::LogError),
    /// The closing task panicked or was cancelled.
    #[error("the task closing the logs failed: {0}")]
    Task(String),
}

/// A running broker. Call [`BrokerHandle::shutdown`] to stop it cleanly.
#[derive(Debug)]
pub struct BrokerHandle {
    broker: Arc<Broker>,
    local_addr: SocketAddr,
    listener_addrs: Vec<(String, SocketAddr)>,
    shutdown: watch::Sender<bool>,
    acceptor: JoinHandle<()>,
    housekeeping: JoinHandle<()>,
    group_maintenance: JoinHandle<()>,
    txn_maintenance: JoinHandle<()>,
    flusher: FlusherThread,
}

impl BrokerHandle {
    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the listener named `name` (e.g. `SSL`) is bound to.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listener_addrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, addr)| addr)
    }

    /// The broker's shared state (for embedding components and tests).
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Stops accepting, lets in-flight requests finish and answer, then flushes, fsyncs and
    /// closes every log.
    pub async fn shutdown(self) -> Result<(), ShutdownError> {
        info!("broker shutting down");
        let _ = self.shutdown.send(true);
        let mut acceptor = self.acceptor;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut acceptor)
            .await
            .is_err()
        {
            warn!("connections did not finish within {SHUTDOWN_GRACE:?}; closing them");
            acceptor.abort();
        }
        if let Err(e) = self.housekeeping.await {
            warn!(error = %e, "housekeeping task failed");
        }
        if let Err(e) = self.txn_maintenance.await {
            warn!(error = %e, "transaction maintenance task failed");
        }
        if let Err(e) = self.group_maintenance.await {
            warn!(error = %e, "group coordinator task failed");
        }
        let flusher = self.flusher;
        if let Err(e) = tokio::task::spawn_blocking(move || flusher.stop()).await {
            warn!(error = %e, "stopping the flusher failed");
        }
        let result = match Arc::try_unwrap(self.broker) {
            Ok(broker) => {
                // Everything else (the group coordinator included) lets go of its partitions
                // first, so that the catalogue owns them alone and can close them.
                let metadata = {
                    let broker = broker;
                    broker.metadata
                };
                match tokio::task::spawn_blocking(move || metadata.close()).await {
                    Ok(closed) => closed.map_err(ShutdownError::from),
                    Err(e) => Err(ShutdownError::Task(e.to_string())),
                }
            }
            Err(shared) => {
                // Someone still holds the broker (an embedding component): make everything
                // durable instead of closing.
                warn!(
                    "broker state still shared at shutdown; syncing logs instead of closing them"
                );
                let flusher =
                    Flusher::new(crate::config::FsyncPolicy::Always, Duration::from_secs(1));
                for topic in shared.metadata.topics() {
                    topic.partitions.iter().for_each(|p| flusher.mark_dirty(p));
                }
                match tokio::task::spawn_blocking(move || flusher.flush_round()).await {
                    Ok(()) => Ok(()),
                    Err(e) => Err(ShutdownError::Task(e.to_string())),
                }
            }
        };
        info!("broker stopped");
        result
    }
}

/// Opens the catalogue, binds the listener and starts the acceptor, flusher and housekeeping.
pub async fn start(mut config: BrokerConfig) -> Result<BrokerHandle, StartError> {
    // With fsync=always consumers see only fsynced records: the policy decides visibility.
    config.log_defaults.visible_after_sync = config.fsync_policy == FsyncPolicy::Always;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let load_config = config.clone();
    // Opening runs log recovery: blocking file I/O, kept off the async threads.
    let (metadata, cluster_id, producer_ids) = tokio::task::spawn_blocking(move || {
        let metadata = Metadata::open(
            &load_config.data_dir,
            &load_config.log_dirs,
            load_config.log_defaults.clone(),
        )?;
        metadata.set_move_throttle(load_config.replica_alter_log_dirs_io_max_bytes_per_second);
        metadata.set_default_partitions(load_config.default_partitions);
        let cluster_id = meta::load_or_create_cluster_id(
            &load_config.data_dir,
            load_config.cluster_id.as_deref(),
        )?;
        let producer_ids = ProducerIdAllocator::open(&load_config.data_dir)?;
        Ok::<_, MetaError>((metadata, cluster_id, producer_ids))
    })
    .await
    .map_err(|e| StartError::Task(e.to_string()))??;

    let listeners = crate::net::listener::bind_all(&config).await?;
    let local_addr = listeners
        .first()
        .map_or(config.listen, |(_, l)| l.local_addr);
    let listener_addrs = listeners
        .iter()
        .map(|(_, l)| (l.name.clone(), l.local_addr))
        .collect();
    let authorizer = match &config.authorizer {
        Some(acl_config) => Some(Arc::new(crate::auth::Authorizer::open(
            acl_config,
            &config.data_dir,
        )?)),
        None => None,
    };
    let sasl = crate::auth::SaslServer::open(&config.sasl, &config.data_dir)?;
    let quotas = crate::quota::QuotaManager::new(crate::quota::QuotaStore::open(&config.data_dir)?);
    let mut config = config;
    if config.advertised.is_none() && config.listen.port() == 0 {
        // Clients must be told the port actually bound.
        config.advertised = Some((local_addr.ip().to_string(), local_addr.port()));
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let flusher = Flusher::new(config.fsync_policy, config.flush_interval);
    let group_config = config.groups.clone();
    let txn_config = config.transactions.clone();
    let state_flusher = flusher.clone();
    // Replaying __consumer_offsets and __transaction_state reads the logs: blocking I/O, kept
    // off the async threads.
    let (metadata, groups, txns) = tokio::task::spawn_blocking(move || {
        let groups = GroupCoordinator::load(&metadata, state_flusher.clone(), &group_config)?;
        let txns = TxnCoordinator::load(&metadata, state_flusher, &txn_config)?;
        Ok::<_, StateLogError>((metadata, groups, txns))
    })
    .await
    .map_err(|e| StartError::Task(e.to_string()))??;
    let group_maintenance = groups.start_maintenance(shutdown_rx.clone());
    let housekeeping_interval = config.housekeeping_interval;
    let connections = Arc::new(crate::net::limits::ConnectionLimits::new(
        crate::net::limits::effective_max_connections(config.max_connections),
        config.max_connections_per_ip,
    ));
    let api_names: Vec<(i16, String)> = crate::handlers::SUPPORTED_APIS
        .iter()
        .map(|(key, _, _)| (*key as i16, format!("{key:?}")))
        .collect();
    let api_names: Vec<(i16, &str)> = api_names.iter().map(|(k, n)| (*k, n.as_str())).collect();
    let metrics = Arc::new(crate::metrics::BrokerMetrics::new(&api_names));
    let broker = Arc::new(Broker {
        request_memory: crate::memory::MemoryBudget::new(config.queued_max_request_bytes),
        fetch_memory: crate::memory::MemoryBudget::new(config.fetch_memory_bytes),
        fetch_sessions: crate::fetch_sessions::FetchSessions::new(Default::default()),
        config,
        cluster_id,
        metadata,
        flusher: flusher.clone(),
        groups,
        txns,
        producer_ids,
        authorizer,
        sasl,
        quotas,
        shutdown: shutdown_rx.clone(),
        metrics,
    });
    scrape::register(&broker, &flusher, connections.clone());
    let flusher = flusher.start().map_err(StartError::Flusher)?;
    // Before listening: finish what the coordinator decided before a restart and settle the
    // open transactions the partition logs hold.
    let recovering = broker.clone();
    tokio::task::spawn_blocking(move || {
        let open = recovering.open_transactions();
        recovering.txns.recover(&open, recovering.as_ref());
    })
    .await
    .map_err(|e| StartError::Task(e.to_string()))?;
    let txn_maintenance = broker
        .txns
        .start_maintenance(broker.clone(), shutdown_rx.clone());
    let housekeeping = tokio::spawn(housekeeping_loop(
        broker.clone(),
        housekeeping_interval,
        shutdown_rx.clone(),
    ));
    let accept_loops: Vec<_> = listeners
        .into_iter()
        .map(|(socket, info)| {
            crate::net::accept_loop(
                socket,
                info,
                broker.clone(),
                connections.clone(),
                shutdown_rx.clone(),
            )
        })
        .collect();
    let acceptor = tokio::spawn(async move {
        futures::future::join_all(accept_loops).await;
    });
    info!(addr = %local_addr, data_dir = %broker.config.data_dir.display(), cluster_id = %broker.cluster_id, "broker started");
    Ok(BrokerHandle {
        broker,
        local_addr,
        listener_addrs,
        shutdown: shutdown_tx,
        acceptor,
        housekeeping,
        group_maintenance,
        txn_maintenance,
        flusher,
    })
}

/// Runs retention, compaction and time-based rolls every `interval` until shutdown.
async fn housekeeping_loop(
    broker: Arc<Broker>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
        let broker = broker.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || housekeeping_pass(&broker)).await {
            warn!(error = %e, "housekeeping pass failed");
        }
    }
}

/// One pass over every partition: roll by age, then retention and/or compaction per policy.
pub fn housekeeping_pass(broker: &Broker) {
    let now = crate::now_ms();
    for topic in broker.metadata.topics() {
        for partition in &topic.partitions {
            let result = partition.with_log(|log| {
                let policy = log.config().cleanup_policy;
                let mut result = log.maybe_roll(now).map(|()| 0);
                if matches!(policy, CleanupPolicy::Delete | CleanupPolicy::CompactDelete) {
                    result = result.and_then(|_| log.enforce_retention(now).map(|n| n as u64));
                }
                if matches!(
                    policy,
                    CleanupPolicy::Compact | CleanupPolicy::CompactDelete
                ) {
                    result = result.and_then(|_| log.compact(now));
                }
                result
            });
            if let Err(e) = result {
                warn!(topic = %topic.name, partition = partition.index, error = %e, "housekeeping failed");
            }
        }
    }
}
