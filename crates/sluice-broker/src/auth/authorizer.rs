//! The ACL authorizer, with Apache Kafka's `StandardAuthorizer` semantics.
//!
//! Decisions come from an immutable in-memory index swapped atomically on every change, so
//! [`Authorizer::authorize`] takes no lock and allocates nothing: the produce and fetch paths
//! call it once per topic. Changes (CreateAcls/DeleteAcls) are serialized, written to
//! `<data_dir>/meta/acls.json` atomically, and only then published.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::acl::{
    AclBinding, AclFilter, InvalidAcl, Operation, PatternType, Permission, ResourceType, WILDCARD,
};
use super::principal::KafkaPrincipal;
pub use crate::config::AuthorizerConfig;

/// The principal that matches every user in an ACL.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// Why an ACL change failed.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// The binding or filter breaks Kafka's rules (INVALID_REQUEST).
    #[error(transparent)]
    Invalid(#[from] InvalidAcl),
    /// `acls.json` could not be read or written.
    #[error(
        "cannot persist ACLs to {path}: {reason}; check the data directory's disk and permissions"
    )]
    Storage {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

impl AclError {
    /// The Kafka error code to report.
    pub fn error_code(&self) -> kafka_protocol::error::ResponseError {
        use kafka_protocol::error::ResponseError;
        match self {
            AclError::Invalid(_) => ResponseError::InvalidRequest,
            AclError::Storage { .. } => ResponseError::UnknownServerError,
        }
    }
}

/// The ACL store and decision point of a broker.
#[derive(Debug)]
pub struct Authorizer {
    /// The live bindings and their lookup index; readers never wait for a change.
    index: ArcSwap<AclIndex>,
    /// Serializes changes and their persistence (held across the `acls.json` fsync, which
    /// only other changes wait for).
    changes: parking_lot::Mutex<()>,
    super_users: HashSet<String>,
    allow_if_no_acl: bool,
    path: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AclFile {
    version: u32,
    acls: Vec<AclBinding>,
}

impl Authorizer {
    /// An authorizer whose ACLs live only in memory (tests, embedding).
    pub fn in_memory(config: &AuthorizerConfig) -> Self {
        Authorizer {
            index: ArcSwap::from_pointee(AclIndex::default()),
            changes: parking_lot::Mutex::new(()),
            super_users: config.super_users.iter().cloned().collect(),
            allow_if_no_acl: config.allow_everyone_if_no_acl_found,
            path: None,
        }
    }

    /// Opens the ACLs persisted in `<data_dir>/meta/acls.json` (none if the file is absent).
    pub fn open(config: &AuthorizerConfig, data_dir: &Path) -> Result<Self, AclError> {
        let path = data_dir.join("meta").join("acls.json");
        let storage = |reason: String| AclError::Storage {
            path: path.clone(),
            reason,
        };
        let acls = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<AclFile>(&bytes)
                    .map_err(|e| {
                        storage(format!(
                            "not valid ACL JSON ({e}); restore it from a backup"
                        ))
                    })?
                    .acls
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(storage(e.to_string())),
        };
        let mut authorizer = Authorizer::in_memory(config);
        authorizer.path = Some(path);
        let bindings: BTreeSet<AclBinding> = acls.into_iter().collect();
        info!(acls = bindings.len(), "ACLs loaded");
        authorizer.index.store(Arc::new(AclIndex::build(bindings)));
        Ok(authorizer)
    }

    /// Whether `principal` connecting from `host` may perform `operation` on the resource
    /// `resource_type`/`name`. Lock-free and allocation-free.
    pub fn authorize(
        &self,
        principal: &KafkaPrincipal,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.super_users.contains(principal.as_str()) {
            return true;
        }
        let index = self.index.load();
        let Some(acls) = index.by_type.get(&resource_type) else {
            return self.allow_if_no_acl;
        };
        let host = host.to_canonical();
        let mut found_any = false;
        let mut allowed = false;
        for entries in acls.matching(name) {
            found_any |= !entries.is_empty();
            for entry in entries {
                match entry.decide(principal, host, operation) {
                    Some(Permission::Deny) => return false,
                    Some(Permission::Allow) => allowed = true,
                    _ => {}
                }
            }
        }
        allowed || (!found_any && self.allow_if_no_acl)
    }

    /// Whether `principal` may perform `operation` on at least one resource of
    /// `resource_type` (Kafka's `authorizeByResourceType`, used by InitProducerId: "Write on
    /// any topic"). Not on a hot path.
    pub fn authorize_any(
        &self,
        principal: &KafkaPrincipal,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        // Kafka checks a hard-coded name first so super users and the no-ACL default apply.
        if self.authorize(principal, host, operation, resource_type, "hardcode") {
            return true;
        }
        let host = host.to_canonical();
        let index = self.index.load();
        let Some(acls) = index.by_type.get(&resource_type) else {
            return false;
        };
        let mut deny_literal = HashSet::new();
        let mut deny_prefixed = HashSet::new();
        let mut allow = Vec::new();
        for (name, pattern, entry) in acls.all() {
            if !entry.matches_principal_and_host(principal, host)
                || (entry.operation != operation && entry.operation != Operation::All)
            {
                continue;
            }
            match (entry.permission, pattern) {
                (Permission::Deny, PatternType::Literal) if name == WILDCARD => return false,
                (Permission::Deny, PatternType::Literal) => {
                    deny_literal.insert(name);
                }
                (Permission::Deny, _) => {
                    deny_prefixed.insert(name);
                }
                (Permission::Allow, PatternType::Literal) if name == WILDCARD => return true,
                (Permission::Allow, _) => allow.push((name, pattern)),
                _ => {}
            }
        }
        allow.into_iter().any(|(name, pattern)| {
            let literal_denied = pattern == PatternType::Literal && deny_literal.contains(name);
            let prefix_denied = name
                .char_indices()
                .map(|(i, c)| i + c.len_utf8())
                .any(|end| name.get(..end).is_some_and(|p| deny_prefixed.contains(p)));
            !literal_denied && !prefix_denied
        })
    }

    /// True when no ACL exists (then only super users and allow-everyone grant access).
    pub fn is_empty(&self) -> bool {
        self.index.load().bindings.is_empty()
    }

    /// The bindings `filter` selects, sorted.
    pub fn acls(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.index
            .load()
            .bindings
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// Adds `bindings`; each result says whether that binding was accepted. Existing
    /// bindings are accepted unchanged. The valid ones are persisted together.
    pub fn create(&self, bindings: Vec<AclBinding>) -> Vec<Result<(), AclError>> {
        let _changes = self.changes.lock();
        let current = self.index.load_full();
        let mut next = current.bindings.clone();
        let mut results: Vec<Result<(), AclError>> = bindings
            .into_iter()
            .map(|b| {
                b.validate()?;
                next.insert(b);
                Ok(())
            })
            .collect();
        if next.len() != current.bindings.len() {
            if let Err(e) = self.publish(next) {
                for result in results.iter_mut().filter(|r| r.is_ok()) {
                    *result = Err(e.clone_storage());
                }
            }
        }
        results
    }

    /// Removes every binding any of `filters` selects. Returns, per filter, the bindings it
    /// selected (a binding selected by two filters is reported by both, as Kafka does).
    pub fn delete(&self, filters: &[AclFilter]) -> Result<Vec<Vec<AclBinding>>, AclError> {
        let _changes = self.changes.lock();
        let current = self.index.load_full();
        let matched: Vec<Vec<AclBinding>> = filters
            .iter()
            .map(|f| {
                current
                    .bindings
                    .iter()
                    .filter(|b| f.matches(b))
                    .cloned()
                    .collect()
            })
            .collect();
        let next: BTreeSet<AclBinding> = current
            .bindings
            .iter()
            .filter(|b| !filters.iter().any(|f| f.matches(b)))
            .cloned()
            .collect();
        if next.len() != current.bindings.len() {
            self.publish(next)?;
        }
        Ok(matched)
    }

    /// Persists `next`, then makes it the live set and index. Callers hold `changes`.
    fn publish(&self, next: BTreeSet<AclBinding>) -> Result<(), AclError> {
        if let Some(path) = &self.path {
            let file = AclFile {
                version: 1,
                acls: next.iter().cloned().collect(),
            };
            let storage = |reason: String| AclError::Storage {
                path: path.clone(),
                reason,
            };
            let bytes = serde_json::to_vec_pretty(&file).map_err(|e| storage(e.to_string()))?;
            crate::meta::write_atomic(path, &bytes).map_err(|e| storage(e.to_string()))?;
        }
        info!(acls = next.len(), "ACLs changed");
        self.index.store(Arc::new(AclIndex::build(next)));
        Ok(())
    }
}

impl AclError {
    fn clone_storage(&self) -> AclError {
        match self {
            AclError::Invalid(e) => AclError::Invalid(e.clone()),
            AclError::Storage { path, reason } => AclError::Storage {
                path: path.clone(),
                reason: reason.clone(),
            },
        }
    }
}

/// ACLs grouped for lookup by resource name.
#[derive(Debug, Default)]
struct AclIndex {
    /// Every binding (DescribeAcls, DeleteAcls, persistence).
    bindings: BTreeSet<AclBinding>,
    by_type: HashMap<ResourceType, TypeIndex>,
}

#[derive(Debug, Default)]
struct TypeIndex {
    literal: HashMap<String, Vec<Entry>>,
    /// LITERAL `*`.
    wildcard: Vec<Entry>,
    prefixed: HashMap<String, Vec<Entry>>,
    /// Distinct byte lengths of the prefixes, so a lookup probes only lengths that exist.
    prefix_lengths: Vec<usize>,
}

/// The principal/host/operation/permission half of a binding, pre-parsed for matching.
#[derive(Debug)]
struct Entry {
    principal: String,
    any_principal: bool,
    host: HostMatch,
    operation: Operation,
    permission: Permission,
}

#[derive(Debug)]
enum HostMatch {
    Any,
    Ip(IpAddr),
    /// A host that is not an IP address never matches: Kafka compares with the client's IP.
    Never,
}

impl AclIndex {
    fn build(bindings: BTreeSet<AclBinding>) -> Self {
        let mut index = AclIndex::default();
        for b in &bindings {
            let entry = Entry {
                principal: b.principal.clone(),
                any_principal: b.principal == WILDCARD_PRINCIPAL,
                host: match b.host.as_str() {
                    WILDCARD => HostMatch::Any,
                    host => host
                        .parse::<IpAddr>()
                        .map_or(HostMatch::Never, |ip| HostMatch::Ip(ip.to_canonical())),
                },
                operation: b.operation,
                permission: b.permission,
            };
            let t = index.by_type.entry(b.resource_type).or_default();
            match b.pattern_type {
                PatternType::Literal if b.resource_name == WILDCARD => t.wildcard.push(entry),
                PatternType::Literal => t
                    .literal
                    .entry(b.resource_name.clone())
                    .or_default()
                    .push(entry),
                PatternType::Prefixed => {
                    t.prefixed
                        .entry(b.resource_name.clone())
                        .or_default()
                        .push(entry);
                    t.prefix_lengths.push(b.resource_name.len());
                }
                _ => {}
            }
        }
        for t in index.by_type.values_mut() {
            t.prefix_lengths.sort_unstable();
            t.prefix_lengths.dedup();
        }
        index.bindings = bindings;
        index
    }
}

impl TypeIndex {
    /// The entry lists of every pattern that applies to `name`: literal, `*`, prefixes.
    fn matching<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [Entry]> + 'a {
        let literal = self.literal.get(name).map(Vec::as_slice);
        let prefixed = self.prefix_lengths.iter().filter_map(move |&len| {
            name.get(..len)
                .and_then(|p| self.prefixed.get(p))
                .map(Vec::as_slice)
        });
        literal
            .into_iter()
            .chain(std::iter::once(self.wildcard.as_slice()))
            .chain(prefixed)
    }

    /// Every entry with its resource name and pattern type.
    fn all(&self) -> impl Iterator<Item = (&str, PatternType, &Entry)> {
        let literal = self.literal.iter().flat_map(|(n, es)| {
            es.iter()
                .map(move |e| (n.as_str(), PatternType::Literal, e))
        });
        let wildcard = self
            .wildcard
            .iter()
            .map(|e| (WILDCARD, PatternType::Literal, e));
        let prefixed = self.prefixed.iter().flat_map(|(n, es)| {
            es.iter()
                .map(move |e| (n.as_str(), PatternType::Prefixed, e))
        });
        literal.chain(wildcard).chain(prefixed)
    }
}

impl Entry {
    fn matches_principal_and_host(&self, principal: &KafkaPrincipal, host: IpAddr) -> bool {
        (self.any_principal || self.principal == principal.as_str())
            && match self.host {
                HostMatch::Any => true,
                HostMatch::Ip(ip) => ip == host,
                HostMatch::Never => false,
            }
    }

    /// This entry's verdict on the request, or `None` if it does not apply.
    fn decide(
        &self,
        principal: &KafkaPrincipal,
        host: IpAddr,
        operation: Operation,
    ) -> Option<Permission> {
        if !self.matches_principal_and_host(principal, host) {
            return None;
        }
        let applies = self.operation == operation
            || self.operation == Operation::All
            // Implied operations widen ALLOWs only; a DENY denies exactly what it names.
            || (self.permission == Permission::Allow
                && match operation {
                    Operation::Describe => matches!(
                        self.operation,
                        Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                    ),
                    Operation::DescribeConfigs => self.operation == Operation::AlterConfigs,
                    _ => false,
                });
        applies.then_some(self.permission)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::acl::CLUSTER_NAME;
    use Operation::*;
    use ResourceType::{Cluster, Group, Topic};

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 7));

    fn acl(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        principal: &str,
        host: &str,
        op: Operation,
        perm: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: host.into(),
            operation: op,
            permission: perm,
        }
    }

    fn allow(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        principal: &str,
        op: Operation,
    ) -> AclBinding {
        acl(rt, name, pt, principal, "*", op, Permission::Allow)
    }

    fn deny(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        principal: &str,
        op: Operation,
    ) -> AclBinding {
        acl(rt, name, pt, principal, "*", op, Permission::Deny)
    }

    fn with(config: AuthorizerConfig, acls: Vec<AclBinding>) -> Authorizer {
        let a = Authorizer::in_memory(&config);
        assert!(a.create(acls).iter().all(Result::is_ok));
        a
    }

    fn user(name: &str) -> KafkaPrincipal {
        KafkaPrincipal::user(name)
    }

    const L: PatternType = PatternType::Literal;
    const P: PatternType = PatternType::Prefixed;

    #[test]
    fn literal_allow_is_exact() {
        let a = with(
            Default::default(),
            vec![allow(Topic, "orders", L, "User:orders-svc", Write)],
        );
        assert!(a.authorize(&user("orders-svc"), LOCAL, Write, Topic, "orders"));
        assert!(!a.authorize(&user("orders-svc"), LOCAL, Write, Topic, "orders2"));
        assert!(!a.authorize(&user("orders-svc"), LOCAL, Read, Topic, "orders"));
        assert!(!a.authorize(&user("billing-svc"), LOCAL, Write, Topic, "orders"));
        assert!(!a.authorize(&user("orders-svc"), LOCAL, Write, Group, "orders"));
    }

    #[test]
    fn prefixed_wildcard_resource_and_wildcard_principal() {
        let a = with(
            Default::default(),
            vec![
                allow(Topic, "orders.", P, "User:orders-svc", Write),
                allow(Topic, "*", L, "User:reader", Read),
                allow(Topic, "public", L, WILDCARD_PRINCIPAL, Read),
            ],
        );
        assert!(a.authorize(&user("orders-svc"), LOCAL, Write, Topic, "orders.eu"));
        assert!(!a.authorize(&user("orders-svc"), LOCAL, Write, Topic, "orders"));
        assert!(!a.authorize(&user("orders-svc"), LOCAL, Write, Topic, "order"));
        assert!(a.authorize(&user("reader"), LOCAL, Read, Topic, "anything"));
        assert!(a.authorize(&user("nobody"), LOCAL, Read, Topic, "public"));
        assert!(!a.authorize(&user("nobody"), LOCAL, Read, Topic, "private"));
    }

    #[test]
    fn deny_beats_allow_from_any_pattern() {
        let a = with(
            Default::default(),
            vec![
                allow(Topic, "*", L, WILDCARD_PRINCIPAL, All),
                deny(Topic, "orders.secret", P, "User:svc", Write),
                deny(Topic, "billing", L, WILDCARD_PRINCIPAL, Read),
            ],
        );
        assert!(a.authorize(&user("svc"), LOCAL, Write, Topic, "orders.eu"));
        assert!(!a.authorize(&user("svc"), LOCAL, Write, Topic, "orders.secret.x"));
        assert!(a.authorize(&user("other"), LOCAL, Write, Topic, "orders.secret.x"));
        assert!(!a.authorize(&user("svc"), LOCAL, Read, Topic, "billing"));
        assert!(a.authorize(&user("svc"), LOCAL, Write, Topic, "billing"));
    }

    #[test]
    fn hosts_are_wildcard_or_exact_ip() {
        let a = with(
            Default::default(),
            vec![
                acl(
                    Topic,
                    "t",
                    L,
                    "User:a",
                    "127.0.0.1",
                    Read,
                    Permission::Allow,
                ),
                acl(
                    Topic,
                    "t",
                    L,
                    "User:b",
                    "localhost",
                    Read,
                    Permission::Allow,
                ),
                acl(Topic, "t", L, "User:c", "*", Read, Permission::Allow),
                acl(Topic, "t", L, "User:c", "10.0.0.7", Read, Permission::Deny),
            ],
        );
        assert!(a.authorize(&user("a"), LOCAL, Read, Topic, "t"));
        assert!(!a.authorize(&user("a"), OTHER, Read, Topic, "t"));
        assert!(!a.authorize(&user("b"), LOCAL, Read, Topic, "t"));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(a.authorize(&user("a"), mapped, Read, Topic, "t"));
        assert!(a.authorize(&user("c"), LOCAL, Read, Topic, "t"));
        assert!(!a.authorize(&user("c"), OTHER, Read, Topic, "t"));
    }

    /// Kafka's implication table: ALLOW Read/Write/Delete/Alter => Describe,
    /// AlterConfigs => DescribeConfigs; never for DENY; All covers everything.
    #[test]
    fn implied_operations_truth_table() {
        let implies_describe = [Read, Write, Delete, Alter, Describe, All];
        for granted in [
            Read,
            Write,
            Create,
            Delete,
            Alter,
            Describe,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            All,
        ] {
            let a = with(
                Default::default(),
                vec![allow(Topic, "t", L, "User:u", granted)],
            );
            let describe = a.authorize(&user("u"), LOCAL, Describe, Topic, "t");
            assert_eq!(
                describe,
                implies_describe.contains(&granted),
                "ALLOW {granted} => Describe"
            );
            let describe_configs = a.authorize(&user("u"), LOCAL, DescribeConfigs, Topic, "t");
            assert_eq!(
                describe_configs,
                matches!(granted, AlterConfigs | DescribeConfigs | All),
                "ALLOW {granted} => DescribeConfigs"
            );
            // A DENY of the granting operation does not deny Describe.
            let a = with(
                Default::default(),
                vec![
                    allow(Topic, "t", L, "User:u", Describe),
                    deny(Topic, "t", L, "User:u", granted),
                ],
            );
            let still = a.authorize(&user("u"), LOCAL, Describe, Topic, "t");
            assert_eq!(
                still,
                !matches!(granted, Describe | All),
                "DENY {granted} vs ALLOW Describe"
            );
        }
    }

    #[test]
    fn super_users_bypass_even_deny() {
        let config = AuthorizerConfig {
            super_users: AuthorizerConfig::parse_super_users("User:admin; User:CN=ops,OU=x ;"),
            allow_everyone_if_no_acl_found: false,
        };
        assert_eq!(config.super_users, vec!["User:admin", "User:CN=ops,OU=x"]);
        let a = with(config, vec![deny(Topic, "*", L, WILDCARD_PRINCIPAL, All)]);
        assert!(a.authorize(&user("admin"), LOCAL, Write, Topic, "x"));
        assert!(a.authorize(&user("CN=ops,OU=x"), LOCAL, Alter, Cluster, CLUSTER_NAME));
        assert!(!a.authorize(&user("someone"), LOCAL, Write, Topic, "x"));
    }

    #[test]
    fn allow_everyone_applies_only_to_resources_without_acls() {
        let open = AuthorizerConfig {
            super_users: vec![],
            allow_everyone_if_no_acl_found: true,
        };
        let a = with(
            open,
            vec![
                allow(Topic, "orders", L, "User:orders-svc", Write),
                allow(Topic, "pre", P, "User:x", Read),
            ],
        );
        assert!(a.authorize(&user("anyone"), LOCAL, Write, Topic, "unprotected"));
        assert!(a.authorize(&user("anyone"), LOCAL, Read, Group, "g"));
        assert!(!a.authorize(&user("anyone"), LOCAL, Write, Topic, "orders"));
        assert!(!a.authorize(&user("anyone"), LOCAL, Read, Topic, "prefix-covered"));
        let closed = with(Default::default(), vec![]);
        assert!(!closed.authorize(&user("anyone"), LOCAL, Write, Topic, "unprotected"));
    }

    #[test]
    fn authorize_any_follows_kafka_resource_type_rules() {
        let a = with(
            Default::default(),
            vec![
                allow(Topic, "orders", L, "User:w", Write),
                allow(Topic, "logs.", P, "User:p", Write),
                deny(Topic, "logs", P, "User:p", Write),
                allow(Topic, "x", L, "User:d", Write),
                deny(Topic, "x", L, "User:d", Write),
            ],
        );
        assert!(a.authorize_any(&user("w"), LOCAL, Write, Topic));
        assert!(!a.authorize_any(&user("p"), LOCAL, Write, Topic));
        assert!(!a.authorize_any(&user("d"), LOCAL, Write, Topic));
        assert!(!a.authorize_any(&user("nobody"), LOCAL, Write, Topic));
        let wild = with(
            Default::default(),
            vec![allow(Topic, "*", L, WILDCARD_PRINCIPAL, Write)],
        );
        assert!(wild.authorize_any(&user("anyone"), LOCAL, Write, Topic));
    }

    #[test]
    fn acls_persist_and_restore_and_delete_returns_matches() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuthorizerConfig::default();
        {
            let a = Authorizer::open(&config, dir.path()).unwrap();
            let results = a.create(vec![
                allow(Topic, "orders", L, "User:orders-svc", Write),
                allow(Topic, "billing", L, "User:billing-svc", Read),
                allow(Topic, "", L, "User:x", Read),
            ]);
            assert!(results[0].is_ok() && results[1].is_ok());
            assert!(matches!(results[2], Err(AclError::Invalid(_))));
        }
        let a = Authorizer::open(&config, dir.path()).unwrap();
        assert!(a.authorize(&user("orders-svc"), LOCAL, Write, Topic, "orders"));
        let by_principal = AclFilter {
            principal: Some("User:orders-svc".into()),
            ..Default::default()
        };
        let removed = a.delete(&[by_principal.clone(), by_principal]).unwrap();
        assert_eq!(
            removed[0],
            vec![allow(Topic, "orders", L, "User:orders-svc", Write)]
        );
        assert_eq!(removed[0], removed[1]);
        assert!(!a.authorize(&user("orders-svc"), LOCAL, Write, Topic, "orders"));
        let reopened = Authorizer::open(&config, dir.path()).unwrap();
        assert_eq!(reopened.acls(&AclFilter::default()).len(), 1);
        assert!(reopened.authorize(&user("billing-svc"), LOCAL, Read, Topic, "billing"));
    }

    #[test]
    fn corrupt_acl_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        std::fs::write(dir.path().join("meta/acls.json"), b"{not json").unwrap();
        assert!(matches!(
            Authorizer::open(&AuthorizerConfig::default(), dir.path()),
            Err(AclError::Storage { .. })
        ));
    }
}
