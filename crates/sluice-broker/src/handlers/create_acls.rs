//! CreateAcls (API key 30, v1-3): adds ACL bindings. Needs Alter on the cluster; each
//! binding is validated as Kafka does (INVALID_REQUEST) and the valid ones are persisted.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::run_blocking;
use crate::auth::{AclBinding, Operation, PatternType, Permission, ResourceType};

/// Handles a CreateAcls request.
pub async fn handle(ctx: &RequestContext, req: CreateAclsRequest) -> CreateAclsResponse {
    let results = match ctx.acl_admin(Operation::Alter) {
        Err((error, message)) => req
            .creations
            .iter()
            .map(|_| failure(error, message))
            .collect(),
        Ok(authorizer) => {
            let bindings: Vec<AclBinding> = req.creations.iter().map(binding).collect();
            match run_blocking(authorizer, move |a| a.create(bindings)).await {
                Ok(results) => results
                    .into_iter()
                    .map(|r| match r {
                        Ok(()) => AclCreationResult::default(),
                        Err(e) => failure(e.error_code(), &e.to_string()),
                    })
                    .collect(),
                Err(e) => req
                    .creations
                    .iter()
                    .map(|_| failure(e.error_code(), &e.to_string()))
                    .collect(),
            }
        }
    };
    CreateAclsResponse::default().with_results(results)
}

/// The binding a creation asks for (unknown codes become `Unknown`, refused by validation).
fn binding(c: &AclCreation) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::from_code(c.resource_type),
        resource_name: c.resource_name.to_string(),
        pattern_type: PatternType::from_code(c.resource_pattern_type),
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: Operation::from_code(c.operation),
        permission: Permission::from_code(c.permission_type),
    }
}

fn failure(error: ResponseError, message: &str) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message.to_owned())))
}
