//! DeleteAcls (API key 31, v1-3): removes the bindings each filter selects and returns them
//! per filter. Needs Alter on the cluster.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::acl::InvalidAcl;
use crate::auth::run_blocking;
use crate::auth::{AclBinding, AclFilter, Operation};

/// Handles a DeleteAcls request.
pub async fn handle(ctx: &RequestContext, req: DeleteAclsRequest) -> DeleteAclsResponse {
    let results = match ctx.acl_admin(Operation::Alter) {
        Err((error, message)) => req
            .filters
            .iter()
            .map(|_| failure(error, message))
            .collect(),
        Ok(authorizer) => {
            // Invalid filters fail alone; the valid ones are applied together.
            let parsed: Vec<Result<AclFilter, InvalidAcl>> =
                req.filters.iter().map(filter).collect();
            let valid: Vec<AclFilter> = parsed
                .iter()
                .filter_map(|f| f.as_ref().ok().cloned())
                .collect();
            match run_blocking(authorizer, move |a| a.delete(&valid))
                .await
                .and_then(|r| r)
            {
                Ok(matched) => {
                    let mut matched = matched.into_iter();
                    parsed
                        .iter()
                        .map(|f| match f {
                            Ok(_) => DeleteAclsFilterResult::default().with_matching_acls(
                                matched
                                    .next()
                                    .unwrap_or_default()
                                    .into_iter()
                                    .map(matching)
                                    .collect(),
                            ),
                            Err(e) => failure(ResponseError::InvalidRequest, &e.0),
                        })
                        .collect()
                }
                Err(e) => req
                    .filters
                    .iter()
                    .map(|_| failure(e.error_code(), &e.to_string()))
                    .collect(),
            }
        }
    };
    DeleteAclsResponse::default().with_filter_results(results)
}

fn filter(f: &DeleteAclsFilter) -> Result<AclFilter, InvalidAcl> {
    AclFilter::from_wire(
        f.resource_type_filter,
        f.resource_name_filter.as_deref(),
        f.pattern_type_filter,
        f.principal_filter.as_deref(),
        f.host_filter.as_deref(),
        f.operation,
        f.permission_type,
    )
}

fn matching(b: AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(b.resource_type.code())
        .with_resource_name(StrBytes::from_string(b.resource_name))
        .with_pattern_type(b.pattern_type.code())
        .with_principal(StrBytes::from_string(b.principal))
        .with_host(StrBytes::from_string(b.host))
        .with_operation(b.operation.code())
        .with_permission_type(b.permission.code())
}

fn failure(error: ResponseError, message: &str) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message.to_owned())))
}
