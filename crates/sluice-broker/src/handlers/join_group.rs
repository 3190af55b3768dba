//! JoinGroup (API key 11, v0-9): parks until the group's join phase completes.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::auth::Operation;
use crate::group::wire::{opt_str_bytes, str_bytes};
use crate::group::{JoinParams, JoinResult, Now};

/// Handles a JoinGroup request.
pub async fn handle(ctx: &RequestContext, req: JoinGroupRequest) -> JoinGroupResponse {
    if let Err(e) = ctx.authorize_group(Operation::Read, &req.group_id) {
        return JoinGroupResponse::default().with_error_code(e.code());
    }
    let member_id = req.member_id.to_string();
    let params = JoinParams {
        group_id: req.group_id.to_string(),
        member_id: member_id.clone(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        client_id: ctx.client_id(),
        client_host: ctx.client_host(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if ctx.version() >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: ctx.version() >= 4,
    };
    let pending = ctx.broker.groups.join(params, Now::current());
    let result = pending
        .resolve(JoinResult::error(
            ResponseError::CoordinatorNotAvailable,
            &member_id,
        ))
        .await;
    let members = result
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(opt_str_bytes(m.group_instance_id))
                .with_metadata(m.metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(result.error)
        .with_generation_id(result.generation_id)
        .with_protocol_type(opt_str_bytes(result.protocol_type))
        // Before v7 the name is not nullable: an empty string stands for "none".
        .with_protocol_name(Some(str_bytes(result.protocol_name.unwrap_or_default())))
        .with_leader(str_bytes(result.leader))
        .with_member_id(str_bytes(result.member_id))
        .with_members(members)
}
