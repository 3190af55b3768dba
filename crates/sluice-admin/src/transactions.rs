//! Transaction administration (KIP-664), as `kafka-transactions.sh` does it: ListTransactions
//! on every broker, DescribeTransactions on each id's coordinator, DescribeProducers and
//! WriteTxnMarkers on a partition's leader.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, FindCoordinatorRequest,
    ListTransactionsRequest, MetadataRequest, TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::error::check;
use crate::{AdminConfig, AdminConnection, AdminError};

/// Metadata version used to find brokers and leaders (flexible; Kafka 2.4+).
const METADATA_VERSION: i16 = 9;
/// FindCoordinator version used (one key per request; Kafka 2.4+).
const FIND_COORDINATOR_VERSION: i16 = 3;
/// FindCoordinator `key_type` of a transactional id.
const TRANSACTION_KEY_TYPE: i8 = 1;

/// Which transactions [`list_transactions`] returns; empty lists match everything.
#[derive(Debug, Clone, Default)]
pub struct ListTransactionsFilter {
    /// Only transactions in one of these states (Kafka's names, e.g. `Ongoing`).
    pub states: Vec<String>,
    /// Only transactions of one of these producer ids.
    pub producer_ids: Vec<i64>,
    /// Only transactions running longer than this many milliseconds (needs Kafka 3.8+).
    pub min_duration_ms: Option<i64>,
}

/// One row of ListTransactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// Its current producer id.
    pub producer_id: i64,
    /// Its state, e.g. `Ongoing` or `CompleteCommit`.
    pub state: String,
    /// The broker (its coordinator) that reported it.
    pub coordinator_id: i32,
}

/// What [`list_transactions`] found.
#[derive(Debug, Clone, Default)]
pub struct TransactionListings {
    /// The transactions, sorted by transactional id.
    pub transactions: Vec<TransactionListing>,
    /// State filters no broker knew.
    pub unknown_states: Vec<String>,
}

/// A transactional id as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The transactional id.
    pub transactional_id: String,
    /// The coordinator's broker id.
    pub coordinator_id: i32,
    /// Current producer id.
    pub producer_id: i64,
    /// Current producer epoch.
    pub producer_epoch: i16,
    /// State, e.g. `Ongoing`.
    pub state: String,
    /// `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// When the current (or last) transaction started (ms since the epoch), or -1.
    pub start_time_ms: i64,
    /// The partitions of the open transaction (empty once it completed).
    pub partitions: Vec<(String, i32)>,
}

/// A producer a partition knows (DescribeProducers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerState {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i32,
    /// Sequence number of its last batch, or -1.
    pub last_sequence: i32,
    /// Timestamp of its last batch, or -1.
    pub last_timestamp: i64,
    /// Coordinator epoch of its last transaction marker, or -1.
    pub coordinator_epoch: i32,
    /// First offset of its open transaction in the partition, or -1.
    pub current_txn_start_offset: i64,
}

/// The cluster as seen through one bootstrap connection: its brokers, and connections to
/// them opened as needed.
struct Cluster {
    config: AdminConfig,
    bootstrap: AdminConnection,
    /// Broker id → `host:port`.
    brokers: BTreeMap<i32, String>,
    connections: HashMap<i32, AdminConnection>,
}

impl Cluster {
    async fn connect(config: &AdminConfig) -> Result<Self, AdminError> {
        let mut bootstrap = AdminConnection::connect(config).await?;
        let resp = bootstrap
            .request(&MetadataRequest::default(), METADATA_VERSION)
            .await?;
        let brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        Ok(Cluster {
            config: config.clone(),
            bootstrap,
            brokers,
            connections: HashMap::new(),
        })
    }

    /// A connection to broker `id`. With a single broker the bootstrap connection is that
    /// broker, whatever address it advertises.
    async fn broker(&mut self, id: i32) -> Result<&mut AdminConnection, AdminError> {
        if self.brokers.len() == 1 && self.brokers.contains_key(&id) {
            return Ok(&mut self.bootstrap);
        }
        match self.connections.entry(id) {
            Entry::Occupied(open) => Ok(open.into_mut()),
            Entry::Vacant(slot) => {
                let address = self.brokers.get(&id).ok_or_else(|| {
                    AdminError::Protocol(format!("broker {id} is not in the cluster metadata"))
                })?;
                let config = AdminConfig {
                    bootstrap: address.clone(),
                    ..self.config.clone()
                };
                Ok(slot.insert(AdminConnection::connect(&config).await?))
            }
        }
    }

