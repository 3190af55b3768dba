//! Shared pieces of the topic-administration handlers (CreateTopics, DeleteTopics,
//! CreatePartitions, the config APIs): catalogue errors as Kafka error codes, config resources,
//! replica-assignment checks, and running catalogue changes off the async threads.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::{Operation, ResourceType};
use crate::meta::broker_defaults::BrokerScope;
use crate::meta::configs::AlterTarget;
use crate::meta::{MetaError, Topic};
use crate::state::Broker;

/// Kafka's `ConfigResource.Type` code for topics.
pub const RESOURCE_TOPIC: i8 = 2;
/// Kafka's `ConfigResource.Type` code for brokers.
pub const RESOURCE_BROKER: i8 = 4;
/// Kafka's `ConfigResource.Type` code for a broker's loggers.
pub const RESOURCE_BROKER_LOGGER: i8 = 8;

/// A per-topic or per-resource failure: a Kafka error code plus a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// The Kafka error.
    pub error: ResponseError,
    /// What went wrong and, where possible, what to do about it.
    pub message: String,
}

impl ErrorReply {
    /// An error reply with a message.
    pub fn new(error: ResponseError, message: impl Into<String>) -> Self {
        ErrorReply {
            error,
            message: message.into(),
        }
    }

    /// The wire error code.
    pub fn code(&self) -> i16 {
        self.error.code()
    }

    /// The message as a protocol string.
    pub fn message(&self) -> Option<StrBytes> {
        Some(StrBytes::from_string(self.message.clone()))
    }
}

impl From<MetaError> for ErrorReply {
    fn from(err: MetaError) -> Self {
        ErrorReply::new(err.error_code(), err.to_string())
    }
}

/// The `(error_code, error_message)` pair of a result: `(0, None)` on success.
pub fn outcome<T>(result: &Result<T, ErrorReply>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(_) => (0, None),
        Err(reply) => (reply.code(), reply.message()),
    }
}

/// Runs a catalogue change on the blocking pool: changes create directories and fsync the
/// catalogue, which must not stall the connection threads.
pub async fn run_blocking<T, E, F>(ctx: &RequestContext, change: F) -> Result<T, ErrorReply>
where
    T: Send + 'static,
    E: Into<ErrorReply> + Send + 'static,
    F: FnOnce(&Broker) -> Result<T, E> + Send + 'static,
{
    let broker = ctx.broker.clone();
    match tokio::task::spawn_blocking(move || change(&broker)).await {
        Ok(result) => result.map_err(Into::into),
        Err(join) => {
            tracing::error!(error = %join, "catalogue change task failed");
            Err(ErrorReply::new(
                ResponseError::UnknownServerError,
                "the broker failed while changing the topic catalogue; see the broker log",
            ))
        }
    }
}

/// The names that occur more than once in a request, which Kafka refuses as INVALID_REQUEST.
pub fn duplicates<'a>(names: impl IntoIterator<Item = &'a str>) -> HashSet<&'a str> {
    let mut seen = HashSet::new();
    names
        .into_iter()
        .filter(|name| !seen.insert(*name))
        .collect()
}

/// The INVALID_REQUEST reply for an entry repeated within one request.
pub fn duplicate_reply(what: &str, name: &str) -> ErrorReply {
    ErrorReply::new(
        ResponseError::InvalidRequest,
        format!("{what} '{name}' appears more than once in the request; list it once"),
    )
}

/// Checks one partition's manual replica assignment: on a single-node broker the only valid
/// assignment is exactly this node.
pub fn check_replicas(
    node_id: i32,
    partition: i32,
    brokers: &[BrokerId],
) -> Result<(), ErrorReply> {
    match brokers {
        [only] if only.0 == node_id => Ok(()),
        [] => Err(ErrorReply::new(
            ResponseError::InvalidReplicaAssignment,
            format!("partition {partition} has an empty replica assignment; assign it to broker {node_id}"),
        )),
        _ => Err(ErrorReply::new(
            ResponseError::InvalidReplicaAssignment,
            format!(
                "partition {partition} is assigned to brokers {:?}, but this single-node cluster \
                 only has broker {node_id}; assign each partition to [{node_id}]",
                brokers.iter().map(|b| b.0).collect::<Vec<_>>()
            ),
        )),
    }
}

/// The thing a config request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    /// A topic, by name.
    Topic(String),
    /// This broker (named by its node id) or the cluster-wide defaults (the empty name).
    Broker(BrokerScope),
    /// This broker's loggers (named by its node id).
    BrokerLogger,
}

