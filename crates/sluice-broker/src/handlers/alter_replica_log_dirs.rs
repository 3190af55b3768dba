//! AlterReplicaLogDirs (API key 34, v1-2): moves partitions to other log directories of this
//! broker while they stay in use (see [`crate::meta::relocation`]). Needs Alter on the cluster.
//! Per partition, in Kafka's order of checks: INVALID_TOPIC_EXCEPTION when the copy's directory
//! name would be too long, LOG_DIR_NOT_FOUND for a path that is not one of `log_dirs` (absolute,
//! as DescribeLogDirs reports it), REPLICA_NOT_AVAILABLE for a partition this broker does not
//! host (the directory is remembered: the partition is created there if it comes, as in Kafka),
//! KAFKA_STORAGE_ERROR while shutting down, else NONE: the move is under way (or there
//! is nothing to move). A partition named twice is answered once; the last directory wins.

use std::collections::HashMap;
use std::path::Path;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, TopicName,
};

use super::RequestContext;
use crate::auth::Operation;
use crate::meta::{log_dirs, MoveRefused};

/// Handles an AlterReplicaLogDirs request.
pub async fn handle(
    ctx: &RequestContext,
    req: AlterReplicaLogDirsRequest,
) -> AlterReplicaLogDirsResponse {
    let authorized = ctx.authorize_cluster(Operation::Alter);
    let metadata = &ctx.broker.metadata;
    // Topic → partition → error, in the order topics first appear.
    let mut order: Vec<TopicName> = Vec::new();
    let mut outcomes: HashMap<TopicName, HashMap<i32, i16>> = HashMap::new();
    let mut resolved: HashMap<&str, Option<&Path>> = HashMap::new();
    for dir in &req.dirs {
        for topic in &dir.topics {
            let outcome = outcomes.entry(topic.name.clone()).or_insert_with(|| {
                order.push(topic.name.clone());
                HashMap::new()
            });
            for &index in &topic.partitions {
                let error = if !authorized {
                    Some(ResponseError::ClusterAuthorizationFailed)
                } else if !log_dirs::copy_name_fits(topic.name.0.as_str(), index) {
                    Some(ResponseError::InvalidTopicException)
                } else {
                    let path = dir.path.as_str();
                    let log_dir = *resolved
                        .entry(path)
                        .or_insert_with(|| metadata.log_dirs().resolve(path));
                    match (log_dir, metadata.partition(topic.name.0.as_str(), index)) {
                        (None, _) => Some(ResponseError::LogDirNotFound),
                        (Some(log_dir), None) => {
                            // Kafka's answer, after remembering where to create it.
                            metadata.prefer_log_dir(topic.name.0.as_str(), index, log_dir);
                            Some(ResponseError::ReplicaNotAvailable)
                        }
                        (Some(log_dir), Some(partition)) => {
                            match metadata.move_partition(&partition, log_dir) {
                                Ok(()) => None,
                                Err(MoveRefused::NameTooLong) => {
                                    Some(ResponseError::InvalidTopicException)
                                }
                                Err(MoveRefused::Stopping) => {
                                    Some(ResponseError::KafkaStorageError)
                                }
                            }
                        }
                    }
                };
                outcome.insert(index, error.map_or(0, |e| e.code()));
            }
        }
    }
    let results = order
        .into_iter()
        .map(|name| {
            let mut partitions: Vec<_> = outcomes
                .remove(&name)
                .unwrap_or_default()
                .into_iter()
                .map(|(index, error_code)| {
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(error_code)
                })
                .collect();
            partitions.sort_by_key(|p| p.partition_index);
            AlterReplicaLogDirTopicResult::default()
                .with_topic_name(name)
                .with_partitions(partitions)
        })
        .collect();
    AlterReplicaLogDirsResponse::default().with_results(results)
}
