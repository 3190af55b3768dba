//! DescribeAcls (API key 29, v1-3): lists the ACL bindings a filter selects, grouped by
//! resource pattern. Needs Describe on the cluster.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::{AclBinding, AclFilter, Operation};

/// Handles a DescribeAcls request.
pub async fn handle(ctx: &RequestContext, req: DescribeAclsRequest) -> DescribeAclsResponse {
    let authorizer = match ctx.acl_admin(Operation::Describe) {
        Ok(a) => a,
        Err((error, message)) => return failure(error, message),
    };
    let filter = match AclFilter::from_wire(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    ) {
        Ok(f) => f,
        Err(e) => return failure(ResponseError::InvalidRequest, &e.0),
    };
    DescribeAclsResponse::default().with_resources(group_by_resource(authorizer.acls(&filter)))
}

/// Kafka's response shape: one entry per resource pattern with its ACLs.
fn group_by_resource(bindings: Vec<AclBinding>) -> Vec<DescribeAclsResource> {
    let mut resources: BTreeMap<_, Vec<AclDescription>> = BTreeMap::new();
    for b in bindings {
        resources
            .entry((b.resource_type, b.resource_name, b.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(b.principal))
                    .with_host(StrBytes::from_string(b.host))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
    }
    resources
        .into_iter()
        .map(|((resource_type, name, pattern), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type.code())
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pattern.code())
                .with_acls(acls)
        })
        .collect()
}

fn failure(error: ResponseError, message: &str) -> DescribeAclsResponse {
    DescribeAclsResponse::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message.to_owned())))
}