impl ConfigResource {
    /// TOPIC_/CLUSTER_AUTHORIZATION_FAILED unless the caller may perform `operation`
    /// (DescribeConfigs, AlterConfigs) on this resource; broker configs belong to the cluster.
    pub fn authorize(&self, ctx: &RequestContext, operation: Operation) -> Result<(), ErrorReply> {
        let (allowed, error) = match self {
            ConfigResource::Topic(name) => (
                ctx.authorize(operation, ResourceType::Topic, name),
                ResponseError::TopicAuthorizationFailed,
            ),
            ConfigResource::Broker(_) | ConfigResource::BrokerLogger => (
                ctx.authorize_cluster(operation),
                ResponseError::ClusterAuthorizationFailed,
            ),
        };
        if allowed {
            Ok(())
        } else {
            Err(ErrorReply::new(
                error,
                format!("the principal is not allowed {operation} on this resource"),
            ))
        }
    }

    /// Interprets a request's `(resource_type, resource_name)` the way a Kafka broker does.
    pub fn resolve(node_id: i32, resource_type: i8, name: &str) -> Result<Self, ErrorReply> {
        match resource_type {
            RESOURCE_TOPIC => Ok(ConfigResource::Topic(name.to_owned())),
            RESOURCE_BROKER if name.is_empty() => {
                Ok(ConfigResource::Broker(BrokerScope::ClusterDefault))
            }
            RESOURCE_BROKER => {
                this_broker(node_id, name).map(|()| ConfigResource::Broker(BrokerScope::ThisBroker))
            }
            RESOURCE_BROKER_LOGGER => {
                this_broker(node_id, name).map(|()| ConfigResource::BrokerLogger)
            }
            other => Err(ErrorReply::new(
                ResponseError::InvalidRequest,
                format!("unsupported config resource type {other}; Sluice supports topics (2), brokers (4) and broker loggers (8)"),
            )),
        }
    }
}

/// Checks that a broker resource names this broker.
fn this_broker(node_id: i32, name: &str) -> Result<(), ErrorReply> {
    match name.parse::<i32>() {
        Ok(id) if id == node_id => Ok(()),
        Ok(id) => Err(ErrorReply::new(
            ResponseError::InvalidRequest,
            format!("unexpected broker id {id}: this broker is {node_id}"),
        )),
        Err(_) => Err(ErrorReply::new(
            ResponseError::InvalidRequest,
            format!("broker id must be an integer, but it is '{name}'"),
        )),
    }
}

/// Sets (`Some`) or removes (`None`) logger levels (IncrementalAlterConfigs on BROKER_LOGGER).
pub fn alter_loggers(
    ctx: &RequestContext,
    name: &str,
    changes: &[(String, Option<String>)],
    validate_only: bool,
) -> Result<(), ErrorReply> {
    let resource =
        ConfigResource::resolve(ctx.broker.config.node_id, RESOURCE_BROKER_LOGGER, name)?;
    resource.authorize(ctx, Operation::AlterConfigs)?;
    let Some(levels) = &ctx.broker.config.log_levels else {
        return Err(ErrorReply::new(
            ResponseError::InvalidRequest,
            "this broker's log levels cannot be changed at run time (it was embedded without a logger control)",
        ));
    };
    let mut translated = Vec::with_capacity(changes.len());
    for (logger, level) in changes {
        let level = match level {
            None => None,
            Some(level) => Some(log_level(level).ok_or_else(|| {
                ErrorReply::new(
                    ResponseError::InvalidConfig,
                    format!("invalid level {level:?} for logger {logger}; use TRACE, DEBUG, INFO, WARN, ERROR or OFF"),
                )
            })?),
        };
        translated.push((logger.clone(), level.map(str::to_owned)));
    }
    levels
        .apply(&translated, validate_only)
        .map_err(|e| ErrorReply::new(ResponseError::InvalidConfig, e))
}

/// The tracing level of a Kafka (log4j) level name, case-insensitive; `FATAL` is `error`, `ALL`
/// is `trace`.
fn log_level(level: &str) -> Option<&'static str> {
    Some(match level.to_ascii_uppercase().as_str() {
        "TRACE" | "ALL" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        "OFF" => "off",
        _ => return None,
    })
}

