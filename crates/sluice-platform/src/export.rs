//! Writing a platform file from a live cluster and registry, so an existing cluster can be put
//! under code: `export` then `plan` shows no change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sluice_acl::{AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType};
use sluice_admin::{AdminConnection, AdminError};
use sluice_sdk::registry::SchemaReference;

use crate::live;
use crate::spec::Ignore;
use crate::{PlatformError, Target};

/// What `export` wrote.
#[derive(Debug, Clone, Default)]
pub struct Exported {
    /// Topics written.
    pub topics: usize,
    /// ACL entries written (one per principal, resource and permission); `None` when the
    /// cluster has no authorizer.
    pub acl_entries: Option<usize>,
    /// Subjects written; `None` without a registry.
    pub subjects: Option<usize>,
    /// Every file written: the platform file, then the schema files.
    pub files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct OutTopic {
    partitions: i32,
    replication_factor: i16,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    configs: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct OutAcls {
    acls: Vec<OutAcl>,
}

#[derive(Serialize)]
struct OutAcl {
    principal: String,
    resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    operations: Vec<String>,
    permission: String,
    host: String,
}

#[derive(Serialize)]
struct OutSubject {
    file: String,
    #[serde(rename = "type")]
    schema_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    compatibility: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    references: Vec<SchemaReference>,
}

#[derive(Serialize)]
struct OutSchemas {
    #[serde(skip_serializing_if = "Option::is_none")]
    compatibility: Option<String>,
    subjects: BTreeMap<String, OutSubject>,
}

#[derive(Serialize)]
struct OutFile {
    topics: BTreeMap<String, OutTopic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acls: Option<OutAcls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schemas: Option<OutSchemas>,
}

/// acl.yml's spelling of an enum value: `transactional-id`, `idempotent-write`, `allow`.
fn yaml_name(upper: &str) -> String {
    upper.to_ascii_lowercase().replace('_', "-")
}

/// Groups bindings into acl.yml entries: one per principal, resource, pattern, permission and
/// host, listing its operations.
fn acl_entries(bindings: Vec<AclBinding>) -> Result<Vec<OutAcl>, PlatformError> {
    type Key = (
        String,
        ResourceType,
        String,
        PatternType,
        Permission,
        String,
    );
    let mut grouped: BTreeMap<Key, Vec<Operation>> = BTreeMap::new();
    for b in bindings {
        grouped
            .entry((
                b.principal,
                b.resource_type,
                b.resource_name,
                b.pattern_type,
                b.permission,
                b.host,
            ))
            .or_default()
            .push(b.operation);
    }
    grouped
        .into_iter()
        .map(
            |((principal, resource, name, pattern, permission, host), mut ops)| {
                // acl.yml writes a prefix with a trailing `*` and the wildcard as `*` alone, so a
                // literal name ending in `*` has no spelling there.
                let name = match pattern {
                    _ if resource == ResourceType::Cluster => None,
                    PatternType::Prefixed => Some(format!("{name}*")),
                    _ if name.ends_with('*') && name != "*" => {
                        return Err(PlatformError::Export(format!(
                        "the ACL of {principal} on {resource} {name:?} names a literal ending in \
                         '*', which acl.yml cannot express"
                    )))
                    }
                    _ => Some(name),
                };
                ops.sort_unstable();
                Ok(OutAcl {
                    principal,
                    resource: yaml_name(resource.as_str()),
                    name,
                    operations: ops.into_iter().map(|o| yaml_name(o.as_str())).collect(),
                    permission: yaml_name(permission.as_str()),
                    host,
                })
            },
        )
        .collect()
}

/// A file name for a subject's schema: unsafe characters become `_`, and a number keeps two
/// subjects that map to the same name apart.
fn schema_file_name(subject: &str, schema_type: &str, taken: &mut Vec<String>) -> String {
    let stem: String = subject
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ext = crate::spec::extension_of(schema_type);
    let mut name = format!("{stem}.{ext}");
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{stem}-{n}.{ext}");
        n += 1;
    }
    taken.push(name.clone());
    name
}

fn write(path: &Path, text: &str) -> Result<(), PlatformError> {
    std::fs::write(path, text).map_err(|source| PlatformError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `out` (a platform file) from the target's topics (all but internal `_` ones), ACLs
/// (when the cluster has an authorizer) and, with a registry, every subject's latest schema
/// into `schemas/` beside `out`.
pub async fn export(target: &Target, out: &Path) -> Result<Exported, PlatformError> {
    let mut conn = AdminConnection::connect(&target.admin).await?;
    let ignore = Ignore::default();
    let topics = live::topics(&mut conn, |name| !ignore.topic(name))
        .await?
        .into_iter()
        .filter(|(name, _)| !ignore.topic(name))
        .map(|(name, t)| {
            let topic = OutTopic {
                partitions: t.partitions,
                replication_factor: t.replication_factor,
                configs: t.overrides,
            };
            (name, topic)
        })
        .collect::<BTreeMap<_, _>>();
    let acls = match sluice_admin::describe_acls(&mut conn, &AclFilter::default()).await {
        Ok(bindings) => Some(OutAcls {
            acls: acl_entries(bindings)?,
        }),
        Err(AdminError::Broker { error, .. }) if error == "SecurityDisabled" => None,
        Err(e) => return Err(e.into()),
    };
    let mut files = vec![out.to_owned()];
    let schemas = match &target.registry {
        None => None,
        Some(registry) => {
            let dir = out.parent().unwrap_or(Path::new(".")).join("schemas");
            let versions = live::latest_versions(registry).await?;
            if !versions.is_empty() {
                std::fs::create_dir_all(&dir).map_err(|source| PlatformError::Write {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            let mut taken = Vec::new();
            let mut subjects = BTreeMap::new();
            for (subject, (version, compatibility)) in versions {
                let name = schema_file_name(&subject, &version.schema_type, &mut taken);
                let path = dir.join(&name);
                write(&path, &version.schema)?;
                files.push(path);
                subjects.insert(
                    subject,
                    OutSubject {
                        file: format!("schemas/{name}"),
                        schema_type: version.schema_type,
                        compatibility,
                        references: version.references,
                    },
                );
            }
            Some(OutSchemas {
                compatibility: registry.compatibility(None).await?,
                subjects,
            })
        }
    };
    let summary = Exported {
        topics: topics.len(),
        acl_entries: acls.as_ref().map(|a| a.acls.len()),
        subjects: schemas.as_ref().map(|s| s.subjects.len()),
        files,
    };
    let body = serde_yaml::to_string(&OutFile {
        topics,
        acls,
        schemas,
    })
    .map_err(|e| PlatformError::Export(e.to_string()))?;
    write(
        out,
        &format!(
            "# Written by `sluice export`. Review it, then `sluice plan --file {}` shows no change.\n{body}",
            out.display()
        ),
    )?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_group_into_entries_acl_yml_reads_back() {
        let b = |op, pattern, name: &str| AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: "User:CN=svc".into(),
            host: "*".into(),
            operation: op,
            permission: Permission::Allow,
        };
        let mut cluster = b(Operation::Describe, PatternType::Literal, "kafka-cluster");
        cluster.resource_type = ResourceType::Cluster;
        let bindings = vec![
            b(Operation::Write, PatternType::Literal, "orders"),
            b(Operation::Describe, PatternType::Literal, "orders"),
            b(Operation::Read, PatternType::Prefixed, "logs."),
            cluster,
        ];
        let entries = acl_entries(bindings.clone()).unwrap();
        assert_eq!(entries.len(), 3);
        let yaml = serde_yaml::to_string(&OutAcls { acls: entries }).unwrap();
        let parsed = sluice_kss::acl::AclFile::parse(&yaml, "export").unwrap();
        let mut want = bindings;
        want.sort();
        assert_eq!(parsed.bindings().into_iter().collect::<Vec<_>>(), want);

        let odd = vec![b(Operation::Read, PatternType::Literal, "group*")];
        assert!(acl_entries(odd).is_err());
    }

    #[test]
    fn schema_file_names_are_safe_and_distinct() {
        let mut taken = Vec::new();
        assert_eq!(
            schema_file_name("a/b.proto", "PROTOBUF", &mut taken),
            "a_b.proto.proto"
        );
        assert_eq!(schema_file_name("a:b", "AVRO", &mut taken), "a_b.avsc");
        assert_eq!(schema_file_name("a?b", "AVRO", &mut taken), "a_b-2.avsc");
    }
}
