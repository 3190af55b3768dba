//! Resolving the topics and partitions a request names, authorization included: the one
//! place that decides between TOPIC_AUTHORIZATION_FAILED and UNKNOWN_TOPIC_OR_PARTITION, so
//! that no handler can tell a caller about a topic it may not see.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::RequestContext;
use crate::auth::{Operation, ResourceType};
use crate::meta::Topic;
use crate::partition::Partition;

/// A named topic as one request may use it.
#[derive(Debug)]
pub struct TopicAccess(Result<Arc<Topic>, ResponseError>);

impl RequestContext {
    /// The topic `name` if it exists and the caller may perform `operation` on it; otherwise
    /// what each of its partitions reports (TOPIC_AUTHORIZATION_FAILED before existence is
    /// even looked at, then UNKNOWN_TOPIC_OR_PARTITION).
    pub fn topic_access(&self, operation: Operation, name: &str) -> TopicAccess {
        if !self.authorize(operation, ResourceType::Topic, name) {
            return TopicAccess(Err(ResponseError::TopicAuthorizationFailed));
        }
        TopicAccess(
            self.broker
                .metadata
                .topic(name)
                .ok_or(ResponseError::UnknownTopicOrPartition),
        )
    }
}

impl TopicAccess {
    /// Partition `index` of the topic, or the error to report for it.
    pub fn partition(&self, index: i32) -> Result<&Arc<Partition>, ResponseError> {
        let topic = self.0.as_ref().map_err(|e| *e)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| topic.partitions.get(i))
            .ok_or(ResponseError::UnknownTopicOrPartition)
    }
}
