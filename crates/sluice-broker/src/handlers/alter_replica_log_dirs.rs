//! AlterReplicaLogDirs (API key 34, v0-2): moves partitions to other log directories of this
//! broker while they stay in use (see [`crate::meta::relocation`]). Needs Alter on the cluster.
//! Per partition, as Kafka answers: NONE once the move is under way (or nothing is to move),
//! LOG_DIR_NOT_FOUND for a directory not in `log_dirs`, REPLICA_NOT_AVAILABLE for a partition
//! this broker does not host, INVALID_TOPIC_EXCEPTION when the copy's directory name would be
//! too long, KAFKA_STORAGE_ERROR while shutting down.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};

use super::RequestContext;
use crate::auth::Operation;
use crate::meta::MoveRefused;

/// Handles an AlterReplicaLogDirs request.
pub async fn handle(
    ctx: &RequestContext,
    req: AlterReplicaLogDirsRequest,
) -> AlterReplicaLogDirsResponse {
    let authorized = ctx.authorize_cluster(Operation::Alter);
    let metadata = &ctx.broker.metadata;
    let mut results: Vec<AlterReplicaLogDirTopicResult> = Vec::new();
    for dir in &req.dirs {
        let log_dir = metadata.log_dirs().resolve(dir.path.as_str());
        for topic in &dir.topics {
            let partitions = topic.partitions.iter().map(|&index| {
                let error = if !authorized {
                    ResponseError::ClusterAuthorizationFailed
                } else if let Some(log_dir) = log_dir {
                    match metadata.partition(topic.name.0.as_str(), index) {
                        None => ResponseError::ReplicaNotAvailable,
                        Some(partition) => match metadata.move_partition(&partition, log_dir) {
                            Ok(()) => {
                                return AlterReplicaLogDirPartitionResult::default()
                                    .with_partition_index(index)
                            }
                            Err(MoveRefused::NameTooLong) => ResponseError::InvalidTopicException,
                            Err(MoveRefused::Stopping) => ResponseError::KafkaStorageError,
                        },
                    }
                } else {
                    ResponseError::LogDirNotFound
                };
                AlterReplicaLogDirPartitionResult::default()
                    .with_partition_index(index)
                    .with_error_code(error.code())
            });
            let partitions: Vec<_> = partitions.collect();
            match results.iter_mut().find(|r| r.topic_name == topic.name) {
                Some(existing) => existing.partitions.extend(partitions),
                None => results.push(
                    AlterReplicaLogDirTopicResult::default()
                        .with_topic_name(topic.name.clone())
                        .with_partitions(partitions),
                ),
            }
        }
    }
    AlterReplicaLogDirsResponse::default().with_results(results)
}
