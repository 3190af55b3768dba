//! Settings of a Kinesis destination.

use serde::Deserialize;

use crate::aws::AwsSettings;
use crate::sinks::field::Field;

/// Records per `PutRecords`.
pub(crate) const MAX_BATCH_RECORDS: usize = 500;
/// Bytes per `PutRecords` (data and partition keys).
pub(crate) const MAX_BATCH_BYTES: usize = 5 << 20;
/// Bytes per record (data and partition key).
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 20;
/// Unicode characters per partition key.
pub(crate) const MAX_PARTITION_KEY_CHARS: usize = 256;

fn key() -> Field {
    Field::Key
}

/// A Kinesis data stream (`kinesis:` in a pipeline file).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KinesisConfig {
    /// The stream's name (or give `stream_arn`).
    #[serde(default)]
    pub stream_name: Option<String>,
    /// The stream's ARN.
    #[serde(default)]
    pub stream_arn: Option<String>,
    /// Region, endpoint and profile.
    #[serde(default)]
    pub aws: AwsSettings,
    /// Where the partition key comes from [default: `key`; an event without one gets a
    /// random key]. A `static:` key sends everything to one shard.
    #[serde(default = "key")]
    pub partition_key: Field,
    /// Where an explicit hash key (decimal, 0 ≤ h < 2^128) comes from, overriding the
    /// partition key's hash for shard choice.
    #[serde(default)]
    pub explicit_hash_key: Option<Field>,
}

impl KinesisConfig {
    /// A configuration for the stream called `name`, keyed by the event key.
    pub fn new(name: impl Into<String>) -> KinesisConfig {
        KinesisConfig {
            stream_name: Some(name.into()),
            stream_arn: None,
            aws: AwsSettings::default(),
            partition_key: Field::Key,
            explicit_hash_key: None,
        }
    }
}
