//! DeleteTopics (API key 20, v1-6): deletes topics and their data, by name or (v6) by topic id.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::admin::{self, ErrorReply};
use super::RequestContext;
use crate::auth::{Operation, ResourceType};

/// How the request names a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Name(String),
    Id(Uuid),
    /// A v6 entry with both or neither of name and id.
    Ambiguous(Option<String>, Uuid),
}

/// Handles a DeleteTopics request.
pub async fn handle(ctx: &RequestContext, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let targets = targets(ctx.version(), &req);
    let keys: Vec<String> = targets.iter().map(target_key).collect();
    let dupes = admin::duplicates(keys.iter().map(String::as_str));
    let mut reported_dupes = std::collections::HashSet::new();
    let mut responses = Vec::with_capacity(targets.len());
    for (target, key) in targets.iter().zip(&keys) {
        let (name, id, result) = if dupes.contains(key.as_str()) {
            if !reported_dupes.insert(key.as_str()) {
                continue;
            }
            let (name, id) = match target {
                Target::Name(name) => (Some(name.clone()), Uuid::nil()),
                Target::Id(id) => (None, *id),
                Target::Ambiguous(name, id) => (name.clone(), *id),
            };
            (name, id, Err(admin::duplicate_reply("topic", key)))
        } else {
            delete(ctx, target).await
        };
        let (error_code, error_message) = admin::outcome(&result);
        let mut entry = DeletableTopicResult::default()
            .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
            .with_error_code(error_code);
        if ctx.version() >= 5 {
            entry = entry.with_error_message(error_message);
        }
        if ctx.version() >= 6 {
            entry = entry.with_topic_id(id);
        }
        responses.push(entry);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

/// The topics named by the request, in request order.
fn targets(version: i16, req: &DeleteTopicsRequest) -> Vec<Target> {
    if version < 6 {
        return req
            .topic_names
            .iter()
            .map(|n| Target::Name(n.0.to_string()))
            .collect();
    }
    req.topics
        .iter()
        .map(|t| match (&t.name, t.topic_id.is_nil()) {
            (Some(name), true) => Target::Name(name.0.to_string()),
            (None, false) => Target::Id(t.topic_id),
            (name, _) => Target::Ambiguous(name.as_ref().map(|n| n.0.to_string()), t.topic_id),
        })
        .collect()
}

/// A key that is equal for two entries naming the same topic the same way.
fn target_key(target: &Target) -> String {
    match target {
        Target::Name(name) => name.clone(),
        Target::Id(id) => id.to_string(),
        Target::Ambiguous(name, id) => format!("{name:?}/{id}"),
    }
}

/// Deletes one topic; returns the name and id to report with the outcome.
async fn delete(
    ctx: &RequestContext,
    target: &Target,
) -> (Option<String>, Uuid, Result<(), ErrorReply>) {
    let metadata = &ctx.broker.metadata;
    let topic = match target {
        Target::Name(name) => match metadata.topic(name) {
            Some(topic) => topic,
            None => {
                let reply = ErrorReply::new(
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic '{name}' does not exist"),
                );
                return (Some(name.clone()), Uuid::nil(), Err(reply));
            }
        },
        Target::Id(id) => match metadata.topic_by_id(*id) {
            Some(topic) => topic,
            None => {
                let reply = ErrorReply::new(
                    ResponseError::UnknownTopicId,
                    format!("no topic has id {id}"),
                );
                return (None, *id, Err(reply));
            }
        },
        Target::Ambiguous(name, id) => {
            let reply = ErrorReply::new(
                ResponseError::InvalidRequest,
                "give either a topic name or a topic id for each topic, not both or neither",
            );
            return (name.clone(), *id, Err(reply));
        }
    };
    let (name, id) = (topic.name.clone(), topic.id);
    if !ctx.authorize(Operation::Delete, ResourceType::Topic, &name) {
        let reply = ErrorReply::new(
            ResponseError::TopicAuthorizationFailed,
            "the principal may not delete this topic; it needs Delete on the topic",
        );
        return (Some(name), id, Err(reply));
    }
    if topic.internal {
        // Internal topics hold broker state (committed offsets); losing them silently would
        // reset every consumer group.
        let reply = ErrorReply::new(
            ResponseError::InvalidTopicException,
            format!("topic '{name}' is internal to the broker and cannot be deleted"),
        );
        return (Some(name), id, Err(reply));
    }
    drop(topic);
    let result = admin::run_blocking(ctx, {
        let name = name.clone();
        move |broker| broker.metadata.delete_topic(&name)
    })
    .await;
    if result.is_ok() {
        ctx.broker.metrics.topic_deleted(&name);
    }
    (Some(name), id, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;

    fn name(s: &'static str) -> TopicName {
        TopicName(StrBytes::from_static_str(s))
    }

    #[test]
    fn v6_entries_need_exactly_one_of_name_and_id() {
        let id = Uuid::new_v4();
        let req = DeleteTopicsRequest::default().with_topics(vec![
            DeleteTopicState::default().with_name(Some(name("a"))),
            DeleteTopicState::default().with_topic_id(id),
            DeleteTopicState::default()
                .with_name(Some(name("b")))
                .with_topic_id(id),
            DeleteTopicState::default(),
        ]);
        assert_eq!(
            targets(6, &req),
            vec![
                Target::Name("a".into()),
                Target::Id(id),
                Target::Ambiguous(Some("b".into()), id),
                Target::Ambiguous(None, Uuid::nil()),
            ]
        );
    }

    #[test]
    fn old_versions_use_topic_names() {
        let req = DeleteTopicsRequest::default().with_topic_names(vec![name("x"), name("y")]);
        assert_eq!(
            targets(5, &req),
            vec![Target::Name("x".into()), Target::Name("y".into())]
        );
    }
}
