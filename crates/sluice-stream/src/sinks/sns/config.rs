//! Settings of an SNS destination.

use serde::Deserialize;

use crate::aws::AwsSettings;
use crate::sinks::attributes::BodyEncoding;
use crate::sinks::field::Field;

/// Entries per `PublishBatch`.
pub(crate) const MAX_BATCH_RECORDS: usize = 10;
/// Bytes per message and per batch.
pub(crate) const MAX_BYTES: usize = 256 * 1024;

/// An SNS topic (`sns:` in a pipeline file).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SnsConfig {
    /// The topic's ARN (`arn:aws:sns:<region>:<account>:<name>[.fifo]`).
    pub topic_arn: String,
    /// Region, endpoint and profile.
    #[serde(default)]
    pub aws: AwsSettings,
    /// FIFO topics: where `MessageGroupId` comes from; required for them.
    #[serde(default)]
    pub group_id: Option<Field>,
    /// FIFO topics: where `MessageDeduplicationId` comes from [default: `header:event_id`
    /// when present, else the topic's content-based deduplication].
    #[serde(default)]
    pub deduplication_id: Option<Field>,
    /// How payloads become messages [default: text].
    #[serde(default)]
    pub body: BodyEncoding,
    /// Send headers as message attributes [default: true].
    #[serde(default = "crate::sinks::attributes::yes")]
    pub headers: bool,
}

impl SnsConfig {
    /// A configuration for `topic_arn` with defaults.
    pub fn new(topic_arn: impl Into<String>) -> SnsConfig {
        SnsConfig {
            topic_arn: topic_arn.into(),
            aws: AwsSettings::default(),
            group_id: None,
            deduplication_id: None,
            body: BodyEncoding::Text,
            headers: true,
        }
    }

    /// Whether the topic is a FIFO topic.
    pub fn is_fifo(&self) -> bool {
        self.topic_arn.ends_with(".fifo")
    }
}
