//! The `acl.yml` format.
//!
//! ```yaml
//! principal: "User:CN={service}"    # how a service id becomes a Kafka principal (default)
//! services:
//!   orders-svc:
//!     produces: [orders]            # topic names; a trailing * makes a prefix: "orders.*"
//!   analytics-svc:
//!     consumes: [orders]
//!     groups: [analytics]           # consumer groups (same literal/prefix rule)
//!     disabled: false               # true: KSS issues no new certificates to it
//! acls:                             # raw Kafka ACLs for anything else
//!   - principal: "User:CN=ops"
//!     resource: cluster             # topic | group | transactional-id | cluster
//!     operations: [describe]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use sluice_acl::{
    AclBinding, Operation, PatternType, Permission, ResourceType, CLUSTER_NAME, WILDCARD,
};

use crate::service::ServiceId;

/// Principal template used when the file sets none: the subject KSS certificates carry.
pub const DEFAULT_PRINCIPAL: &str = "User:CN={service}";

/// Why an `acl.yml` is unusable: file, line and column when known, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct AclFileError {
    /// The file.
    pub file: String,
    /// 1-based line and column of the offending value.
    pub location: Option<(usize, usize)>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl AclFileError {
    /// A YAML parse error of `file`, with its line and column (also for documents that embed
    /// an acl.yml, such as platform files).
    pub fn yaml(file: &str, e: &serde_yaml::Error) -> Self {
        AclFileError {
            file: file.to_owned(),
            location: e.location().map(|l| (l.line(), l.column())),
            // serde_yaml appends "at line L column C", which `location` already says.
            message: e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// A topic or group name: literal, or a prefix written with a trailing `*` (`*` alone is the
/// literal wildcard Kafka matches every name with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    name: String,
    pattern: PatternType,
}

impl<'de> Deserialize<'de> for NamePattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let (name, pattern) = match text.strip_suffix('*') {
            Some("") => (WILDCARD.to_owned(), PatternType::Literal),
            Some(prefix) => (prefix.to_owned(), PatternType::Prefixed),
            None => (text.clone(), PatternType::Literal),
        };
        if name.is_empty() || name.contains('*') {
            return Err(serde::de::Error::custom(format!(
                "{text:?} is not a name: use a literal name, a prefix ending in * or * alone"
            )));
        }
        Ok(NamePattern { name, pattern })
    }
}

/// What one service may do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAcls {
    /// Topics it writes to.
    #[serde(default)]
    pub produces: Vec<NamePattern>,
    /// Topics it reads from.
    #[serde(default)]
    pub consumes: Vec<NamePattern>,
    /// Consumer groups it joins and commits offsets for.
    #[serde(default)]
    pub groups: Vec<NamePattern>,
    /// True: KSS refuses it new certificates (its ACLs stay, so access ends at expiry).
    #[serde(default)]
    pub disabled: bool,
}

/// One operation name, checked where it is written (so errors point at its line).
#[derive(Debug, Clone, Copy)]
struct OperationName(Operation);

impl<'de> Deserialize<'de> for OperationName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Operation::parse(&s)
            .filter(|o| !matches!(o, Operation::Unknown | Operation::Any))
            .map(OperationName)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown operation {s:?}; use read, write, create, delete, alter, describe, describe-configs, alter-configs, idempotent-write, cluster-action or all"
                ))
            })
    }
}

fn parse_operation<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Operation>, D::Error> {
    Ok(Vec::<OperationName>::deserialize(d)?
        .into_iter()
        .map(|o| o.0)
        .collect())
}

fn parse_resource<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ResourceType, D::Error> {
    let s = String::deserialize(d)?;
    ResourceType::parse(&s)
        .filter(|r| !matches!(r, ResourceType::Unknown | ResourceType::Any))
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown resource {s:?}; use topic, group, transactional-id or cluster"
            ))
        })
}

fn parse_permission<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Permission, D::Error> {
    let s = String::deserialize(d)?;
    Permission::parse(&s)
        .filter(|p| matches!(p, Permission::Allow | Permission::Deny))
        .ok_or_else(|| {
            serde::de::Error::custom(format!("unknown permission {s:?}; use allow or deny"))
        })
}

fn default_permission() -> Permission {
    Permission::Allow
}

fn default_host() -> String {
    WILDCARD.to_owned()
}

