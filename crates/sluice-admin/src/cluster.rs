//! The cluster's shape and sizes: Metadata (brokers, racks, replicas, leaders),
//! DescribeLogDirs (replica sizes per log directory, one broker at a time) and ListOffsets.

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, DescribeLogDirsRequest, ListOffsetsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::connection::AdminConnection;
use crate::error::{check, error_name};
use crate::AdminError;

const METADATA_VERSION: i16 = 12;
const DESCRIBE_LOG_DIRS_VERSION: i16 = 4;
const LIST_OFFSETS_VERSION: i16 = 7;

/// One broker as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub id: i32,
    /// Host clients connect to.
    pub host: String,
    /// Port.
    pub port: i32,
    /// `broker.rack`.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition number.
    pub index: i32,
    /// Leader's node id (-1: none).
    pub leader: i32,
    /// Replicas' node ids, preferred leader first.
    pub replicas: Vec<i32>,
}

/// One topic as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Internal (`__consumer_offsets`, …).
    pub internal: bool,
    /// Partitions.
    pub partitions: Vec<PartitionInfo>,
}

/// Brokers and topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// Brokers.
    pub brokers: Vec<BrokerInfo>,
    /// Topics.
    pub topics: Vec<TopicInfo>,
    /// The controller's node id, when the cluster names one (ZooKeeper-mode Kafka accepts
    /// topic creation and deletion only there; KRaft brokers forward them).
    pub controller: Option<i32>,
}

impl ClusterMetadata {
    /// The controller, if it is one of the brokers listed.
    pub fn controller_broker(&self) -> Option<&BrokerInfo> {
        let id = self.controller?;
        self.brokers.iter().find(|b| b.id == id)
    }
}

/// Every broker and topic of the cluster.
pub async fn cluster_metadata(conn: &mut AdminConnection) -> Result<ClusterMetadata, AdminError> {
    let response = conn
        .request(
            &MetadataRequest::default().with_topics(None),
            METADATA_VERSION,
        )
        .await?;
    let brokers = response
        .brokers
        .iter()
        .map(|b| BrokerInfo {
            id: b.node_id.0,
            host: b.host.to_string(),
            port: b.port,
            rack: b.rack.as_ref().map(|r| r.to_string()),
        })
        .collect();
    let mut topics = Vec::new();
    for t in &response.topics {
        let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        check(t.error_code, None, || format!("Metadata of topic {name}"))?;
        topics.push(TopicInfo {
            name,
            internal: t.is_internal,
            partitions: t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    index: p.partition_index,
                    leader: p.leader_id.0,
                    replicas: p.replica_nodes.iter().map(|r| r.0).collect(),
                })
                .collect(),
        });
    }
    Ok(ClusterMetadata {
        brokers,
        topics,
        controller: (response.controller_id.0 >= 0).then_some(response.controller_id.0),
    })
}

/// One replica in a log directory.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDirReplica {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Bytes on disk.
    pub size: i64,
    /// A copy being made by AlterReplicaLogDirs (Kafka's future replica).
    pub is_future: bool,
    /// How far that copy is behind.
    pub offset_lag: i64,
}

/// One log directory of the broker asked.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDirInfo {
    /// Absolute path.
    pub path: String,
    /// The directory's error (`None`: online).
    pub error: Option<String>,
    /// File system size (-1: unknown).
    pub total_bytes: i64,
    /// File system bytes free (-1: unknown).
    pub usable_bytes: i64,
    /// Replicas in it.
    pub replicas: Vec<LogDirReplica>,
}

/// The log directories of the broker `conn` is connected to, with every replica's size.
pub async fn describe_log_dirs(conn: &mut AdminConnection) -> Result<Vec<LogDirInfo>, AdminError> {
    let response = conn
        .request(
            &DescribeLogDirsRequest::default().with_topics(None),
            DESCRIBE_LOG_DIRS_VERSION,
        )
        .await?;
    check(response.error_code, None, || "DescribeLogDirs".to_owned())?;
    Ok(response
        .results
        .iter()
        .map(|d| LogDirInfo {
            path: d.log_dir.to_string(),
            error: (d.error_code != 0).then(|| error_name(d.error_code)),
            total_bytes: d.total_bytes,
            usable_bytes: d.usable_bytes,
            replicas: d
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| LogDirReplica {
                        topic: t.name.0.to_string(),
                        partition: p.partition_index,
                        size: p.partition_size,
                        is_future: p.is_future_key,
                        offset_lag: p.offset_lag,
                    })
                })
                .collect(),
        })
        .collect())
}

/// ListOffsets' special timestamp for the log end offset.
pub const LATEST: i64 = -1;
/// ListOffsets' special timestamp for the log start offset.
pub const EARLIEST: i64 = -2;

/// The offsets at `timestamp` ([`LATEST`], [`EARLIEST`] or a time) of partitions led by the
/// broker `conn` is connected to; a partition that failed is left out.
pub async fn list_offsets(
    conn: &mut AdminConnection,
    partitions: &[(String, i32)],
    timestamp: i64,
) -> Result<Vec<(String, i32, i64)>, AdminError> {
    let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = Default::default();
    for (t, p) in partitions {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    let topics = by_topic
        .into_iter()
        .map(|(t, ps)| {
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(t.to_owned())))
                .with_partitions(
                    ps.into_iter()
                        .map(|p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_timestamp(timestamp)
                                .with_current_leader_epoch(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(topics);
    let response = conn.request(&request, LIST_OFFSETS_VERSION).await?;
    Ok(response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| p.error_code == 0)
                .map(|p| (t.name.0.to_string(), p.partition_index, p.offset))
        })
        .collect())
}
