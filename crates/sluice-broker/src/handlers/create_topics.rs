//! CreateTopics (API key 19, v2-7): creates topics with their partition count and config
//! overrides, one independent result per topic.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::admin::{self, ErrorReply};
use super::RequestContext;
use crate::auth::{Operation, ResourceType};
use crate::meta::configs;

/// The only replication factor a single-node broker can offer.
const REPLICATION_FACTOR: i16 = 1;

/// A topic that passed the request-level checks and is ready for the catalogue.
#[derive(Debug)]
struct Plan {
    partitions: i32,
    configs: BTreeMap<String, String>,
}

/// Handles a CreateTopics request.
pub async fn handle(ctx: &RequestContext, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let dupes = admin::duplicates(req.topics.iter().map(|t| t.name.0.as_str()));
    let mut reported_dupes = std::collections::HashSet::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let name = topic.name.0.as_str();
        if dupes.contains(name) {
            // Kafka answers once per duplicated name, without creating it.
            if reported_dupes.insert(name) {
                let reply = admin::duplicate_reply("topic", name);
                topics.push(failed(topic, &reply));
            }
            continue;
        }
        let result = create(ctx, topic, req.validate_only).await;
        topics.push(match result {
            Ok(created) => created,
            Err(reply) => {
                tracing::debug!(topic = name, error = %reply.message, "create topic refused");
                failed(topic, &reply)
            }
        });
    }
    CreateTopicsResponse::default().with_topics(topics)
}

/// Creates (or with `validate_only`, checks) one topic.
async fn create(
    ctx: &RequestContext,
    topic: &CreatableTopic,
    validate_only: bool,
) -> Result<CreatableTopicResult, ErrorReply> {
    let plan = plan(ctx, topic)?;
    let name = topic.name.0.to_string();
    let described =
        configs::describe_topic(&ctx.broker.metadata.log_defaults(), &plan.configs, false);
    let partitions = plan.partitions;
    let created = admin::run_blocking(ctx, {
        let name = name.clone();
        move |broker| {
            broker.metadata.create_topic(
                &name,
                partitions,
                REPLICATION_FACTOR,
                plan.configs,
                validate_only,
            )
        }
    })
    .await?;
    let mut result = CreatableTopicResult::default()
        .with_name(topic.name.clone())
        .with_error_message(None);
    if ctx.version() >= 5 {
        result = result
            .with_num_partitions(partitions)
            .with_replication_factor(REPLICATION_FACTOR)
            .with_configs(Some(described.iter().map(to_result_config).collect()));
    }
    if ctx.version() >= 7 {
        result = result.with_topic_id(created.id);
    }
    Ok(result)
}

/// Resolves the partition count (explicit, broker default, or from manual assignments, as the
/// v5+ response reports it) and the config overrides, refusing malformed requests.
fn plan(ctx: &RequestContext, topic: &CreatableTopic) -> Result<Plan, ErrorReply> {
    if !ctx.authorize_cluster(Operation::Create)
        && !ctx.authorize(Operation::Create, ResourceType::Topic, &topic.name)
    {
        return Err(ErrorReply::new(
            ResponseError::TopicAuthorizationFailed,
            "the principal may not create this topic; it needs Create on the cluster or the topic",
        ));
    }
    let partitions = if topic.assignments.is_empty() {
        check_replication_factor(topic.replication_factor)?;
        match topic.num_partitions {
            -1 => ctx.broker.config.default_partitions,
            n => n,
        }
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(ErrorReply::new(
                ResponseError::InvalidRequest,
                "both num_partitions/replication_factor and manual assignments were given; \
                 set num_partitions and replication_factor to -1 when assigning replicas",
            ));
        }
        check_assignments(ctx.broker.config.node_id, topic)?
    };
    // The catalogue checks the partition count and the configs themselves.
    Ok(Plan {
        partitions,
        configs: overrides(&topic.configs)?,
    })
}

/// `-1` means the broker default, which is 1; anything else but 1 cannot be honoured.
fn check_replication_factor(factor: i16) -> Result<(), ErrorReply> {
    match factor {
        -1 | REPLICATION_FACTOR => Ok(()),
        n if n < 1 => Err(ErrorReply::new(
            ResponseError::InvalidReplicationFactor,
            format!("replication factor must be at least 1 (or -1 for the broker default), got {n}"),
        )),
        n => Err(ErrorReply::new(
            ResponseError::InvalidReplicationFactor,
            format!("replication factor {n} cannot be reached: this single-node cluster has 1 broker; use 1 or -1"),
        )),
    }
}

