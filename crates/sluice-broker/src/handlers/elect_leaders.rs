//! ElectLeaders (API key 43, v0-2; KIP-460): on a single node every partition's leader is its
//! only, preferred replica, so an election is never needed: named partitions are answered
//! ELECTION_NOT_NEEDED (or UNKNOWN_TOPIC_OR_PARTITION), and a request for all partitions gets
//! an empty result, as Kafka leaves out partitions whose election was not needed. Needs Alter
//! on the cluster.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::Operation;

/// PREFERRED (0) and UNCLEAN (1).
const ELECTION_TYPES: std::ops::RangeInclusive<i8> = 0..=1;

/// Handles an ElectLeaders request.
pub async fn handle(ctx: &RequestContext, req: ElectLeadersRequest) -> ElectLeadersResponse {
    let response = ElectLeadersResponse::default();
    let refuse = |error: ResponseError| {
        let results = req
            .topic_partitions
            .iter()
            .flatten()
            .map(|t| {
                ReplicaElectionResult::default()
                    .with_topic(t.topic.clone())
                    .with_partition_result(
                        t.partitions
                            .iter()
                            .map(|&p| {
                                PartitionResult::default()
                                    .with_partition_id(p)
                                    .with_error_code(error.code())
                            })
                            .collect(),
                    )
            })
            .collect();
        ElectLeadersResponse::default()
            .with_error_code(error.code())
            .with_replica_election_results(results)
    };
    if !ctx.authorize_cluster(Operation::Alter) {
        return refuse(ResponseError::ClusterAuthorizationFailed);
    }
    if !ELECTION_TYPES.contains(&req.election_type) {
        return refuse(ResponseError::InvalidRequest);
    }
    let Some(topics) = &req.topic_partitions else {
        return response;
    };
    let results = topics
        .iter()
        .map(|t| {
            let topic = ctx.broker.metadata.topic(t.topic.0.as_str());
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(
                    t.partitions
                        .iter()
                        .map(|&p| {
                            let exists = topic.as_ref().is_some_and(|t| {
                                usize::try_from(p).is_ok_and(|i| i < t.partitions.len())
                            });
                            let (error, message) = if exists {
                                (
                                    ResponseError::ElectionNotNeeded,
                                    "the partition's leader is already its preferred replica",
                                )
                            } else {
                                (
                                    ResponseError::UnknownTopicOrPartition,
                                    "the partition does not exist",
                                )
                            };
                            PartitionResult::default()
                                .with_partition_id(p)
                                .with_error_code(error.code())
                                .with_error_message(Some(StrBytes::from_static_str(message)))
                        })
                        .collect(),
                )
        })
        .collect();
    response.with_replica_election_results(results)
}
