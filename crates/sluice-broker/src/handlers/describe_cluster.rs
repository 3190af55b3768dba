//! DescribeCluster (API key 60, v0-1): the cluster id, the controller and the brokers, which on
//! a single-node cluster are all this broker.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;

/// `endpoint_type` asking for brokers (the only kind a client can reach here).
const ENDPOINT_BROKERS: i8 = 1;

/// Kafka's `AclOperation` codes that apply to the cluster resource: CREATE, ALTER, DESCRIBE,
/// CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
const CLUSTER_OPERATIONS: [u8; 7] = [5, 7, 8, 9, 10, 11, 12];

/// The bitfield of cluster operations the caller may perform. There are no ACLs yet, so every
/// operation is allowed.
pub fn cluster_authorized_operations() -> i32 {
    CLUSTER_OPERATIONS
        .iter()
        .fold(0, |bits, op| bits | (1 << op))
}

/// Handles a DescribeCluster request.
pub async fn handle(ctx: &RequestContext, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let broker = &ctx.broker;
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.config.node_id));
    if ctx.version() >= 1 && req.endpoint_type != ENDPOINT_BROKERS {
        return response
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_string(format!(
                "endpoint type {} is not supported; a Sluice broker describes brokers (1) only",
                req.endpoint_type
            ))));
    }
    let (host, port) = ctx.advertised();
    response = response.with_brokers(vec![DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.config.node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(i32::from(port))
        .with_rack(None)]);
    if req.include_cluster_authorized_operations {
        response = response.with_cluster_authorized_operations(cluster_authorized_operations());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorized_operations_cover_cluster_acl_operations() {
        let bits = cluster_authorized_operations();
        for op in CLUSTER_OPERATIONS {
            assert_ne!(bits & (1 << op), 0, "operation {op} missing");
        }
        // READ (3) and WRITE (4) are topic operations, not cluster ones.
        assert_eq!(bits & (1 << 3 | 1 << 4), 0);
    }
}
