//! Heartbeat (API key 12, v0-4): keeps a member's session alive and signals rebalances.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::RequestContext;
use crate::auth::Operation;
use crate::group::wire::code;
use crate::group::{MemberRef, Now};

/// Handles a Heartbeat request.
pub async fn handle(ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
    if let Err(e) = ctx.authorize_group(Operation::Read, &req.group_id) {
        return HeartbeatResponse::default().with_error_code(e.code());
    }
    let instance_id = req.group_instance_id.as_ref().map(|s| s.to_string());
    let who = MemberRef {
        group_id: &req.group_id,
        generation_id: req.generation_id,
        member_id: &req.member_id,
        group_instance_id: instance_id.as_deref(),
    };
    let result = ctx.broker.groups.heartbeat(who, Now::current());
    HeartbeatResponse::default().with_error_code(code(&result))
}
