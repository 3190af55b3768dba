//! DescribeCluster (API key 60, v0-1): the cluster id, the controller and the brokers, which on
//! a single-node cluster are all this broker.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::CLUSTER_OPERATIONS;
use crate::auth::{ResourceType, CLUSTER_NAME};

/// `endpoint_type` asking for brokers (the only kind a client can reach here).
const ENDPOINT_BROKERS: i8 = 1;

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
        response = response.with_cluster_authorized_operations(ctx.authorized_operations(
            ResourceType::Cluster,
            CLUSTER_NAME,
            CLUSTER_OPERATIONS,
        ));
    }
    response
}
