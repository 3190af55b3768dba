//! `sluice acl`: list, add and remove ACLs with the standard Kafka admin APIs
//! (DescribeAcls, CreateAcls, DeleteAcls), so it manages Sluice, Apache Kafka and MSK alike.

mod file;

use anyhow::{bail, Context};
use sluice_admin::{AdminConfig, AdminConnection};
use sluice_broker::auth::acl::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType, CLUSTER_NAME,
};

use crate::kafka::ClientArgs;

use std::path::PathBuf;

/// The `sluice acl` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AclCommand {
    /// List ACLs: all of them, or those the filter options select.
    List {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Add ACLs: one per principal and operation, on one resource.
    Add {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        resource: ResourceArgs,
        /// Treat the resource name as a prefix (PREFIXED pattern) instead of an exact name.
        #[arg(long)]
        prefixed: bool,
        /// Principal, e.g. `User:CN=orders-svc` or `User:*` (repeatable).
        #[arg(long, required = true, value_name = "TYPE:NAME")]
        principal: Vec<String>,
        /// Operation: read, write, create, delete, alter, describe, describe-configs,
        /// alter-configs, idempotent-write, cluster-action, all (repeatable).
        #[arg(long, required = true, value_parser = parse_operation)]
        operation: Vec<Operation>,
        /// Client IP address the ACL applies to.
        #[arg(long, default_value = "*")]
        host: String,
        /// Create DENY ACLs (which win over every ALLOW) instead of ALLOW ACLs.
        #[arg(long)]
        deny: bool,
    },
    /// Check an acl.yml (ACLs as code): errors are reported with file and line.
    Validate {
        /// The acl.yml file.
        #[arg(long)]
        file: PathBuf,
    },
    /// Print the exact bindings `apply` would add and remove.
    Plan {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        file: FileArgs,
    },
    /// Converge the cluster to an acl.yml; running it again changes nothing.
    Apply {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        file: FileArgs,
    },
    /// Remove the ACLs the filter options select, and print what was removed.
    Remove {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        filter: FilterArgs,
        /// Allow a filter without any option, which removes every ACL of the cluster.
        #[arg(long)]
        all: bool,
    },
}

/// The acl.yml options of `plan` and `apply`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FileArgs {
    /// The acl.yml file.
    #[arg(long)]
    file: PathBuf,
    /// Also remove ACLs of principals the file does not mention (by default only principals
    /// the file manages are touched).
    #[arg(long)]
    prune_unmanaged: bool,
}

/// The resource an ACL is about (exactly one of these).
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct ResourceArgs {
    /// A topic name (or prefix with --prefixed), `*` for every topic.
    #[arg(long)]
    topic: Option<String>,
    /// A consumer group name (or prefix), `*` for every group.
    #[arg(long)]
    group: Option<String>,
    /// A transactional id (or prefix), `*` for every one.
    #[arg(long)]
    transactional_id: Option<String>,
    /// The cluster itself (`kafka-cluster`).
    #[arg(long)]
    cluster: bool,
}

impl ResourceArgs {
    fn resource(&self) -> (ResourceType, String) {
        match (&self.topic, &self.group, &self.transactional_id) {
            (Some(name), _, _) => (ResourceType::Topic, name.clone()),
            (_, Some(name), _) => (ResourceType::Group, name.clone()),
            (_, _, Some(name)) => (ResourceType::TransactionalId, name.clone()),
            _ => (ResourceType::Cluster, CLUSTER_NAME.to_owned()),
        }
    }
}

/// Options selecting ACLs; unset options match everything.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FilterArgs {
    /// Only ACLs on this topic (see --pattern for how the name is compared).
    #[arg(long, conflicts_with_all = ["group", "transactional_id", "cluster"])]
    topic: Option<String>,
    /// Only ACLs on this consumer group.
    #[arg(long, conflicts_with_all = ["transactional_id", "cluster"])]
    group: Option<String>,
    /// Only ACLs on this transactional id.
    #[arg(long, conflicts_with = "cluster")]
    transactional_id: Option<String>,
    /// Only ACLs on the cluster resource.
    #[arg(long)]
    cluster: bool,
    /// How a resource name is compared: any (exact name, any pattern type), match (every ACL
    /// that applies to that name, prefixes and `*` included), literal, prefixed.
    #[arg(long, default_value = "any", value_parser = parse_pattern)]
    pattern: PatternType,
    /// Only ACLs of this principal (exact string, e.g. `User:CN=orders-svc`).
    #[arg(long)]
    principal: Option<String>,
    /// Only ACLs for this host.
    #[arg(long)]
    host: Option<String>,
    /// Only ACLs for this operation.
    #[arg(long, value_parser = parse_operation)]
    operation: Option<Operation>,
    /// Only ALLOW or DENY ACLs.
    #[arg(long, value_parser = parse_permission)]
    permission: Option<Permission>,
}

