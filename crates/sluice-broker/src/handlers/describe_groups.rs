//! DescribeGroups (API key 15, v0-5): state, protocol and members of each group; unknown
//! groups are reported as `Dead`, as Kafka does.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::auth::GROUP_OPERATIONS;
use crate::auth::{Operation, ResourceType};
use crate::group::wire::{opt_str_bytes, str_bytes};

/// Handles a DescribeGroups request.
pub async fn handle(ctx: &RequestContext, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .iter()
        .map(|group_id| {
            let described = DescribedGroup::default().with_group_id(group_id.clone());
            if group_id.is_empty() {
                return described
                    .with_error_code(ResponseError::InvalidGroupId.code())
                    .with_group_state(str_bytes("Dead"));
            }
            if let Err(e) = ctx.authorize_group(Operation::Describe, group_id) {
                return described.with_error_code(e.code());
            }
            let d = ctx.broker.groups.describe(group_id);
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(opt_str_bytes(m.group_instance_id))
                        .with_client_id(str_bytes(m.client_id))
                        .with_client_host(str_bytes(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            let operations = if req.include_authorized_operations {
                ctx.authorized_operations(ResourceType::Group, group_id, GROUP_OPERATIONS)
            } else {
                i32::MIN
            };
            described
                .with_group_state(str_bytes(d.state))
                .with_protocol_type(str_bytes(d.protocol_type))
                .with_protocol_data(str_bytes(d.protocol))
                .with_members(members)
                .with_authorized_operations(operations)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
