//! Authorization checks as handlers call them: one call per check, allow-all when the broker
//! runs without an authorizer.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::acl::{Operation, ResourceType, CLUSTER_NAME};
use super::authorizer::{AclError, Authorizer};
use super::principal::KafkaPrincipal;
use crate::handlers::RequestContext;

/// The topic operations Kafka reports in `topic_authorized_operations`.
pub const TOPIC_OPERATIONS: &[Operation] = &[
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Delete,
    Operation::Alter,
    Operation::Describe,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];
/// The group operations Kafka reports in `authorized_operations`.
pub const GROUP_OPERATIONS: &[Operation] =
    &[Operation::Read, Operation::Delete, Operation::Describe];
/// The cluster operations Kafka reports in `cluster_authorized_operations`.
pub const CLUSTER_OPERATIONS: &[Operation] = &[
    Operation::Create,
    Operation::Alter,
    Operation::Describe,
    Operation::ClusterAction,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
];

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

/// Runs an ACL change off the async threads (it fsyncs `acls.json`).
pub async fn run_blocking<T: Send + 'static>(
    authorizer: Arc<Authorizer>,
    change: impl FnOnce(&Authorizer) -> T + Send + 'static,
) -> Result<T, AclError> {
    tokio::task::spawn_blocking(move || change(&authorizer))
        .await
        .map_err(|e| AclError::Storage {
            path: "acls.json".into(),
            reason: format!("the ACL change task failed: {e}"),
        })
}
