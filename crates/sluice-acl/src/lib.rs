//! The ACL model: bindings, the filters DescribeAcls/DeleteAcls select them with, and the
//! validation CreateAcls applies. Wire codes are Kafka's (`org.apache.kafka.common.acl`).
//!
//! A leaf crate so that the broker's authorizer, the admin client and KSS share one model
//! without the services depending on the broker.

use serde::{Deserialize, Serialize};

/// The only valid name of the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The resource name and host that match everything.
pub const WILDCARD: &str = "*";

/// Declares a Kafka enum with its wire codes, `from_code`/`code` and serde as its name.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($(#[$vdoc])* $variant,)* }

        impl $name {
            /// The value for a wire code; unknown codes read as `Unknown` (as Kafka does).
            pub fn from_code(code: i8) -> Self {
                match code { $($code => $name::$variant,)* _ => $name::Unknown }
            }

            /// The wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code,)* }
            }

            /// Kafka's upper-case name (as `kafka-acls.sh` prints it).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Parses a name case-insensitively, ignoring `-` and `_` (`transactional-id`).
            pub fn parse(text: &str) -> Option<Self> {
                let wanted: String = text.chars().filter(|c| *c != '_' && *c != '-').collect();
                [$($name::$variant,)*].into_iter().find(|v| {
                    v.as_str().replace('_', "").eq_ignore_ascii_case(&wanted)
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// The kind of resource an ACL protects.
    ResourceType {
        /// Not understood by this broker.
        Unknown = 0 => "UNKNOWN",
        /// Any type (filters only).
        Any = 1 => "ANY",
        /// A topic.
        Topic = 2 => "TOPIC",
        /// A consumer group.
        Group = 3 => "GROUP",
        /// The cluster (`kafka-cluster`).
        Cluster = 4 => "CLUSTER",
        /// A transactional id.
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        /// A delegation token.
        DelegationToken = 6 => "DELEGATION_TOKEN",
        /// A user (quotas, SCRAM).
        User = 7 => "USER",
    }
}

wire_enum! {
    /// How an ACL's resource name matches resource names.
    PatternType {
        /// Not understood by this broker.
        Unknown = 0 => "UNKNOWN",
        /// Any pattern type, names compared exactly (filters only).
        Any = 1 => "ANY",
        /// Every pattern that would apply to the filter's name (filters only).
        Match = 2 => "MATCH",
        /// The name exactly, or `*` for every resource.
        Literal = 3 => "LITERAL",
        /// Every resource whose name starts with the ACL's name.
        Prefixed = 4 => "PREFIXED",
    }
}

wire_enum! {
    /// An operation on a resource.
    Operation {
        /// Not understood by this broker.
        Unknown = 0 => "UNKNOWN",
        /// Any operation (filters only).
        Any = 1 => "ANY",
        /// Every operation.
        All = 2 => "ALL",
        /// Read (Fetch, group membership).
        Read = 3 => "READ",
        /// Write (Produce).
        Write = 4 => "WRITE",
        /// Create (CreateTopics).
        Create = 5 => "CREATE",
        /// Delete (DeleteTopics, DeleteRecords).
        Delete = 6 => "DELETE",
        /// Alter (ACL admin, CreatePartitions).
        Alter = 7 => "ALTER",
        /// Describe (Metadata, ListOffsets, DescribeAcls).
        Describe = 8 => "DESCRIBE",
        /// Inter-broker actions.
        ClusterAction = 9 => "CLUSTER_ACTION",
        /// DescribeConfigs.
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        /// AlterConfigs.
        AlterConfigs = 11 => "ALTER_CONFIGS",
        /// Idempotent produce (InitProducerId).
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        /// Create delegation tokens.
        CreateTokens = 13 => "CREATE_TOKENS",
        /// Describe delegation tokens.
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
    }
}

wire_enum! {
    /// Whether an ACL allows or denies.
    Permission {
        /// Not understood by this broker.
        Unknown = 0 => "UNKNOWN",
        /// Either (filters only).
        Any = 1 => "ANY",
        /// Refuses the operation; wins over every ALLOW.
        Deny = 2 => "DENY",
        /// Grants the operation.
        Allow = 3 => "ALLOW",
    }
}

/// One ACL: who may (or may not) do what to which resources from where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    /// Resource type.
    pub resource_type: ResourceType,
    /// Resource name, prefix, or `*`.
    pub resource_name: String,
    /// LITERAL or PREFIXED.
    pub pattern_type: PatternType,
    /// `User:name` or `User:*`.
    pub principal: String,
    /// Client IP or `*`.
    pub host: String,
    /// Operation.
    pub operation: Operation,
    /// ALLOW or DENY.
    pub permission: Permission,
}

/// Why a binding or filter was refused: reported as INVALID_REQUEST with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAcl(pub String);

impl AclBinding {
    /// Kafka's checks for a new ACL (`AclControlManager.validateNewAcl` plus the cluster-name
    /// and empty-name checks of `AclApis`).
    pub fn validate(&self) -> Result<(), InvalidAcl> {
        let invalid = |what: &str, value: &dyn std::fmt::Display| {
            Err(InvalidAcl(format!("Invalid {what} {value}")))
        };
        if matches!(
            self.resource_type,
            ResourceType::Unknown | ResourceType::Any
        ) {
            return invalid("resourceType", &self.resource_type);
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return invalid("patternType", &self.pattern_type);
        }
        if matches!(self.operation, Operation::Unknown | Operation::Any) {
            return invalid("operation", &self.operation);
        }
        if !matches!(self.permission, Permission::Allow | Permission::Deny) {
            return invalid("permissionType", &self.permission);
        }
        if self.resource_name.is_empty() {
            return Err(InvalidAcl("Resource name should not be empty".into()));
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err(InvalidAcl(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            )));
        }
        if !self.principal.contains(':') {
            return Err(InvalidAcl(format!(
                "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
                self.principal
            )));
        }
        if self.host.is_empty() {
            return Err(InvalidAcl(
                "Host should not be empty; use * for every host".into(),
            ));
        }
        Ok(())
    }
}

