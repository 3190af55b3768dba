//! The broker's shared state, handed to every handler through [`crate::request::RequestContext`].

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sluice_log::{LogError, TxnMarker};

use crate::config::BrokerConfig;
use crate::durability::Flusher;
use crate::group::{GroupCoordinator, Now, OFFSETS_TOPIC};
use crate::meta::{MetaError, Metadata, ProducerIdAllocator, Topic};
use crate::txn::{MarkerWaits, MarkerWriter};

/// Everything a running broker owns. One instance per process, shared as `Arc<Broker>`.
#[derive(Debug)]
pub struct Broker {
    /// Settings the broker was started with.
    pub config: BrokerConfig,
    /// The cluster id (persisted in the data directory).
    pub cluster_id: String,
    /// Topics, partitions and configs.
    pub metadata: Metadata,
    /// Group-commit fsync for acknowledged writes.
    pub flusher: Flusher,
    /// Consumer groups and committed offsets.
    pub groups: GroupCoordinator,
    /// Transactional ids and their transactions.
    pub txns: crate::txn::TxnCoordinator,
    /// Hands out idempotent producer ids (InitProducerId), never reused across restarts.
    pub producer_ids: ProducerIdAllocator,
    /// ACL authorizer; `None` means authorization is disabled (every request is allowed).
    pub authorizer: Option<Arc<crate::auth::Authorizer>>,
    /// SASL mechanisms, SCRAM credentials and token keys.
    pub sasl: crate::auth::SaslServer,
    /// Client quotas and the usage measured against them.
    pub quotas: crate::quota::QuotaManager,
    /// Bytes of requests being read and processed (`queued.max.request.bytes`).
    pub request_memory: crate::memory::MemoryBudget,
    /// Bytes of fetched records copied through memory on their way to a socket (TLS).
    pub fetch_memory: crate::memory::MemoryBudget,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: crate::fetch_sessions::FetchSessions,
    /// Notified once when the broker begins shutting down.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Prometheus metrics counted as requests are served.
    pub metrics: Arc<crate::metrics::BrokerMetrics>,
}

impl Broker {
    /// The `(host, port)` clients are told to connect to.
    pub fn advertised(&self) -> (String, u16) {
        self.config.advertised.clone().unwrap_or_else(|| {
            (
                self.config.listen.ip().to_string(),
                self.config.listen.port(),
            )
        })
    }
}

impl Broker {
    /// The topic `name`, created with the broker defaults if it does not exist, auto-creation
    /// is enabled and `allow` (the request permits it). Errors are the Kafka codes to report.
    pub fn topic_or_auto_create(
        &self,
        name: &str,
        allow: bool,
    ) -> Result<Arc<Topic>, kafka_protocol::error::ResponseError> {
        use kafka_protocol::error::ResponseError;
        if let Some(topic) = self.metadata.topic(name) {
            return Ok(topic);
        }
        if let Err(e) = crate::meta::validate_topic_name(name) {
            return Err(e.error_code());
        }
        if !(allow && self.config.auto_create_topics) {
            return Err(ResponseError::UnknownTopicOrPartition);
        }
        match self
            .metadata
            .create_topic(name, -1, -1, std::collections::BTreeMap::new(), false)
        {
            Ok(topic) => Ok(topic),
            Err(MetaError::TopicExists(_)) => self
                .metadata
                .topic(name)
                .ok_or(ResponseError::UnknownTopicOrPartition),
            Err(e) => {
                tracing::warn!(topic = name, error = %e, "auto-creating topic failed");
                Err(e.error_code())
            }
        }
    }
}

impl Broker {
    /// Every open transaction in every partition: `((topic, partition), producer id, epoch)`.
    pub fn open_transactions(&self) -> Vec<((String, i32), i64, i16)> {
        let mut open = Vec::new();
        for topic in self.metadata.topics() {
            for partition in &topic.partitions {
                for (pid, epoch, _) in partition.with_log(|log| log.open_transactions()) {
                    open.push(((topic.name.clone(), partition.index), pid, epoch));
                }
            }
        }
        open
    }
}

/// The broker writes a transaction's markers to its data partitions and settles its offsets
/// through the group coordinator.
impl MarkerWriter for Broker {
    fn write_markers(
        &self,
        partitions: &BTreeSet<(String, i32)>,
        marker: &TxnMarker,
    ) -> Result<MarkerWaits, String> {
        let now = crate::now_ms();
        let mut offsets_partitions = Vec::new();
        let mut failures = Vec::new();
        let mut waits: MarkerWaits = Vec::new();
        for (topic, index) in partitions {
            if topic == OFFSETS_TOPIC {
                offsets_partitions.push(*index);
                continue;
            }
            let Some(partition) = self.metadata.partition(topic, *index) else {
                continue;
            };
            match partition.append_marker(marker, now) {
                Ok(offset) => {
                    let flusher = self.flusher.clone();
                    waits.push(Box::pin(async move {
                        flusher
                            .wait_durable(&partition, offset + 1)
                            .await
                            .map_err(|e| e.to_string())
                    }));
                    crate::failpoint::hit("txn-after-first-marker");
                }
                // A newer epoch already wrote here: this transaction is settled.
                Err(LogError::InvalidProducerEpoch { .. }) => {}
                Err(e) => failures.push(format!("{topic}-{index}: {e}")),
            }
        }
        if !offsets_partitions.is_empty() {
            match self
                .groups
                .complete_txn(&offsets_partitions, marker, Now::current())
            {
                Ok(durables) => waits.extend(durables.into_iter().map(|d| {
                    Box::pin(async move { d.wait().await.map_err(|e| e.to_string()) })
                        as Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
                })),
                Err(e) if e.is_fenced() => {}
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(waits)
        } else {
            Err(failures.join("; "))
        }
    }
}

/// Shared handle type used across the crate.
pub type BrokerRef = Arc<Broker>;