impl FilterArgs {
    fn is_empty(&self) -> bool {
        self.topic.is_none()
            && self.group.is_none()
            && self.transactional_id.is_none()
            && !self.cluster
            && self.principal.is_none()
            && self.host.is_none()
            && self.operation.is_none()
            && self.permission.is_none()
    }

    fn filter(&self) -> AclFilter {
        let (resource_type, name) = match (
            &self.topic,
            &self.group,
            &self.transactional_id,
            self.cluster,
        ) {
            (Some(n), ..) => (Some(ResourceType::Topic), Some(n.clone())),
            (_, Some(n), ..) => (Some(ResourceType::Group), Some(n.clone())),
            (_, _, Some(n), _) => (Some(ResourceType::TransactionalId), Some(n.clone())),
            (.., true) => (Some(ResourceType::Cluster), Some(CLUSTER_NAME.to_owned())),
            _ => (None, None),
        };
        AclFilter {
            resource_type,
            resource_name: name,
            pattern_type: (self.pattern != PatternType::Any).then_some(self.pattern),
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self.operation,
            permission: self.permission,
        }
    }
}

fn parse_operation(s: &str) -> Result<Operation, String> {
    Operation::parse(s)
        .filter(|o| !matches!(o, Operation::Unknown | Operation::Any))
        .ok_or_else(|| {
            format!("unknown operation {s:?}; use e.g. read, write, describe, alter, all")
        })
}

fn parse_pattern(s: &str) -> Result<PatternType, String> {
    PatternType::parse(s)
        .filter(|p| *p != PatternType::Unknown)
        .ok_or_else(|| format!("unknown pattern type {s:?}; use any, match, literal or prefixed"))
}

fn parse_permission(s: &str) -> Result<Permission, String> {
    Permission::parse(s)
        .filter(|p| matches!(p, Permission::Allow | Permission::Deny))
        .ok_or_else(|| format!("unknown permission {s:?}; use allow or deny"))
}

/// Runs a `sluice acl` subcommand.
pub(crate) async fn run(command: AclCommand) -> anyhow::Result<()> {
    match command {
        AclCommand::List { client, filter } => {
            let bindings = list(&client, &filter).await?;
            print_table(&bindings);
        }
        AclCommand::Add {
            client,
            resource,
            prefixed,
            principal,
            operation,
            host,
            deny,
        } => {
            let (resource_type, resource_name) = resource.resource();
            let bindings: Vec<AclBinding> = principal
                .iter()
                .flat_map(|p| {
                    operation.iter().map(|op| AclBinding {
                        resource_type,
                        resource_name: resource_name.clone(),
                        pattern_type: if prefixed {
                            PatternType::Prefixed
                        } else {
                            PatternType::Literal
                        },
                        principal: p.clone(),
                        host: host.clone(),
                        operation: *op,
                        permission: if deny {
                            Permission::Deny
                        } else {
                            Permission::Allow
                        },
                    })
                })
                .collect();
            add(&client, &bindings).await?;
            println!("added {} ACL(s):", bindings.len());
            print_table(&bindings);
        }
        AclCommand::Validate { file } => file::validate(&file)?,
        AclCommand::Plan { client, file: f } => {
            file::plan(&client, &f.file, f.prune_unmanaged).await?
        }
        AclCommand::Apply { client, file: f } => {
            file::apply(&client, &f.file, f.prune_unmanaged).await?
        }
        AclCommand::Remove {
            client,
            filter,
            all,
        } => {
            if filter.is_empty() && !all {
                bail!("refusing to remove every ACL: give filter options (e.g. --topic, --principal) or --all");
            }
            let removed = remove(&client, &filter).await?;
            println!("removed {} ACL(s):", removed.len());
            print_table(&removed);
        }
    }
    Ok(())
}

/// The admin-client settings for `client` (its `-X` properties choose plaintext or TLS).
pub(crate) fn admin_config(client: &ClientArgs) -> anyhow::Result<AdminConfig> {
    Ok(AdminConfig::from_properties(
        &client.bootstrap,
        client
            .client_config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
        client.timeout(),
    )?)
}