    /// The leader of `topic`/`partition`.
    async fn leader(&mut self, topic: &str, partition: i32) -> Result<i32, AdminError> {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_string(topic.to_owned())),
            ))]))
            .with_allow_auto_topic_creation(false);
        let resp = self.bootstrap.request(&req, METADATA_VERSION).await?;
        let what = || format!("looking up {topic}-{partition}");
        let t = resp
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
            .ok_or_else(|| AdminError::NotFound(format!("topic {topic} does not exist")))?;
        check(t.error_code, None, what)?;
        let p = t
            .partitions
            .iter()
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| {
                AdminError::NotFound(format!("topic {topic} has no partition {partition}"))
            })?;
        check(p.error_code, None, what)?;
        if p.leader_id.0 < 0 {
            return Err(AdminError::Broker {
                what: what(),
                error: "LeaderNotAvailable".into(),
                detail: String::new(),
            });
        }
        Ok(p.leader_id.0)
    }

    /// The coordinator of `transactional_id`.
    async fn coordinator(&mut self, transactional_id: &str) -> Result<i32, AdminError> {
        let req = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(transactional_id.to_owned()))
            .with_key_type(TRANSACTION_KEY_TYPE);
        let resp = self
            .bootstrap
            .request(&req, FIND_COORDINATOR_VERSION)
            .await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            format!("finding the coordinator of transactional id {transactional_id}")
        })?;
        self.brokers
            .entry(resp.node_id.0)
            .or_insert_with(|| format!("{}:{}", resp.host.as_str(), resp.port));
        Ok(resp.node_id.0)
    }
}

/// Lists the transactions of every broker's coordinator (ListTransactions), sorted by id.
pub async fn list_transactions(
    config: &AdminConfig,
    filter: &ListTransactionsFilter,
) -> Result<TransactionListings, AdminError> {
    let mut cluster = Cluster::connect(config).await?;
    let req = ListTransactionsRequest::default()
        .with_state_filters(
            filter
                .states
                .iter()
                .map(|s| StrBytes::from_string(s.clone()))
                .collect(),
        )
        .with_producer_id_filters(filter.producer_ids.iter().map(|&p| p.into()).collect())
        .with_duration_filter(filter.min_duration_ms.unwrap_or(-1));
    // v1 adds the duration filter; v0 keeps older brokers reachable when it is not used.
    let version = if filter.min_duration_ms.is_some() {
        1
    } else {
        0
    };
    let mut listings = TransactionListings::default();
    let ids: Vec<i32> = cluster.brokers.keys().copied().collect();
    for id in ids {
        let resp = cluster.broker(id).await?.request(&req, version).await?;
        check(resp.error_code, None, || {
            format!("listing the transactions of broker {id}")
        })?;
        for state in resp.unknown_state_filters {
            if !listings.unknown_states.contains(&state.to_string()) {
                listings.unknown_states.push(state.to_string());
            }
        }
        listings
            .transactions
            .extend(
                resp.transaction_states
                    .into_iter()
                    .map(|t| TransactionListing {
                        transactional_id: t.transactional_id.0.to_string(),
                        producer_id: t.producer_id.0,
                        state: t.transaction_state.to_string(),
                        coordinator_id: id,
                    }),
            );
    }
    listings
        .transactions
        .sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    Ok(listings)
}

/// Describes each transactional id at its coordinator (DescribeTransactions). Each id gets its
/// own result; an unknown id is [`AdminError::NotFound`].
pub async fn describe_transactions(
    config: &AdminConfig,
    transactional_ids: &[String],
) -> Result<Vec<(String, Result<TransactionDescription, AdminError>)>, AdminError> {
    let mut cluster = Cluster::connect(config).await?;
    let mut results = Vec::with_capacity(transactional_ids.len());
    for id in transactional_ids {
        let described = describe_one(&mut cluster, id).await;
        results.push((id.clone(), described));
    }
    Ok(results)
}

async fn describe_one(
    cluster: &mut Cluster,
    transactional_id: &str,
) -> Result<TransactionDescription, AdminError> {
    let coordinator = cluster.coordinator(transactional_id).await?;
    let req = DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
        StrBytes::from_string(transactional_id.to_owned()),
    )]);
    let resp = cluster.broker(coordinator).await?.request(&req, 0).await?;
    let state = resp
        .transaction_states
        .into_iter()
        .find(|s| s.transactional_id.0.as_str() == transactional_id)
        .ok_or_else(|| {
            AdminError::Protocol(format!(
                "the coordinator did not answer for transactional id {transactional_id}"
            ))
        })?;
    if state.error_code == ResponseError::TransactionalIdNotFound.code() {
        return Err(AdminError::NotFound(format!(
            "transactional id {transactional_id} not found (TransactionalIdNotFound)"
        )));
    }
    check(state.error_code, None, || {
        format!("describing transactional id {transactional_id}")
    })?;
    let mut partitions: Vec<(String, i32)> = state
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.0.to_string(), p)))
        .collect();
    partitions.sort();
    Ok(TransactionDescription {
        transactional_id: transactional_id.to_owned(),
        coordinator_id: coordinator,
        producer_id: state.producer_id.0,
        producer_epoch: state.producer_epoch,
        state: state.transaction_state.to_string(),
        timeout_ms: state.transaction_timeout_ms,
        start_time_ms: state.transaction_start_time_ms,
        partitions,
    })
}

