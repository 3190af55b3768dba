//! Moving replicas: AlterPartitionReassignments / ListPartitionReassignments (between
//! brokers), AlterReplicaLogDirs (between directories of one broker), ElectLeaders
//! (preferred leaders). Throttles are configs (see `configs.rs`).

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::alter_replica_log_dirs_request::{
    AlterReplicaLogDir, AlterReplicaLogDirTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterReplicaLogDirsRequest, BrokerId, ElectLeadersRequest,
    ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::connection::AdminConnection;
use crate::error::{check, error_name};
use crate::AdminError;

const REQUEST_TIMEOUT_MS: i32 = 60_000;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// Per partition: `Ok` or the error the broker gave.
pub type PartitionResults = Vec<(String, i32, Result<(), String>)>;

/// A partition's error code as a result (`tolerated` codes count as success).
fn outcome(code: i16, tolerated: &[i16]) -> Result<(), String> {
    if code == 0 || tolerated.contains(&code) {
        Ok(())
    } else {
        Err(error_name(code))
    }
}

/// Starts (`Some(replicas)`) or cancels (`None`) reassignments.
pub async fn alter_partition_reassignments(
    conn: &mut AdminConnection,
    changes: &[(String, i32, Option<Vec<i32>>)],
) -> Result<PartitionResults, AdminError> {
    let mut topics: Vec<ReassignableTopic> = Vec::new();
    for (t, p, replicas) in changes {
        let partition = ReassignablePartition::default()
            .with_partition_index(*p)
            .with_replicas(
                replicas
                    .as_ref()
                    .map(|r| r.iter().map(|&b| BrokerId(b)).collect()),
            );
        match topics.iter_mut().find(|x| x.name.0.as_str() == t) {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                ReassignableTopic::default()
                    .with_name(topic_name(t))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(REQUEST_TIMEOUT_MS)
        .with_topics(topics);
    let response = conn.request(&request, 0).await?;
    check(response.error_code, response.error_message.as_ref(), || {
        "AlterPartitionReassignments".to_owned()
    })?;
    Ok(response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    outcome(p.error_code, &[]),
                )
            })
        })
        .collect())
}

/// A reassignment in progress: `(topic, partition, replicas, adding, removing)`.
pub type OngoingReassignment = (String, i32, Vec<i32>, Vec<i32>, Vec<i32>);

/// Every reassignment in progress.
pub async fn list_partition_reassignments(
    conn: &mut AdminConnection,
) -> Result<Vec<OngoingReassignment>, AdminError> {
    let request = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(REQUEST_TIMEOUT_MS)
        .with_topics(None);
    let response = conn.request(&request, 0).await?;
    check(response.error_code, response.error_message.as_ref(), || {
        "ListPartitionReassignments".to_owned()
    })?;
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    Ok(response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                )
            })
        })
        .collect())
}

/// Moves replicas on the broker `conn` is connected to into other log directories:
/// `(path, topic, partition)`.
pub async fn alter_replica_log_dirs(
    conn: &mut AdminConnection,
    moves: &[(String, String, i32)],
) -> Result<PartitionResults, AdminError> {
    let mut dirs: Vec<AlterReplicaLogDir> = Vec::new();
    for (path, t, p) in moves {
        let dir = match dirs.iter_mut().find(|d| d.path.as_str() == path) {
            Some(dir) => dir,
            None => {
                dirs.push(
                    AlterReplicaLogDir::default().with_path(StrBytes::from_string(path.clone())),
                );
                let last = dirs.len() - 1;
                &mut dirs[last]
            }
        };
        match dir.topics.iter_mut().find(|x| x.name.0.as_str() == t) {
            Some(topic) => topic.partitions.push(*p),
            None => dir.topics.push(
                AlterReplicaLogDirTopic::default()
                    .with_name(topic_name(t))
                    .with_partitions(vec![*p]),
            ),
        }
    }
    let response = conn
        .request(&AlterReplicaLogDirsRequest::default().with_dirs(dirs), 2)
        .await?;
    Ok(response
        .results
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.topic_name.0.to_string(),
                    p.partition_index,
                    outcome(p.error_code, &[]),
                )
            })
        })
        .collect())
}

/// Elects the preferred leader of each partition. ELECTION_NOT_NEEDED counts as success.
pub async fn elect_preferred_leaders(
    conn: &mut AdminConnection,
    partitions: &[(String, i32)],
) -> Result<PartitionResults, AdminError> {
    let mut topics: Vec<TopicPartitions> = Vec::new();
    for (t, p) in partitions {
        match topics.iter_mut().find(|x| x.topic.0.as_str() == t) {
            Some(topic) => topic.partitions.push(*p),
            None => topics.push(
                TopicPartitions::default()
                    .with_topic(topic_name(t))
                    .with_partitions(vec![*p]),
            ),
        }
    }
    let request = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_topic_partitions(Some(topics))
        .with_timeout_ms(REQUEST_TIMEOUT_MS);
    let response = conn.request(&request, 2).await?;
    check(response.error_code, None, || "ElectLeaders".to_owned())?;
    const ELECTION_NOT_NEEDED: i16 = 84;
    Ok(response
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result.iter().map(|p| {
                (
                    t.topic.0.to_string(),
                    p.partition_id,
                    outcome(p.error_code, &[ELECTION_NOT_NEEDED]),
                )
            })
        })
        .collect())
}