/// A raw Kafka ACL entry (one binding per operation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcl {
    /// Principal, e.g. `User:CN=ops`.
    pub principal: String,
    /// Resource type.
    #[serde(deserialize_with = "parse_resource")]
    pub resource: ResourceType,
    /// Resource name (literal, prefix with a trailing `*`); defaults to `kafka-cluster` for the
    /// cluster.
    #[serde(default)]
    pub name: Option<NamePattern>,
    /// Operations granted (or denied).
    #[serde(deserialize_with = "parse_operation")]
    pub operations: Vec<Operation>,
    /// allow (default) or deny.
    #[serde(default = "default_permission", deserialize_with = "parse_permission")]
    pub permission: Permission,
    /// Client IP or `*` (default).
    #[serde(default = "default_host")]
    pub host: String,
}

/// A parsed `acl.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclFile {
    /// Principal template; `{service}` is replaced by the service id.
    #[serde(default = "default_principal")]
    pub principal: String,
    /// Services by id.
    #[serde(default)]
    pub services: BTreeMap<ServiceId, ServiceAcls>,
    /// Raw ACL entries.
    #[serde(default)]
    pub acls: Vec<RawAcl>,
}

fn default_principal() -> String {
    DEFAULT_PRINCIPAL.to_owned()
}

fn binding(
    principal: &str,
    resource_type: ResourceType,
    name: &NamePattern,
    operation: Operation,
    permission: Permission,
    host: &str,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.name.clone(),
        pattern_type: name.pattern,
        principal: principal.to_owned(),
        host: host.to_owned(),
        operation,
        permission,
    }
}

