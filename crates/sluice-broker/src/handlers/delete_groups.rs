//! DeleteGroups (API key 42, v0-2): deletes empty groups and their committed offsets.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::RequestContext;
use crate::auth::Operation;
use crate::group::wire::code;
use crate::group::Now;

/// Handles a DeleteGroups request.
pub async fn handle(ctx: &RequestContext, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let now = Now::current();
    let results = req
        .groups_names
        .iter()
        .map(|group_id| {
            let result = ctx
                .authorize_group(Operation::Delete, group_id)
                .and_then(|()| ctx.broker.groups.delete_group(group_id, now));
            DeletableGroupResult::default()
                .with_group_id(group_id.clone())
                .with_error_code(code(&result))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