/// Selects bindings for DescribeAcls and DeleteAcls; `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclFilter {
    /// Resource type, or ANY.
    pub resource_type: Option<ResourceType>,
    /// Resource name (interpreted according to `pattern_type`).
    pub resource_name: Option<String>,
    /// LITERAL, PREFIXED, ANY or MATCH.
    pub pattern_type: Option<PatternType>,
    /// Exact principal string.
    pub principal: Option<String>,
    /// Exact host string.
    pub host: Option<String>,
    /// Operation, or ANY.
    pub operation: Option<Operation>,
    /// Permission, or ANY.
    pub permission: Option<Permission>,
}

impl AclFilter {
    /// Builds a filter from wire values (ANY becomes `None`).
    pub fn from_wire(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<Self, InvalidAcl> {
        let resource_type = ResourceType::from_code(resource_type);
        let pattern_type = PatternType::from_code(pattern_type);
        let operation = Operation::from_code(operation);
        let permission = Permission::from_code(permission);
        if resource_type == ResourceType::Unknown
            || pattern_type == PatternType::Unknown
            || operation == Operation::Unknown
            || permission == Permission::Unknown
        {
            return Err(InvalidAcl("Filters contain UNKNOWN elements".into()));
        }
        Ok(AclFilter {
            resource_type: (resource_type != ResourceType::Any).then_some(resource_type),
            resource_name: resource_name.map(str::to_owned),
            pattern_type: (pattern_type != PatternType::Any).then_some(pattern_type),
            principal: principal.map(str::to_owned),
            host: host.map(str::to_owned),
            operation: (operation != Operation::Any).then_some(operation),
            permission: (permission != Permission::Any).then_some(permission),
        })
    }

    /// True if `binding` is selected (Kafka's `AclBindingFilter.matches`).
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_resource(binding) && self.matches_entry(binding)
    }

    fn matches_resource(&self, binding: &AclBinding) -> bool {
        if self
            .resource_type
            .is_some_and(|t| t != binding.resource_type)
        {
            return false;
        }
        let pattern = self.pattern_type.unwrap_or(PatternType::Any);
        if !matches!(pattern, PatternType::Any | PatternType::Match)
            && pattern != binding.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if pattern == PatternType::Any || pattern == binding.pattern_type {
            return *name == binding.resource_name;
        }
        // MATCH: every ACL that would apply to a resource called `name`.
        match binding.pattern_type {
            PatternType::Literal => {
                *name == binding.resource_name || binding.resource_name == WILDCARD
            }
            PatternType::Prefixed => name.starts_with(&binding.resource_name),
            _ => false,
        }
    }

