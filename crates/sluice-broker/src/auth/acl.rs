//! The ACL model, from the leaf crate `sluice-acl` it shares with admin clients and KSS, plus
//! the operations Kafka reports as authorized per resource type.

pub use sluice_acl::*;

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
