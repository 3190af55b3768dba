//! The ACL admin APIs in terms of the broker's [`AclBinding`] and [`AclFilter`] types.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use sluice_acl::{AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType};

use crate::error::check;
use crate::{AdminConnection, AdminError};

/// Version of the ACL APIs used: v1 adds pattern types and is served by Kafka 2.0+.
pub const ACL_API_VERSION: i16 = 1;

fn binding(
    resource_type: i8,
    name: &StrBytes,
    pattern: i8,
    principal: &StrBytes,
    host: &StrBytes,
    operation: i8,
    permission: i8,
) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::from_code(resource_type),
        resource_name: name.to_string(),
        pattern_type: PatternType::from_code(pattern),
        principal: principal.to_string(),
        host: host.to_string(),
        operation: Operation::from_code(operation),
        permission: Permission::from_code(permission),
    }
}

/// A filter in wire form: (resource type, name, pattern, principal, host, operation, permission).
type WireFilter = (
    i8,
    Option<StrBytes>,
    i8,
    Option<StrBytes>,
    Option<StrBytes>,
    i8,
    i8,
);

fn wire(filter: &AclFilter) -> WireFilter {
    let text = |s: &Option<String>| s.clone().map(StrBytes::from_string);
    (
        filter.resource_type.unwrap_or(ResourceType::Any).code(),
        text(&filter.resource_name),
        filter.pattern_type.unwrap_or(PatternType::Any).code(),
        text(&filter.principal),
        text(&filter.host),
        filter.operation.unwrap_or(Operation::Any).code(),
        filter.permission.unwrap_or(Permission::Any).code(),
    )
}

/// The filter that selects exactly `binding` (used to delete one binding and nothing else).
pub fn exact_filter(binding: &AclBinding) -> AclFilter {
    AclFilter {
        resource_type: Some(binding.resource_type),
        resource_name: Some(binding.resource_name.clone()),
        pattern_type: Some(binding.pattern_type),
        principal: Some(binding.principal.clone()),
        host: Some(binding.host.clone()),
        operation: Some(binding.operation),
        permission: Some(binding.permission),
    }
}

/// Lists the bindings `filter` selects (DescribeAcls).
pub async fn describe_acls(
    conn: &mut AdminConnection,
    filter: &AclFilter,
) -> Result<Vec<AclBinding>, AdminError> {
    let (rt, name, pattern, principal, host, op, perm) = wire(filter);
    let req = DescribeAclsRequest::default()
        .with_resource_type_filter(rt)
        .with_resource_name_filter(name)
        .with_pattern_type_filter(pattern)
        .with_principal_filter(principal)
        .with_host_filter(host)
        .with_operation(op)
        .with_permission_type(perm);
    let resp = conn.request(&req, ACL_API_VERSION).await?;
    check(resp.error_code, resp.error_message.as_ref(), || {
        "listing ACLs".into()
    })?;
    Ok(resp
        .resources
        .iter()
        .flat_map(|r| {
            r.acls.iter().map(|a| {
                binding(
                    r.resource_type,
                    &r.resource_name,
                    r.pattern_type,
                    &a.principal,
                    &a.host,
                    a.operation,
                    a.permission_type,
                )
            })
        })
        .collect())
}

/// Creates `bindings` in one CreateAcls request; fails on the first binding the broker refused.
pub async fn create_acls(
    conn: &mut AdminConnection,
    bindings: &[AclBinding],
) -> Result<(), AdminError> {
    if bindings.is_empty() {
        return Ok(());
    }
    let creations = bindings
        .iter()
        .map(|b| {
            AclCreation::default()
                .with_resource_type(b.resource_type.code())
                .with_resource_name(StrBytes::from_string(b.resource_name.clone()))
                .with_resource_pattern_type(b.pattern_type.code())
                .with_principal(StrBytes::from_string(b.principal.clone()))
                .with_host(StrBytes::from_string(b.host.clone()))
                .with_operation(b.operation.code())
                .with_permission_type(b.permission.code())
        })
        .collect();
    let resp = conn
        .request(
            &CreateAclsRequest::default().with_creations(creations),
            ACL_API_VERSION,
        )
        .await?;
    for (result, b) in resp.results.iter().zip(bindings) {
        check(result.error_code, result.error_message.as_ref(), || {
            format!(
                "adding {} {} on {} {}",
                b.principal, b.operation, b.resource_type, b.resource_name
            )
        })?;
    }
    Ok(())
}

/// Deletes every binding any of `filters` selects (one DeleteAcls request) and returns them.
pub async fn delete_acls(
    conn: &mut AdminConnection,
    filters: &[AclFilter],
) -> Result<Vec<AclBinding>, AdminError> {
    if filters.is_empty() {
        return Ok(Vec::new());
    }
    let wire_filters = filters
        .iter()
        .map(|f| {
            let (rt, name, pattern, principal, host, op, perm) = wire(f);
            DeleteAclsFilter::default()
                .with_resource_type_filter(rt)
                .with_resource_name_filter(name)
                .with_pattern_type_filter(pattern)
                .with_principal_filter(principal)
                .with_host_filter(host)
                .with_operation(op)
                .with_permission_type(perm)
        })
        .collect();
    let resp = conn
        .request(
            &DeleteAclsRequest::default().with_filters(wire_filters),
            ACL_API_VERSION,
        )
        .await?;
    let mut removed = Vec::new();
    for result in &resp.filter_results {
        check(result.error_code, result.error_message.as_ref(), || {
            "removing ACLs".into()
        })?;
        removed.extend(result.matching_acls.iter().map(|m| {
            binding(
                m.resource_type,
                &m.resource_name,
                m.pattern_type,
                &m.principal,
                &m.host,
                m.operation,
                m.permission_type,
            )
        }));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_filter_means_any_and_exact_filter_pins_every_field() {
        let (rt, name, pattern, principal, _, op, perm) = wire(&AclFilter::default());
        assert_eq!((rt, pattern, op, perm), (1, 1, 1, 1));
        assert!(name.is_none() && principal.is_none());
        let b = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Literal,
            principal: "User:CN=a".into(),
            host: "*".into(),
            operation: Operation::Write,
            permission: Permission::Allow,
        };
        let f = exact_filter(&b);
        assert!(f.matches(&b));
        let mut other = b.clone();
        other.operation = Operation::Read;
        assert!(!f.matches(&other));
    }
}
