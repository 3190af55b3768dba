//! CreatePartitions (API key 37, v0-3): grows topics to a larger partition count.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::admin::{self, ErrorReply};
use super::RequestContext;
use crate::auth::{Operation, ResourceType};

/// Handles a CreatePartitions request.
pub async fn handle(
    ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let dupes = admin::duplicates(req.topics.iter().map(|t| t.name.0.as_str()));
    let mut reported_dupes = std::collections::HashSet::new();
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let name = topic.name.0.as_str();
        let result = if dupes.contains(name) {
            if !reported_dupes.insert(name) {
                continue;
            }
            Err(admin::duplicate_reply("topic", name))
        } else {
            grow(ctx, topic, req.validate_only).await
        };
        let (error_code, error_message) = admin::outcome(&result);
        results.push(
            CreatePartitionsTopicResult::default()
                .with_name(topic.name.clone())
                .with_error_code(error_code)
                .with_error_message(error_message),
        );
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// Grows one topic to `topic.count` partitions.
async fn grow(
    ctx: &RequestContext,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), ErrorReply> {
    let name = topic.name.0.to_string();
    if !ctx.authorize(Operation::Alter, ResourceType::Topic, &name) {
        return Err(ErrorReply::new(
            ResponseError::TopicAuthorizationFailed,
            "the principal may not add partitions to this topic; it needs Alter on the topic",
        ));
    }
    let current = admin::existing_topic(ctx, &name)?.partitions.len();
    let current = i32::try_from(current).unwrap_or(i32::MAX);
    let total = topic.count;
    if total <= current {
        let message = if total == current {
            format!("topic '{name}' already has {current} partitions")
        } else {
            format!("topic '{name}' has {current} partitions; partitions can only be added, not removed ({total} requested)")
        };
        return Err(ErrorReply::new(ResponseError::InvalidPartitions, message));
    }
    if let Some(assignments) = &topic.assignments {
        let added = total - current;
        if usize::try_from(added).ok() != Some(assignments.len()) {
            return Err(ErrorReply::new(
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "adding {added} partitions needs {added} assignments, got {}",
                    assignments.len()
                ),
            ));
        }
        for (partition, assignment) in (current..).zip(assignments) {
            admin::check_replicas(ctx.broker.config.node_id, partition, &assignment.broker_ids)?;
        }
    }
    admin::run_blocking(ctx, {
        let name = name.clone();
        move |broker| {
            broker
                .metadata
                .create_partitions(&name, total, validate_only)
        }
    })
    .await
}
