//! FindCoordinator (API key 10, v0-6): this single broker coordinates every group. The batched
//! form (v4+, `coordinator_keys`) answers one entry per key.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::auth::{Operation, ResourceType};
use crate::group::wire::str_bytes;

/// `key_type` of a consumer group.
const KEY_TYPE_GROUP: i8 = 0;
/// `key_type` of a transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Handles a FindCoordinator request.
pub async fn handle(ctx: &RequestContext, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let (host, port) = ctx.advertised();
    let lookup = |key: &StrBytes| {
        let entry = Coordinator::default().with_key(key.clone());
        match req.key_type {
            KEY_TYPE_GROUP if ctx.authorize_group(Operation::Describe, key).is_err() => failed(
                entry,
                ResponseError::GroupAuthorizationFailed,
                "the principal may not Describe this group; ask an admin for a group ACL",
            ),
            KEY_TYPE_TRANSACTION
                if !ctx.authorize(Operation::Describe, ResourceType::TransactionalId, key) =>
            {
                failed(
                    entry,
                    ResponseError::TransactionalIdAuthorizationFailed,
                    "the principal may not Describe this transactional id; ask an admin for a TransactionalId ACL",
                )
            }
            // One node coordinates every group and every transactional id.
            KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => entry
                .with_node_id(BrokerId(ctx.broker.config.node_id))
                .with_host(str_bytes(host.clone()))
                .with_port(i32::from(port)),
            other => failed(
                entry,
                ResponseError::InvalidRequest,
                &format!("unknown coordinator key type {other}; use 0 (group) or 1 (transaction)"),
            ),
        }
    };
    if ctx.version() >= 4 {
        let coordinators = req.coordinator_keys.iter().map(lookup).collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = lookup(&req.key);
    let response = FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port);
    if ctx.version() >= 1 {
        response.with_error_message(c.error_message)
    } else {
        response
    }
}

fn failed(entry: Coordinator, error: ResponseError, message: &str) -> Coordinator {
    entry
        .with_node_id(BrokerId(-1))
        .with_host(StrBytes::default())
        .with_port(-1)
        .with_error_code(error.code())
        .with_error_message(Some(str_bytes(message)))
}