/// Opens an admin connection to the cluster `client` points at.
pub(crate) async fn connect(client: &ClientArgs) -> anyhow::Result<AdminConnection> {
    AdminConnection::connect(&admin_config(client)?)
        .await
        .with_context(|| client.unreachable_hint())
}

async fn list(client: &ClientArgs, filter: &FilterArgs) -> anyhow::Result<Vec<AclBinding>> {
    let mut conn = connect(client).await?;
    sluice_admin::describe_acls(&mut conn, &filter.filter())
        .await
        .context("DescribeAcls")
}

async fn add(client: &ClientArgs, bindings: &[AclBinding]) -> anyhow::Result<()> {
    let mut conn = connect(client).await?;
    sluice_admin::create_acls(&mut conn, bindings)
        .await
        .context("CreateAcls")
}

async fn remove(client: &ClientArgs, filter: &FilterArgs) -> anyhow::Result<Vec<AclBinding>> {
    let mut conn = connect(client).await?;
    sluice_admin::delete_acls(&mut conn, &[filter.filter()])
        .await
        .context("DeleteAcls")
}

/// Prints bindings as an aligned table (nothing but a note when there are none).
pub(crate) fn print_table(bindings: &[AclBinding]) {
    if bindings.is_empty() {
        println!("(no ACLs)");
        return;
    }
    let rows: Vec<[String; 7]> = bindings
        .iter()
        .map(|b| {
            [
                b.resource_type.to_string(),
                b.resource_name.clone(),
                b.pattern_type.to_string(),
                b.principal.clone(),
                b.host.clone(),
                b.operation.to_string(),
                b.permission.to_string(),
            ]
        })
        .collect();
    let header = [
        "RESOURCE",
        "NAME",
        "PATTERN",
        "PRINCIPAL",
        "HOST",
        "OPERATION",
        "PERMISSION",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: AclCommand,
    }

    #[test]
    fn add_expands_principals_times_operations() {
        let cli = Cli::try_parse_from([
            "acl",
            "add",
            "--topic",
            "orders.",
            "--prefixed",
            "--principal",
            "User:a",
            "--principal",
            "User:b",
            "--operation",
            "write",
            "--operation",
            "describe",
        ])
        .unwrap();
        let AclCommand::Add {
            resource,
            prefixed,
            principal,
            operation,
            host,
            deny,
            ..
        } = cli.command
        else {
            panic!("expected add");
        };
        assert_eq!(
            resource.resource(),
            (ResourceType::Topic, "orders.".to_owned())
        );
        assert!(prefixed && !deny);
        assert_eq!(
            (principal.len(), operation, host.as_str()),
            (2, vec![Operation::Write, Operation::Describe], "*")
        );
    }

    #[test]
    fn add_needs_exactly_one_resource_and_valid_operations() {
        assert!(Cli::try_parse_from([
            "acl",
            "add",
            "--principal",
            "User:a",
            "--operation",
            "read"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "acl",
            "add",
            "--topic",
            "t",
            "--cluster",
            "--principal",
            "User:a",
            "--operation",
            "read"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "acl",
            "add",
            "--topic",
            "t",
            "--principal",
            "User:a",
            "--operation",
            "any"
        ])
        .is_err());
    }

    #[test]
    fn filters_translate_to_wire_codes() {
        let cli = Cli::try_parse_from([
            "acl",
            "list",
            "--topic",
            "orders.eu",
            "--pattern",
            "match",
            "--permission",
            "deny",
        ])
        .unwrap();
        let AclCommand::List { filter, .. } = cli.command else {
            panic!("expected list")
        };
        let f = filter.filter();
        assert_eq!(
            (f.resource_type, f.pattern_type, f.operation, f.permission),
            (
                Some(ResourceType::Topic),
                Some(PatternType::Match),
                None,
                Some(Permission::Deny)
            )
        );
        assert_eq!(f.resource_name.as_deref(), Some("orders.eu"));
        assert!(f.principal.is_none());
        let cli = Cli::try_parse_from(["acl", "remove"]).unwrap();
        let AclCommand::Remove { filter, all, .. } = cli.command else {
            panic!("expected remove")
        };
        assert!(filter.is_empty() && !all);
        assert_eq!(filter.filter(), AclFilter::default(), "no option means ANY");
    }
}