/// Looks up a topic an admin request names: an invalid name is INVALID_TOPIC_EXCEPTION, a valid
/// but absent one UNKNOWN_TOPIC_OR_PARTITION, as in Kafka.
pub fn existing_topic(
    ctx: &RequestContext,
    name: &str,
) -> Result<std::sync::Arc<Topic>, ErrorReply> {
    crate::meta::validate_topic_name(name)?;
    ctx.broker
        .metadata
        .topic(name)
        .ok_or_else(|| ErrorReply::from(MetaError::UnknownTopic(name.to_owned())))
}

/// Changes one resource's configs for AlterConfigs and IncrementalAlterConfigs: `new_overrides`
/// computes the complete new set of a topic's overrides, or of one dynamic broker layer, from
/// the current one. It runs under the catalogue's change lock, so concurrent alterations of
/// the same resource cannot lose each other's changes.
pub async fn alter_resource<F>(
    ctx: &RequestContext,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    new_overrides: F,
) -> Result<(), ErrorReply>
where
    F: FnOnce(
            &BTreeMap<String, String>,
            AlterTarget<'_>,
        ) -> Result<BTreeMap<String, String>, ErrorReply>
        + Send
        + 'static,
{
    let resource = ConfigResource::resolve(ctx.broker.config.node_id, resource_type, name)?;
    resource.authorize(ctx, Operation::AlterConfigs)?;
    match resource {
        ConfigResource::BrokerLogger => Err(ErrorReply::new(
            ResponseError::InvalidRequest,
            "broker loggers are changed with IncrementalAlterConfigs (SET or DELETE), as in Kafka",
        )),
        ConfigResource::Broker(scope) => {
            run_blocking(ctx, move |broker| {
                broker
                    .metadata
                    .alter_broker_configs(scope, new_overrides, validate_only)
            })
            .await
        }
        ConfigResource::Topic(topic_name) => {
            existing_topic(ctx, &topic_name)?;
            // The catalogue validates the new overrides before applying them.
            run_blocking(ctx, move |broker| {
                broker
                    .metadata
                    .alter_topic_configs(&topic_name, new_overrides, validate_only)
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_reports_only_repeated_names() {
        let dupes = duplicates(["a", "b", "a", "c", "b", "a"]);
        assert_eq!(dupes, HashSet::from(["a", "b"]));
        assert!(duplicates(["x", "y"]).is_empty());
    }

    #[test]
    fn replicas_must_be_exactly_this_node() {
        assert!(check_replicas(1, 0, &[BrokerId(1)]).is_ok());
        for bad in [vec![], vec![BrokerId(2)], vec![BrokerId(1), BrokerId(1)]] {
            let err = check_replicas(1, 3, &bad).unwrap_err();
            assert_eq!(err.error, ResponseError::InvalidReplicaAssignment);
            assert!(err.message.contains("partition 3"), "{}", err.message);
        }
    }

    #[test]
    fn resources_resolve_like_kafka() {
        assert_eq!(
            ConfigResource::resolve(1, RESOURCE_TOPIC, "t"),
            Ok(ConfigResource::Topic("t".into()))
        );
        assert_eq!(
            ConfigResource::resolve(1, RESOURCE_BROKER, ""),
            Ok(ConfigResource::Broker(BrokerScope::ClusterDefault))
        );
        assert_eq!(
            ConfigResource::resolve(7, RESOURCE_BROKER, "7"),
            Ok(ConfigResource::Broker(BrokerScope::ThisBroker))
        );
        assert_eq!(
            ConfigResource::resolve(7, RESOURCE_BROKER_LOGGER, "7"),
            Ok(ConfigResource::BrokerLogger)
        );
        for (kind, name) in [
            (RESOURCE_BROKER, "2"),
            (RESOURCE_BROKER, "x"),
            (RESOURCE_BROKER_LOGGER, "2"),
            (RESOURCE_BROKER_LOGGER, ""),
            (0, "t"),
        ] {
            let err = ConfigResource::resolve(1, kind, name).unwrap_err();
            assert_eq!(err.error, ResponseError::InvalidRequest, "{kind} {name}");
        }
    }

    #[test]
    fn meta_errors_map_to_kafka_codes() {
        let cases = [
            (MetaError::TopicExists("t".into()), 36),
            (MetaError::UnknownTopic("t".into()), 3),
            (
                MetaError::InvalidTopic {
                    name: "".into(),
                    reason: "empty",
                },
                17,
            ),
            (MetaError::InvalidPartitions(0, "must be positive"), 37),
            (MetaError::InvalidReplicationFactor(3), 38),
            (
                MetaError::InvalidConfig {
                    key: "k".into(),
                    value: "v".into(),
                    reason: "r".into(),
                },
                40,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(ErrorReply::from(err).code(), code);
        }
    }
}
