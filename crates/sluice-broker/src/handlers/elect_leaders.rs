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
    let refusal = if !ctx.authorize_cluster(Operation::Alter) {
        Some(ResponseError::ClusterAuthorizationFailed)
    } else if !ELECTION_TYPES.contains(&req.election_type) {
        Some(ResponseError::InvalidRequest)
    } else {
        None
    };
    // v0 has no top-level error: a refusal is reported on each partition only.
    let top_level = refusal
        .filter(|_| ctx.version() >= 1)
        .map_or(0, |e| e.code());
    let Some(topics) = &req.topic_partitions else {
        return ElectLeadersResponse::default().with_error_code(top_level);
    };
    let results = topics
        .iter()
        .map(|t| {
            let topic = ctx.broker.metadata.topic(t.topic.0.as_str());
            let outcome = |p: i32| -> (ResponseError, &'static str) {
                if let Some(error) = refusal {
                    return (error, "the election was refused");
                }
                let exists = topic
                    .as_ref()
                    .is_some_and(|t| usize::try_from(p).is_ok_and(|i| i < t.partitions.len()));
                if exists {
                    (
                        ResponseError::ElectionNotNeeded,
                        "the partition's leader is already its preferred replica",
                    )
                } else {
                    (
                        ResponseError::UnknownTopicOrPartition,
                        "the partition does not exist",
                    )
                }
            };
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(
                    t.partitions
                        .iter()
                        .map(|&p| {
                            let (error, message) = outcome(p);
                            PartitionResult::default()
                                .with_partition_id(p)
                                .with_error_code(error.code())
                                .with_error_message(Some(StrBytes::from_static_str(message)))
                        })
                        .collect(),
                )
        })
        .collect();
    ElectLeadersResponse::default()
        .with_error_code(top_level)
        .with_replica_election_results(results)
}
