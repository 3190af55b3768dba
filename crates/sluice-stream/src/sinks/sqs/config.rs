//! Settings of an SQS destination.

use serde::Deserialize;

use crate::aws::AwsSettings;
use crate::sinks::attributes::BodyEncoding;
use crate::sinks::field::Field;

/// Entries per `SendMessageBatch`.
pub(crate) const MAX_BATCH_RECORDS: usize = 10;
/// Bytes per message and per batch (SQS raised both from 256 KiB to 1 MiB in 2025).
pub(crate) const MAX_BYTES: usize = 1 << 20;

/// An SQS queue (`sqs:` in a pipeline file).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SqsConfig {
    /// The queue's URL (`https://sqs.<region>.amazonaws.com/<account>/<name>[.fifo]`).
    pub queue_url: String,
    /// Region, endpoint and profile.
    #[serde(default)]
    pub aws: AwsSettings,
    /// FIFO queues: where `MessageGroupId` comes from (e.g. `key`); required for them.
    #[serde(default)]
    pub group_id: Option<Field>,
    /// FIFO queues: where `MessageDeduplicationId` comes from [default: `header:event_id`
    /// when the event has it, else the queue's content-based deduplication].
    #[serde(default)]
    pub deduplication_id: Option<Field>,
    /// How payloads become bodies [default: text].
    #[serde(default)]
    pub body: BodyEncoding,
    /// Send headers as message attributes [default: true].
    #[serde(default = "crate::sinks::attributes::yes")]
    pub headers: bool,
    /// Largest message, in bytes, the queue accepts (its `MaximumMessageSize`) [default 1 MiB].
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
}

impl SqsConfig {
    /// A configuration for `queue_url` with defaults.
    pub fn new(queue_url: impl Into<String>) -> SqsConfig {
        SqsConfig {
            queue_url: queue_url.into(),
            aws: AwsSettings::default(),
            group_id: None,
            deduplication_id: None,
            body: BodyEncoding::Text,
            headers: true,
            max_message_bytes: None,
        }
    }

    /// Whether the queue is a FIFO queue (its name ends in `.fifo`).
    pub fn is_fifo(&self) -> bool {
        self.queue_url.trim_end_matches('/').ends_with(".fifo")
    }

    /// The message size limit in force.
    pub(crate) fn message_limit(&self) -> usize {
        self.max_message_bytes.unwrap_or(MAX_BYTES).min(MAX_BYTES)
    }
}
