//! Authorization checks as handlers call them: one call per check, allow-all when the broker
//! runs without an authorizer. The decisions themselves are [`crate::auth`]'s.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::RequestContext;
use crate::auth::{Authorizer, KafkaPrincipal, Operation, ResourceType, CLUSTER_NAME};

impl RequestContext {
    /// The bitfield (bit = Kafka operation code) of `operations` the caller may perform on
    /// `resource_type`/`name`, for the `*_authorized_operations` response fields.
    pub fn authorized_operations(
        &self,
        resource_type: ResourceType,
        name: &str,
        operations: &[Operation],
    ) -> i32 {
        operations
            .iter()
            .filter(|op| self.authorize(**op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }

    /// The broker's authorizer, or `None` when authorization is disabled.
    pub fn authorizer(&self) -> Option<&Arc<Authorizer>> {
        self.broker.authorizer.as_ref()
    }

    /// The authenticated principal of the connection this request came on.
    pub fn principal(&self) -> &KafkaPrincipal {
        &self.principal
    }

    /// Whether the caller may perform `operation` on `resource_type`/`name` (always true
    /// without an authorizer). Allocation-free: safe on the produce/fetch path.
    pub fn authorize(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        self.authorizer().is_none_or(|a| {
            let allowed = a.authorize(&self.principal, self.peer.ip(), operation, resource_type, name);
            if !allowed {
                tracing::debug!(principal = %self.principal, peer = %self.peer, %operation, %resource_type, resource = name, "authorization denied");
            }
            allowed
        })
    }

    /// GROUP_AUTHORIZATION_FAILED unless the caller may perform `operation` on `group`.
    pub fn authorize_group(&self, operation: Operation, group: &str) -> Result<(), ResponseError> {
        if self.authorize(operation, ResourceType::Group, group) {
            Ok(())
        } else {
            Err(ResponseError::GroupAuthorizationFailed)
        }
    }

    /// Whether the caller may create topic `name` (Create on the cluster or on the topic), as
    /// auto-creation requires.
    pub fn may_create_topic(&self, name: &str) -> bool {
        self.authorize_cluster(Operation::Create)
            || self.authorize(Operation::Create, ResourceType::Topic, name)
    }

    /// Whether the caller may perform `operation` on the cluster resource.
    pub fn authorize_cluster(&self, operation: Operation) -> bool {
        self.authorize(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether the caller may perform `operation` on some resource of `resource_type`
    /// (InitProducerId: Write on any topic).
    pub fn authorize_any(&self, operation: Operation, resource_type: ResourceType) -> bool {
        self.authorizer().is_none_or(|a| {
            a.authorize_any(&self.principal, self.peer.ip(), operation, resource_type)
        })
    }

    /// The authorizer for an ACL admin request that needs `operation` on the cluster, or the
    /// error every result of the request reports: SECURITY_DISABLED without an authorizer,
    /// CLUSTER_AUTHORIZATION_FAILED without the permission.
    pub fn acl_admin(
        &self,
        operation: Operation,
    ) -> Result<Arc<Authorizer>, (ResponseError, &'static str)> {
        let Some(authorizer) = self.authorizer() else {
            return Err((
                ResponseError::SecurityDisabled,
                "No Authorizer is configured on the broker; enable ACLs in the broker config",
            ));
        };
        if !self.authorize_cluster(operation) {
            return Err((
                ResponseError::ClusterAuthorizationFailed,
                "the principal is not allowed this operation on the cluster; ask an admin for the ACL",
            ));
        }
        Ok(authorizer.clone())
    }
}
