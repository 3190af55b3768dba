//! ListGroups (API key 16, v0-5): every group, optionally filtered by state (v4+) and type (v5+).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::RequestContext;
use crate::auth::{Operation, ResourceType};
use crate::group::wire::str_bytes;

/// Handles a ListGroups request.
pub async fn handle(ctx: &RequestContext, req: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_string()).collect();
    let groups = ctx
        .broker
        .groups
        .list(&states, &types)
        .into_iter()
        // Kafka lists every group to cluster describers, else only describable groups.
        .filter(|g| {
            ctx.authorize_cluster(Operation::Describe)
                || ctx.authorize(Operation::Describe, ResourceType::Group, &g.group_id)
        })
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type))
                .with_group_state(str_bytes(g.state))
                .with_group_type(str_bytes(g.group_type))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
