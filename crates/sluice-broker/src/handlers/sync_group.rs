//! SyncGroup (API key 14, v0-5): followers wait for the leader's assignment.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::auth::Operation;
use crate::group::wire::opt_str_bytes;
use crate::group::{MemberRef, Now};

/// Handles a SyncGroup request.
pub async fn handle(ctx: &RequestContext, req: SyncGroupRequest) -> SyncGroupResponse {
    if let Err(e) = ctx.authorize_group(Operation::Read, &req.group_id) {
        return SyncGroupResponse::default().with_error_code(e.code());
    }
    let group_id = req.group_id.to_string();
    let member_id = req.member_id.to_string();
    let instance_id = req.group_instance_id.as_ref().map(|s| s.to_string());
    let who = MemberRef {
        group_id: &group_id,
        generation_id: req.generation_id,
        member_id: &member_id,
        group_instance_id: instance_id.as_deref(),
    };
    let assignments = req
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let (pending, durable) = ctx.broker.groups.sync(
        who,
        req.protocol_type.as_deref(),
        req.protocol_name.as_deref(),
        assignments,
        Now::current(),
    );
    if let Err(e) = durable.wait().await {
        tracing::warn!(group = %group_id, error = %e, "group metadata not durable");
    }
    match pending
        .resolve(Err(ResponseError::RebalanceInProgress))
        .await
    {
        Ok(sync) => SyncGroupResponse::default()
            .with_protocol_type(opt_str_bytes(sync.protocol_type))
            .with_protocol_name(opt_str_bytes(sync.protocol_name))
            .with_assignment(sync.assignment),
        Err(e) => SyncGroupResponse::default().with_error_code(e.code()),
    }
}
