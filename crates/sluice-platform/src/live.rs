//! Reading what a cluster and a registry hold, over the standard Kafka admin APIs and the
//! Confluent registry API.

use std::collections::{BTreeMap, BTreeSet};

use sluice_admin::{AdminConnection, ConfigResourceKind, ConfigValue};
use sluice_sdk::registry::{RegistryClient, SubjectVersion};

use crate::error::PlatformError;
use crate::spec::SchemasSpec;

/// One topic as the cluster has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LiveTopic {
    /// Partition count.
    pub(crate) partitions: i32,
    /// Replicas of its first partition.
    pub(crate) replication_factor: i16,
    /// Overrides set on the topic, except sensitive ones.
    pub(crate) overrides: BTreeMap<String, String>,
    /// Sensitive overrides set on the topic, whose values brokers do not return.
    pub(crate) hidden: BTreeSet<String>,
}

/// Every non-internal topic by name; the overrides of those `describe` selects (the others
/// are left empty, which saves describing topics nobody compares), read in batched
/// DescribeConfigs requests.
pub(crate) async fn topics(
    conn: &mut AdminConnection,
    describe: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, LiveTopic>, PlatformError> {
    let metadata = sluice_admin::cluster_metadata(conn).await?;
    let mut out = BTreeMap::new();
    let described: Vec<&str> = metadata
        .topics
        .iter()
        .filter(|t| !t.internal && describe(&t.name))
        .map(|t| t.name.as_str())
        .collect();
    let mut configs: BTreeMap<String, Vec<ConfigValue>> =
        sluice_admin::describe_configs_of(conn, ConfigResourceKind::Topic, &described, &[])
            .await?
            .into_iter()
            .collect();
    for topic in metadata.topics.iter().filter(|t| !t.internal) {
        let replication_factor = topic
            .partitions
            .iter()
            .min_by_key(|p| p.index)
            .map_or(0, |p| i16::try_from(p.replicas.len()).unwrap_or(i16::MAX));
        let mut live = LiveTopic {
            partitions: i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX),
            replication_factor,
            ..LiveTopic::default()
        };
        for config in configs.remove(&topic.name).unwrap_or_default() {
            match (config.set_here, config.value) {
                (false, _) => {}
                (true, Some(value)) => {
                    live.overrides.insert(config.name, value);
                }
                // Brokers never return a sensitive value: it is known to be set, not to what.
                (true, None) => {
                    live.hidden.insert(config.name);
                }
            }
        }
        out.insert(topic.name.clone(), live);
    }
    Ok(out)
}

/// What the registry holds that a plan compares.
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveSchemas {
    /// The global compatibility level.
    pub(crate) global: Option<String>,
    /// Every live subject.
    pub(crate) subjects: Vec<String>,
    /// Per declared subject that exists: its own level and whether the declared schema is
    /// registered under it.
    pub(crate) declared: BTreeMap<String, LiveSubject>,
}

/// A declared subject as the registry has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LiveSubject {
    /// The subject's own compatibility level.
    pub(crate) compatibility: Option<String>,
    /// The version the declared schema is registered as, if it is.
    pub(crate) registered: Option<i32>,
    /// The subject's latest version, read when the declared schema is registered (an older
    /// version cannot be made the latest again by registering it).
    pub(crate) latest: Option<i32>,
    /// Why the declared schema would be refused as the next version (checked only when it
    /// is not registered yet).
    pub(crate) incompatibilities: Vec<String>,
}

/// Reads the registry's global level, its subjects, and for each declared subject that
/// exists its level and whether the declared schema is registered (and if not, whether it
/// would be accepted). A subject referring to a declared subject that still needs
/// registering is not judged: the registry cannot resolve the reference before the apply.
pub(crate) async fn schemas(
    registry: &RegistryClient,
    declared: &SchemasSpec,
) -> Result<LiveSchemas, PlatformError> {
    let subjects = registry.subjects().await?;
    let mut out = LiveSchemas {
        global: registry.compatibility(None).await?,
        declared: BTreeMap::new(),
        subjects,
    };
    let mut pending = BTreeSet::new();
    for name in declared.registration_order() {
        let spec = &declared.subjects[name];
        let waits = spec
            .references
            .iter()
            .any(|r| pending.contains(r.subject.as_str()));
        if !out.subjects.iter().any(|s| s == name) {
            pending.insert(name);
            continue;
        }
        let mut live = LiveSubject {
            compatibility: registry.compatibility(Some(name)).await?,
            ..LiveSubject::default()
        };
        if !waits {
            live.registered = registry
                .lookup(name, &spec.schema_type, &spec.schema, &spec.references)
                .await?;
            if live.registered.is_some() {
                live.latest = registry.latest_version(name).await?.map(|v| v.version);
            } else {
                live.incompatibilities = registry
                    .incompatibilities(name, &spec.schema_type, &spec.schema, &spec.references)
                    .await?;
            }
        }
        if live.registered.is_none() {
            pending.insert(name);
        }
        out.declared.insert(name.to_owned(), live);
    }
    Ok(out)
}

/// The latest version of every live subject, for export.
pub(crate) async fn latest_versions(
    registry: &RegistryClient,
) -> Result<BTreeMap<String, (SubjectVersion, Option<String>)>, PlatformError> {
    let mut out = BTreeMap::new();
    for subject in registry.subjects().await? {
        if let Some(version) = registry.latest_version(&subject).await? {
            let level = registry.compatibility(Some(&subject)).await?;
            out.insert(subject, (version, level));
        }
    }
    Ok(out)
}