    fn matches_entry(&self, binding: &AclBinding) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| *p == binding.principal)
            && self.host.as_ref().is_none_or(|h| *h == binding.host)
            && self.operation.is_none_or(|o| o == binding.operation)
            && self.permission.is_none_or(|p| p == binding.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn binding(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        op: Operation,
        perm: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: "User:orders-svc".into(),
            host: "*".into(),
            operation: op,
            permission: perm,
        }
    }

    fn topic(name: &str, pt: PatternType) -> AclBinding {
        binding(
            ResourceType::Topic,
            name,
            pt,
            Operation::Write,
            Permission::Allow,
        )
    }

    #[test]
    fn validation_refuses_what_kafka_refuses() {
        let ok = topic("orders", PatternType::Literal);
        assert!(ok.validate().is_ok());
        let cases = [
            AclBinding {
                resource_type: ResourceType::Any,
                ..ok.clone()
            },
            AclBinding {
                resource_type: ResourceType::Unknown,
                ..ok.clone()
            },
            AclBinding {
                pattern_type: PatternType::Match,
                ..ok.clone()
            },
            AclBinding {
                pattern_type: PatternType::Any,
                ..ok.clone()
            },
            AclBinding {
                operation: Operation::Any,
                ..ok.clone()
            },
            AclBinding {
                permission: Permission::Any,
                ..ok.clone()
            },
            AclBinding {
                resource_name: String::new(),
                ..ok.clone()
            },
            AclBinding {
                principal: "orders-svc".into(),
                ..ok.clone()
            },
            AclBinding {
                resource_type: ResourceType::Cluster,
                resource_name: "other".into(),
                ..ok.clone()
            },
        ];
        for case in cases {
            assert!(case.validate().is_err(), "{case:?} should be refused");
        }
        let cluster = AclBinding {
            resource_type: ResourceType::Cluster,
            resource_name: CLUSTER_NAME.into(),
            ..ok
        };
        assert!(cluster.validate().is_ok());
    }

    #[test]
    fn literal_and_any_filters_compare_names_exactly() {
        let literal = topic("orders", PatternType::Literal);
        let prefixed = topic("orders", PatternType::Prefixed);
        let f = AclFilter {
            resource_name: Some("orders".into()),
            ..Default::default()
        };
        assert!(f.matches(&literal) && f.matches(&prefixed));
        let f = AclFilter {
            resource_name: Some("orders".into()),
            pattern_type: Some(PatternType::Literal),
            ..Default::default()
        };
        assert!(f.matches(&literal) && !f.matches(&prefixed));
        let f = AclFilter {
            resource_name: Some("orders.eu".into()),
            ..Default::default()
        };
        assert!(!f.matches(&literal) && !f.matches(&prefixed));
    }

    #[test]
    fn match_filters_select_every_applicable_acl() {
        let f = AclFilter {
            resource_name: Some("orders.eu".into()),
            pattern_type: Some(PatternType::Match),
            ..Default::default()
        };
        assert!(f.matches(&topic("orders.", PatternType::Prefixed)));
        assert!(f.matches(&topic("*", PatternType::Literal)));
        assert!(f.matches(&topic("orders.eu", PatternType::Literal)));
        assert!(!f.matches(&topic("orders.us", PatternType::Literal)));
        assert!(!f.matches(&topic("billing", PatternType::Prefixed)));
    }

    #[test]
    fn entry_fields_filter_exactly() {
        let b = topic("orders", PatternType::Literal);
        let by_principal = |p: &str| AclFilter {
            principal: Some(p.into()),
            ..Default::default()
        };
        assert!(by_principal("User:orders-svc").matches(&b));
        assert!(!by_principal("User:*").matches(&b));
        let by_op = AclFilter {
            operation: Some(Operation::Read),
            ..Default::default()
        };
        assert!(!by_op.matches(&b));
        let by_perm = AclFilter {
            permission: Some(Permission::Allow),
            resource_type: Some(ResourceType::Topic),
            ..Default::default()
        };
        assert!(by_perm.matches(&b));
        let by_type = AclFilter {
            resource_type: Some(ResourceType::Group),
            ..Default::default()
        };
        assert!(!by_type.matches(&b));
    }

    #[test]
    fn unknown_filter_codes_are_invalid_and_any_means_everything() {
        assert!(AclFilter::from_wire(0, None, 1, None, None, 1, 1).is_err());
        assert!(AclFilter::from_wire(1, None, 1, None, None, 1, 42).is_err());
        let any = AclFilter::from_wire(1, None, 1, None, None, 1, 1).unwrap();
        assert_eq!(any, AclFilter::default());
        assert!(any.matches(&topic("x", PatternType::Prefixed)));
    }

    #[test]
    fn names_parse_loosely() {
        assert_eq!(
            ResourceType::parse("transactional-id"),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(
            Operation::parse("IdempotentWrite"),
            Some(Operation::IdempotentWrite)
        );
        assert_eq!(PatternType::parse("prefixed"), Some(PatternType::Prefixed));
        assert_eq!(Permission::parse("nope"), None);
        for code in -2..20 {
            let op = Operation::from_code(code);
            assert!(op == Operation::Unknown || op.code() == code);
        }
    }

    proptest! {
        #[test]
        fn validation_never_panics(rt in any::<i8>(), pt in any::<i8>(), op in any::<i8>(), perm in any::<i8>(),
                                   name in ".{0,20}", principal in ".{0,20}", host in ".{0,10}") {
            let b = AclBinding {
                resource_type: ResourceType::from_code(rt),
                resource_name: name.clone(),
                pattern_type: PatternType::from_code(pt),
                principal: principal.clone(),
                host: host.clone(),
                operation: Operation::from_code(op),
                permission: Permission::from_code(perm),
            };
            let valid = b.validate().is_ok();
            if valid {
                prop_assert!(!name.is_empty() && principal.contains(':'));
            }
            if let Ok(f) = AclFilter::from_wire(rt, Some(&name), pt, Some(&principal), Some(&host), op, perm) {
                // A filter built from a valid binding's own values selects it.
                if valid { prop_assert!(f.matches(&b)); }
            }
        }
    }
}
