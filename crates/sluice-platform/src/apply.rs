//! Making a plan's changes, in its order, then checking the cluster matches.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_acl::AclBinding;
use sluice_admin::{AdminConfig, AdminConnection, ConfigResourceKind, NewTopic};

use crate::plan::{Change, Plan};
use crate::{plan, Options, Platform, PlatformError, Target};

/// How long the controller may take per topic request.
const TOPIC_TIMEOUT_MS: i32 = 30_000;
/// Re-plans after applying before calling the result divergent (waits of 0.2, 0.4, … 3.2 s):
/// brokers other than the controller learn of new and deleted topics a moment after the
/// controller answers.
const VERIFY_ATTEMPTS: u32 = 6;

/// Converges the target to `platform` and returns the plan that was applied (empty when
/// nothing differed). Refuses to start, changing nothing, when the plan has blockers or
/// deletes data without `options.allow_delete`; fails when the cluster still differs
/// afterwards.
pub async fn apply(
    target: &Target,
    platform: &Platform,
    options: &Options,
) -> Result<Plan, PlatformError> {
    let planned = plan(target, platform, options).await?;
    if !planned.blockers.is_empty() {
        return Err(PlatformError::Blocked(planned.blockers));
    }
    let destructive: Vec<Change> = planned.destructive().cloned().collect();
    if !destructive.is_empty() && !options.allow_delete {
        return Err(PlatformError::Destructive(destructive));
    }
    execute(target, platform, &planned).await?;
    let mut backoff = Duration::from_millis(200);
    for attempt in 1..=VERIFY_ATTEMPTS {
        // A topic just created may still be without a leader somewhere: errors are retried too.
        match plan(target, platform, options).await {
            Ok(after) if after.is_empty() => break,
            Ok(after) if attempt == VERIFY_ATTEMPTS => {
                return Err(PlatformError::NotConverged(after))
            }
            Err(e) if attempt == VERIFY_ATTEMPTS => return Err(e),
            _ => {}
        }
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
    Ok(planned)
}

/// Runs the changes kind by kind (the plan is ordered by kind), batching what one Kafka
/// request can carry.
async fn execute(target: &Target, platform: &Platform, plan: &Plan) -> Result<(), PlatformError> {
    let mut conn = None;
    let mut creates = Vec::new();
    let mut raises = Vec::new();
    let mut configs: BTreeMap<&str, Vec<(String, Option<String>)>> = BTreeMap::new();
    let mut acl_removals: Vec<&AclBinding> = Vec::new();
    let mut acl_additions: Vec<AclBinding> = Vec::new();
    let mut deletions = Vec::new();
    // Registry changes run in plan order, between the topic and the ACL batches; subject
    // deletions wait until after the ACLs, with the other deletions.
    let mut registry_changes = Vec::new();
    let mut subject_deletions = Vec::new();
    for change in &plan.changes {
        match change {
            Change::CreateTopic {
                topic,
                partitions,
                replication_factor,
                configs,
            } => creates.push(NewTopic {
                name: topic.clone(),
                partitions: *partitions,
                replication_factor: *replication_factor,
                configs: configs.clone().into_iter().collect(),
            }),
            Change::AddPartitions { topic, to, .. } => raises.push((topic.clone(), *to)),
            Change::SetTopicConfig { topic, key, to, .. } => configs
                .entry(topic)
                .or_default()
                .push((key.clone(), Some(to.clone()))),
            Change::ResetTopicConfig { topic, key, .. } => {
                configs.entry(topic).or_default().push((key.clone(), None))
            }
            Change::RemoveAcl { binding } => acl_removals.push(binding),
            Change::AddAcl { binding } => acl_additions.push(binding.clone()),
            Change::DeleteTopic { topic } => deletions.push(topic.clone()),
            Change::DeleteSubject { .. } => subject_deletions.push(change),
            Change::SetCompatibility { .. }
            | Change::ClearCompatibility { .. }
            | Change::RegisterSchema { .. } => registry_changes.push(change),
        }
    }
    let needs_kafka = !(creates.is_empty()
        && raises.is_empty()
        && configs.is_empty()
        && acl_removals.is_empty()
        && acl_additions.is_empty()
        && deletions.is_empty());
    if needs_kafka {
        conn = Some(controller(&target.admin).await?);
    }
    if let Some(conn) = conn.as_mut() {
        sluice_admin::create_topics(conn, &creates, TOPIC_TIMEOUT_MS).await?;
        sluice_admin::create_partitions(conn, &raises, TOPIC_TIMEOUT_MS).await?;
        for (topic, changes) in &configs {
            sluice_admin::alter_configs(conn, ConfigResourceKind::Topic, topic, changes).await?;
        }
    }
    for change in registry_changes {
        registry_change(target, platform, change).await?;
    }
    if let Some(conn) = conn.as_mut() {
        if !acl_additions.is_empty() {
            sluice_admin::create_acls(conn, &acl_additions).await?;
        }
        let filters: Vec<_> = acl_removals
            .into_iter()
            .map(sluice_admin::exact_filter)
            .collect();
        if !filters.is_empty() {
            sluice_admin::delete_acls(conn, &filters).await?;
        }
    }
    for change in subject_deletions {
        registry_change(target, platform, change).await?;
    }
    if let Some(conn) = conn.as_mut() {
        sluice_admin::delete_topics(conn, &deletions, TOPIC_TIMEOUT_MS).await?;
    }
    Ok(())
}

/// A connection to the cluster's controller (with the target's security settings), or to the
/// bootstrap broker when the cluster names no reachable controller: ZooKeeper-mode Kafka
/// creates and deletes topics only on the controller.
async fn controller(admin: &AdminConfig) -> Result<AdminConnection, PlatformError> {
    let mut conn = AdminConnection::connect(admin).await?;
    let metadata = sluice_admin::cluster_metadata(&mut conn).await?;
    let Some(controller) = metadata.controller_broker() else {
        return Ok(conn);
    };
    let direct = AdminConfig {
        bootstrap: controller.address(),
        ..admin.clone()
    };
    match AdminConnection::connect(&direct).await {
        Ok(c) => Ok(c),
        Err(e) => {
            tracing::warn!(controller = %direct.bootstrap, error = %e, "cannot reach the controller; sending topic requests to the bootstrap broker");
            Ok(conn)
        }
    }
}

async fn registry_change(
    target: &Target,
    platform: &Platform,
    change: &Change,
) -> Result<(), PlatformError> {
    let registry = target.registry()?;
    match change {
        Change::SetCompatibility { subject, to, .. } => {
            registry.set_compatibility(subject.as_deref(), to).await?
        }
        Change::ClearCompatibility { subject, .. } => registry.clear_compatibility(subject).await?,
        Change::RegisterSchema { subject, .. } => {
            // The plan was made from this platform, so the subject is there; were it not,
            // the check after applying would report the difference.
            let Some(spec) = platform
                .schemas
                .as_ref()
                .and_then(|s| s.subjects.get(subject))
            else {
                return Ok(());
            };
            let (id, version) = registry
                .register(subject, &spec.schema_type, &spec.schema, &spec.references)
                .await?;
            tracing::info!(%subject, id, version, "registered schema");
        }
        Change::DeleteSubject { subject } => registry.delete_subject(subject).await?,
        _ => {}
    }
    Ok(())
}