/// The producers `topic`/`partition` knows, from its leader (DescribeProducers).
pub async fn describe_producers(
    config: &AdminConfig,
    topic: &str,
    partition: i32,
) -> Result<Vec<ProducerState>, AdminError> {
    let mut cluster = Cluster::connect(config).await?;
    producers_at_leader(&mut cluster, topic, partition)
        .await
        .map(|(_, producers)| producers)
}

/// The leader of the partition and the producers it reports.
async fn producers_at_leader(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
) -> Result<(i32, Vec<ProducerState>), AdminError> {
    let leader = cluster.leader(topic, partition).await?;
    let req = DescribeProducersRequest::default().with_topics(vec![
        kafka_protocol::messages::describe_producers_request::TopicRequest::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_indexes(vec![partition]),
    ]);
    let resp = cluster.broker(leader).await?.request(&req, 0).await?;
    let p = resp
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| {
            AdminError::Protocol(format!("the leader did not answer for {topic}-{partition}"))
        })?;
    check(p.error_code, p.error_message.as_ref(), || {
        format!("describing the producers of {topic}-{partition}")
    })?;
    let producers = p
        .active_producers
        .iter()
        .map(|s| ProducerState {
            producer_id: s.producer_id.0,
            producer_epoch: s.producer_epoch,
            last_sequence: s.last_sequence,
            last_timestamp: s.last_timestamp,
            coordinator_epoch: s.coordinator_epoch,
            current_txn_start_offset: s.current_txn_start_offset,
        })
        .collect();
    Ok((leader, producers))
}

/// Aborts the transaction that starts at `start_offset` in `topic`/`partition`, like
/// `kafka-transactions.sh abort --start-offset`: finds its producer with DescribeProducers,
/// then writes an abort marker for that producer id and epoch at the partition leader
/// (WriteTxnMarkers; needs ALTER or CLUSTER_ACTION on the cluster). Returns the producer.
pub async fn abort_transaction(
    config: &AdminConfig,
    topic: &str,
    partition: i32,
    start_offset: i64,
) -> Result<ProducerState, AdminError> {
    let mut cluster = Cluster::connect(config).await?;
    let (leader, producers) = producers_at_leader(&mut cluster, topic, partition).await?;
    let Some(producer) = producers
        .iter()
        .find(|p| p.current_txn_start_offset == start_offset)
        .cloned()
    else {
        let mut open: Vec<i64> = producers
            .iter()
            .map(|p| p.current_txn_start_offset)
            .filter(|&o| o >= 0)
            .collect();
        open.sort_unstable();
        let known = if open.is_empty() {
            "there is no open transaction there".to_owned()
        } else {
            let offsets: Vec<String> = open.iter().map(i64::to_string).collect();
            format!("open transactions there start at {}", offsets.join(", "))
        };
        return Err(AdminError::NotFound(format!(
            "no transaction starts at offset {start_offset} in {topic}-{partition}; {known}"
        )));
    };
    let epoch = i16::try_from(producer.producer_epoch).map_err(|_| {
        AdminError::Protocol(format!(
            "producer epoch {} is out of range",
            producer.producer_epoch
        ))
    })?;
    let marker = WritableTxnMarker::default()
        .with_producer_id(producer.producer_id.into())
        .with_producer_epoch(epoch)
        .with_transaction_result(false)
        // Kafka's tool uses 0 when the partition has seen no marker yet.
        .with_coordinator_epoch(producer.coordinator_epoch.max(0))
        .with_topics(vec![WritableTxnMarkerTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_indexes(vec![partition])]);
    let req = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
    let resp = cluster.broker(leader).await?.request(&req, 1).await?;
    let code = resp
        .markers
        .iter()
        .flat_map(|m| &m.topics)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .map(|p| p.error_code)
        .ok_or_else(|| {
            AdminError::Protocol(format!("the leader did not answer for {topic}-{partition}"))
        })?;
    check(code, None, || {
        format!(
            "aborting the transaction of producer {} in {topic}-{partition}",
            producer.producer_id
        )
    })?;
    Ok(producer)
}
