//! ListPartitionReassignments (API key 46, v0; KIP-455): reassignments in progress. On a
//! single node a reassignment completes (or is refused) within AlterPartitionReassignments,
//! so none is ever in progress. Needs Describe on the cluster.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::Operation;

/// Handles a ListPartitionReassignments request.
pub async fn handle(
    ctx: &RequestContext,
    _req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let response = ListPartitionReassignmentsResponse::default();
    if !ctx.authorize_cluster(Operation::Describe) {
        return response
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "listing reassignments needs DESCRIBE on the cluster",
            )));
    }
    response
}
