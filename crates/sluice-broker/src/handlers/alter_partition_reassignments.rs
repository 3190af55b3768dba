//! AlterPartitionReassignments (API key 45, v0-1; KIP-455) on a single node: the only valid
//! target of a partition is this broker, where it already is, so such a request succeeds at
//! once; other broker ids are INVALID_REPLICA_ASSIGNMENT, and cancelling (no replica list) is
//! NO_REASSIGNMENT_IN_PROGRESS. Needs Alter on the cluster.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_request::ReassignablePartition;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::Operation;
use crate::meta::Topic;

/// Handles an AlterPartitionReassignments request.
pub async fn handle(
    ctx: &RequestContext,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let authorized = ctx.authorize_cluster(Operation::Alter);
    let node = ctx.broker.config.node_id;
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let topic = ctx.broker.metadata.topic(t.name.0.as_str());
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let outcome = if authorized {
                                check(topic.as_deref(), p, node)
                            } else {
                                Err((
                                    ResponseError::ClusterAuthorizationFailed,
                                    "reassigning partitions needs ALTER on the cluster".to_owned(),
                                ))
                            };
                            let result = ReassignablePartitionResponse::default()
                                .with_partition_index(p.partition_index);
                            match outcome {
                                Ok(()) => result,
                                Err((error, message)) => result
                                    .with_error_code(error.code())
                                    .with_error_message(Some(StrBytes::from_string(message))),
                            }
                        })
                        .collect(),
                )
        })
        .collect();
    let response = AlterPartitionReassignmentsResponse::default().with_responses(responses);
    if authorized {
        response
    } else {
        response.with_error_code(ResponseError::ClusterAuthorizationFailed.code())
    }
}

/// Whether moving `p` to its requested replicas is valid (and therefore already done).
fn check(
    topic: Option<&Topic>,
    p: &ReassignablePartition,
    node: i32,
) -> Result<(), (ResponseError, String)> {
    let exists = topic
        .is_some_and(|t| usize::try_from(p.partition_index).is_ok_and(|i| i < t.partitions.len()));
    if !exists {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            "the partition does not exist".to_owned(),
        ));
    }
    let Some(replicas) = &p.replicas else {
        return Err((
            ResponseError::NoReassignmentInProgress,
            "no reassignment of the partition is in progress".to_owned(),
        ));
    };
    match replicas.as_slice() {
        [only] if only.0 == node => Ok(()),
        [] => Err((
            ResponseError::InvalidReplicaAssignment,
            "the replica list is empty".to_owned(),
        )),
        ids => Err((
            ResponseError::InvalidReplicaAssignment,
            format!(
                "replicas {:?} do not exist: this cluster has one broker, {node}",
                ids.iter().map(|b| b.0).collect::<Vec<_>>()
            ),
        )),
    }
}
