//! LeaveGroup (API key 13, v0-5): one member (v0-2) or a batch of members (v3+) leave.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::RequestContext;
use crate::auth::Operation;
use crate::group::wire::code;
use crate::group::Now;

/// Handles a LeaveGroup request.
pub async fn handle(ctx: &RequestContext, req: LeaveGroupRequest) -> LeaveGroupResponse {
    if let Err(e) = ctx.authorize_group(Operation::Read, &req.group_id) {
        return LeaveGroupResponse::default().with_error_code(e.code());
    }
    let batched = ctx.version() >= 3;
    let members: Vec<(String, Option<String>)> = if batched {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let outcome = ctx
        .broker
        .groups
        .leave(&req.group_id, &members, Now::current());
    match outcome {
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(results) if batched => {
            let members = members
                .into_iter()
                .zip(results)
                .map(|((member_id, instance_id), result)| {
                    MemberResponse::default()
                        .with_member_id(member_id.into())
                        .with_group_instance_id(instance_id.map(Into::into))
                        .with_error_code(code(&result))
                })
                .collect();
            LeaveGroupResponse::default().with_members(members)
        }
        Ok(results) => {
            let error = results.first().map_or(0, code);
            LeaveGroupResponse::default().with_error_code(error)
        }
    }
}