impl AclFile {
    /// Parses YAML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, AclFileError> {
        let parsed: AclFile =
            serde_yaml::from_str(text).map_err(|e| AclFileError::yaml(file, &e))?;
        parsed.check(file)?;
        Ok(parsed)
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, AclFileError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| AclFileError {
            file: file.clone(),
            location: None,
            message: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Checks what parsing alone cannot (the principal template, each raw entry's bindings);
    /// `parse` and `load` call it, and so must anyone who deserializes an `AclFile` inside
    /// another document (platform-as-code files embed one).
    pub fn check(&self, file: &str) -> Result<(), AclFileError> {
        let fail = |message: String| {
            Err(AclFileError {
                file: file.to_owned(),
                location: None,
                message,
            })
        };
        if !self.principal.contains("{service}") || !self.principal.contains(':') {
            return fail(format!(
                "principal {:?} must look like TYPE:NAME and contain {{service}}, e.g. {DEFAULT_PRINCIPAL:?}",
                self.principal
            ));
        }
        for (i, raw) in self.acls.iter().enumerate() {
            for b in raw.bindings() {
                if let Err(e) = b.validate() {
                    return fail(format!("acls[{i}] ({}): {e}", raw.principal));
                }
            }
            if raw.resource != ResourceType::Cluster && raw.name.is_none() {
                return fail(format!(
                    "acls[{i}] ({}): a {} entry needs a name",
                    raw.principal, raw.resource
                ));
            }
        }
        Ok(())
    }

    /// The principal of `service`.
    pub fn principal_of(&self, service: &ServiceId) -> String {
        self.principal.replace("{service}", service.as_str())
    }

    /// Every principal the file manages: its services and the principals of its raw entries.
    pub fn managed_principals(&self) -> BTreeSet<String> {
        self.services
            .keys()
            .map(|s| self.principal_of(s))
            .chain(self.acls.iter().map(|a| a.principal.clone()))
            .collect()
    }

    /// Services marked `disabled: true`.
    pub fn disabled_services(&self) -> BTreeSet<ServiceId> {
        self.services
            .iter()
            .filter(|(_, s)| s.disabled)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The bindings the file asks for.
    ///
    /// Producing is Write (which implies Describe, and lets idempotent producers get a
    /// producer id); consuming is Read on the topics and Read on the groups. Describe is
    /// granted explicitly too, so clusters that do not imply it behave the same.
    pub fn bindings(&self) -> BTreeSet<AclBinding> {
        let mut out = BTreeSet::new();
        for (service, acls) in &self.services {
            let principal = self.principal_of(service);
            let mut grant = |rt, names: &[NamePattern], ops: &[Operation]| {
                for name in names {
                    for op in ops {
                        out.insert(binding(
                            &principal,
                            rt,
                            name,
                            *op,
                            Permission::Allow,
                            WILDCARD,
                        ));
                    }
                }
            };
            grant(
                ResourceType::Topic,
                &acls.produces,
                &[Operation::Write, Operation::Describe],
            );
            grant(
                ResourceType::Topic,
                &acls.consumes,
                &[Operation::Read, Operation::Describe],
            );
            grant(
                ResourceType::Group,
                &acls.groups,
                &[Operation::Read, Operation::Describe],
            );
        }
        for raw in &self.acls {
            out.extend(raw.bindings());
        }
        out
    }
}

impl RawAcl {
    fn bindings(&self) -> Vec<AclBinding> {
        let cluster = NamePattern {
            name: CLUSTER_NAME.to_owned(),
            pattern: PatternType::Literal,
        };
        let name = self.name.as_ref().unwrap_or(&cluster);
        self.operations
            .iter()
            .map(|op| {
                binding(
                    &self.principal,
                    self.resource,
                    name,
                    *op,
                    self.permission,
                    &self.host,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
services:
  orders-svc:
    produces: [orders, "orders.eu.*"]
  analytics-svc:
    consumes: [orders]
    groups: [analytics]
  retired-svc:
    disabled: true
acls:
  - principal: "User:CN=ops"
    resource: cluster
    operations: [describe, alter]
"#;

    #[test]
    fn services_expand_to_kafka_bindings() {
        let file = AclFile::parse(EXAMPLE, "acl.yml").unwrap();
        let bindings = file.bindings();
        let has = |principal: &str, rt, name: &str, pattern, op| {
            bindings.iter().any(|b| {
                b.principal == principal
                    && b.resource_type == rt
                    && b.resource_name == name
                    && b.pattern_type == pattern
                    && b.operation == op
                    && b.permission == Permission::Allow
            })
        };
        assert!(has(
            "User:CN=orders-svc",
            ResourceType::Topic,
            "orders",
            PatternType::Literal,
            Operation::Write
        ));
        assert!(has(
            "User:CN=orders-svc",
            ResourceType::Topic,
            "orders.eu.",
            PatternType::Prefixed,
            Operation::Write
        ));
        assert!(has(
            "User:CN=analytics-svc",
            ResourceType::Topic,
            "orders",
            PatternType::Literal,
            Operation::Read
        ));
        assert!(has(
            "User:CN=analytics-svc",
            ResourceType::Group,
            "analytics",
            PatternType::Literal,
            Operation::Read
        ));
        assert!(!has(
            "User:CN=analytics-svc",
            ResourceType::Topic,
            "orders",
            PatternType::Literal,
            Operation::Write
        ));
        assert!(has(
            "User:CN=ops",
            ResourceType::Cluster,
            CLUSTER_NAME,
            PatternType::Literal,
            Operation::Alter
        ));
        assert_eq!(bindings.len(), 4 + 4 + 2);
        assert_eq!(file.disabled_services().len(), 1);
        assert!(file.managed_principals().contains("User:CN=retired-svc"));
    }

    #[test]
    fn errors_carry_file_and_line() {
        let bad =
            "services:\n  orders-svc:\n    produces: [orders]\n  Bad Name:\n    consumes: [x]\n";
        let err = AclFile::parse(bad, "acl.yml").unwrap_err();
        // serde_yaml places map-key errors at the enclosing mapping.
        assert!(err.to_string().starts_with("acl.yml:2:"), "{err}");
        assert!(err.message.contains("Bad Name"), "{err}");
        let bad_op = "acls:\n  - principal: User:x\n    resource: topic\n    name: t\n    operations: [fly]\n";
        let err = AclFile::parse(bad_op, "f.yml").unwrap_err();
        assert_eq!(err.location.map(|l| l.0), Some(5), "{err}");
        assert!(err.message.contains("unknown operation"), "{err}");
        let typo = "services:\n  a:\n    produce: [t]\n";
        let err = AclFile::parse(typo, "f.yml").unwrap_err();
        assert_eq!(err.location.map(|l| l.0), Some(3), "{err}");
        assert!(AclFile::parse("acls:\n  - principal: nocolon\n    resource: topic\n    name: t\n    operations: [read]\n", "f").is_err());
    }
}
