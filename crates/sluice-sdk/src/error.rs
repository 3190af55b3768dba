//! Errors the SDK reports, each saying what went wrong and what to do about it.

/// Result alias used throughout the SDK.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong producing or consuming through the SDK.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry refused the schema as incompatible with the subject's earlier versions.
    #[error("schema for subject {subject:?} is incompatible with its registered versions: {reasons:?}; make the change compatible (e.g. add optional fields) or register under a new subject")]
    SchemaIncompatible {
        /// The subject the schema was registered under.
        subject: String,
        /// The registry's reasons.
        reasons: Vec<String>,
    },
    /// The registry could not be reached after all retries.
    #[error("schema registry {url} unreachable after {attempts} attempts: {cause}; check `registry.url` and that the registry is up (the record was NOT sent)")]
    RegistryUnreachable {
        /// Registry base URL.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        cause: String,
    },
    /// The registry answered with an error other than incompatibility.
    #[error("schema registry request {request} failed with HTTP {status}: {message}")]
    Registry {
        /// Method and path of the request.
        request: String,
        /// HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },
    /// Too many records are waiting for the registry; the caller must slow down.
    #[error("{capacity} records are already waiting for the schema registry; retry later or raise `buffer_capacity` (the record was NOT sent)")]
    BufferFull {
        /// The configured bound.
        capacity: usize,
    },
    /// The broker refused access to a topic.
    #[error("principal {principal:?} is not authorized for topic {topic:?}; ask for an ACL (acl.yml) granting it, or check the credentials directory")]
    Authorization {
        /// The topic.
        topic: String,
        /// The principal the SDK authenticates as.
        principal: String,
    },
    /// A payload could not be decoded.
    #[error("undecodable record at {topic}/{partition}@{offset}: {reason}{}", dead_letter.as_ref().map(|t| format!(" (copied to dead-letter topic {t})")).unwrap_or_default())]
    Undecodable {
        /// Source topic.
        topic: String,
        /// Source partition.
        partition: i32,
        /// Source offset.
        offset: i64,
        /// Why decoding failed.
        reason: String,
        /// The dead-letter topic the record was copied to, if configured.
        dead_letter: Option<String>,
    },
    /// A schema given by the application is invalid.
    #[error("invalid {kind} schema for {name}: {reason}")]
    InvalidSchema {
        /// AVRO, PROTOBUF or JSON.
        kind: &'static str,
        /// The type or subject.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A value could not be serialized with its schema.
    #[error("cannot serialize {type_name}: {reason}")]
    Serialize {
        /// The record type.
        type_name: String,
        /// What failed.
        reason: String,
    },
    /// The configuration is unusable.
    #[error("configuration error: {0}")]
    Config(String),
    /// A Kafka client error (delivery, metadata, consume).
    #[error("kafka error on {context}: {source}")]
    Kafka {
        /// What the SDK was doing.
        context: String,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// Errors a retry may fix (Kafka's `RetriableException`s and librdkafka's local transients).
pub fn is_retriable(code: rdkafka::types::RDKafkaErrorCode) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        code,
        C::QueueFull
            | C::MessageTimedOut
            | C::RequestTimedOut
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::NotLeaderForPartition
            | C::LeaderNotAvailable
            | C::NetworkException
            | C::BrokerNotAvailable
            | C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::CoordinatorLoadInProgress
            | C::CoordinatorNotAvailable
            | C::NotCoordinator
            | C::KafkaStorageError
            | C::ThrottlingQuotaExceeded
    )
}