/// Checks manual assignments cover partitions `0..n` once each, all on this node; returns `n`.
fn check_assignments(node_id: i32, topic: &CreatableTopic) -> Result<i32, ErrorReply> {
    let mut indexes: Vec<i32> = topic
        .assignments
        .iter()
        .map(|a| a.partition_index)
        .collect();
    indexes.sort_unstable();
    let contiguous = indexes
        .iter()
        .enumerate()
        .all(|(i, &p)| usize::try_from(p).is_ok_and(|p| p == i));
    if !contiguous {
        return Err(ErrorReply::new(
            ResponseError::InvalidReplicaAssignment,
            format!("assigned partitions {indexes:?} must be 0..n, each listed once"),
        ));
    }
    for assignment in &topic.assignments {
        admin::check_replicas(node_id, assignment.partition_index, &assignment.broker_ids)?;
    }
    i32::try_from(indexes.len()).map_err(|_| {
        ErrorReply::new(
            ResponseError::InvalidPartitions,
            "too many assigned partitions",
        )
    })
}

/// The request's config overrides; a null value is refused as Kafka does.
fn overrides(entries: &[CreatableTopicConfig]) -> Result<BTreeMap<String, String>, ErrorReply> {
    let mut map = BTreeMap::new();
    for entry in entries {
        let Some(value) = &entry.value else {
            return Err(ErrorReply::new(
                ResponseError::InvalidConfig,
                format!(
                    "null value is not supported for topic config '{}'; omit it to use the default",
                    entry.name.as_str()
                ),
            ));
        };
        map.insert(entry.name.to_string(), value.to_string());
    }
    Ok(map)
}

/// The v5+ config entry of a created topic.
fn to_result_config(config: &configs::DescribedConfig) -> CreatableTopicConfigs {
    CreatableTopicConfigs::default()
        .with_name(StrBytes::from_static_str(config.name))
        .with_value(Some(StrBytes::from_string(config.value.clone())))
        .with_read_only(config.read_only)
        .with_config_source(config.source.code())
        .with_is_sensitive(config.sensitive)
}

/// The result of a refused topic.
fn failed(topic: &CreatableTopic, reply: &ErrorReply) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(topic.name.clone())
        .with_error_code(reply.code())
        .with_error_message(reply.message())
        .with_configs(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
    use kafka_protocol::messages::BrokerId;

    fn assigned(parts: &[(i32, &[i32])]) -> CreatableTopic {
        CreatableTopic::default()
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(
                parts
                    .iter()
                    .map(|(p, brokers)| {
                        CreatableReplicaAssignment::default()
                            .with_partition_index(*p)
                            .with_broker_ids(brokers.iter().copied().map(BrokerId).collect())
                    })
                    .collect(),
            )
    }

    #[test]
    fn assignments_give_partition_count() {
        assert_eq!(
            check_assignments(1, &assigned(&[(1, &[1]), (0, &[1])])),
            Ok(2)
        );
    }

    #[test]
    fn bad_assignments_are_refused() {
        for topic in [
            assigned(&[(0, &[1]), (2, &[1])]),
            assigned(&[(0, &[1]), (0, &[1])]),
            assigned(&[(-1, &[1])]),
            assigned(&[(0, &[2])]),
            assigned(&[(0, &[1, 2])]),
        ] {
            let err = check_assignments(1, &topic).unwrap_err();
            assert_eq!(
                err.error,
                ResponseError::InvalidReplicaAssignment,
                "{topic:?}"
            );
        }
    }

    #[test]
    fn replication_factor_rules() {
        assert!(check_replication_factor(-1).is_ok());
        assert!(check_replication_factor(1).is_ok());
        for bad in [0, -2, 2, 3] {
            let err = check_replication_factor(bad).unwrap_err();
            assert_eq!(err.error, ResponseError::InvalidReplicationFactor);
        }
    }

    #[test]
    fn null_config_value_is_invalid_config() {
        let entries = vec![CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("retention.ms"))
            .with_value(None)];
        assert_eq!(
            overrides(&entries).unwrap_err().error,
            ResponseError::InvalidConfig
        );
    }
}
