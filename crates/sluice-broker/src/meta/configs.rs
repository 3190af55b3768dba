//! Topic config keys: names, defaults, validation and mapping onto `LogConfig`.
//!
//! [`TOPIC_CONFIGS`] is the single table of topic configs the broker accepts. Each entry either
//! drives a [`LogConfig`] field (its default then comes from the broker's log defaults) or is
//! only stored and reported back, for configs clients commonly set but that a single-node broker
//! has no use for (`min.insync.replicas`, `flush.ms`, ...). Notably `compression.type` is stored
//! but the broker always keeps batches compressed exactly as the producer sent them, i.e. only
//! `producer` semantics are implemented: re-compressing would break the byte-range fetch path.
//!
//! The same table also yields the broker-level view (resource type BROKER in DescribeConfigs):
//! each topic config has a `log.*`-style broker synonym whose value is the broker default, which
//! AlterConfigs may change at run time (see [`super::broker_defaults`]).

use std::collections::BTreeMap;

use sluice_log::{CleanupPolicy, LogConfig, TimestampType};

use super::broker_defaults::{BrokerDefaults, BrokerScope};
use super::MetaError;
use crate::config::BrokerConfig;

/// Kafka's `ConfigType` of a config, reported by DescribeConfigs v3+.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` / `false`.
    Boolean,
    /// Free text or one of an enumeration.
    String,
    /// 32-bit integer.
    Int,
    /// 16-bit integer.
    Short,
    /// 64-bit integer.
    Long,
    /// Floating point number.
    Double,
    /// Comma-separated list.
    List,
}

impl ConfigType {
    /// The wire code of this type (`DescribeConfigsResourceResult.config_type`).
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }
}

/// Where a described config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic (`TOPIC_CONFIG`).
    TopicConfig,
    /// Set dynamically on this broker (`DYNAMIC_BROKER_CONFIG`).
    DynamicBrokerConfig,
    /// Set dynamically as the cluster-wide default (`DYNAMIC_DEFAULT_BROKER_CONFIG`).
    DynamicDefaultBrokerConfig,
    /// A logger's level (`DYNAMIC_BROKER_LOGGER_CONFIG`).
    DynamicBrokerLoggerConfig,
    /// Set in the broker's startup configuration (`STATIC_BROKER_CONFIG`).
    StaticBrokerConfig,
    /// Kafka's built-in default (`DEFAULT_CONFIG`).
    DefaultConfig,
}

impl ConfigSource {
    /// The wire code of this source.
    pub fn code(self) -> i8 {
        match self {
            ConfigSource::TopicConfig => 1,
            ConfigSource::DynamicBrokerConfig => 2,
            ConfigSource::DynamicDefaultBrokerConfig => 3,
            ConfigSource::DynamicBrokerLoggerConfig => 6,
            ConfigSource::StaticBrokerConfig => 4,
            ConfigSource::DefaultConfig => 5,
        }
    }
}

/// Which values a config accepts.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// A 64-bit integer of at least `min`.
    Long { min: i64 },
    /// A 32-bit integer of at least `min`.
    Int { min: i32 },
    /// A number in `[min, max]`.
    Double { min: f64, max: f64 },
    /// `true` or `false` (any case, like Kafka's parser).
    Boolean,
    /// Exactly one of the listed strings.
    OneOf(&'static [&'static str]),
    /// A non-empty comma-separated list of the listed strings.
    ListOf(&'static [&'static str]),
    /// Any text (configs Kafka still accepts but that mean nothing to a single node), up to
    /// a length that keeps the catalogue small.
    Text,
}

/// Longest value a [`Rule::Text`] config takes.
const MAX_TEXT_CONFIG: usize = 4096;

/// The `LogConfig` field a config drives.
#[derive(Debug, Clone, Copy)]
enum LogField {
    SegmentBytes,
    SegmentMs,
    RetentionMs,
    RetentionBytes,
    CleanupPolicy,
    DeleteRetentionMs,
    MinCompactionLagMs,
    MaxMessageBytes,
    IndexIntervalBytes,
    SegmentIndexBytes,
    TimestampType,
}

/// How a config takes effect.
#[derive(Debug, Clone, Copy)]
enum Binding {
    /// It sets a field of the partition's `LogConfig`; the default is the broker's.
    Log(LogField),
    /// It is validated, stored and reported, but has no effect on a single-node broker.
    Stored { default: &'static str },
}

/// A value that passed its [`Rule`].
#[derive(Debug, Clone, PartialEq)]
enum Parsed {
    Long(i64),
    Double(f64),
    Bool(bool),
    Text(String),
    List(Vec<String>),
}

/// One supported topic config.
#[derive(Debug)]
pub struct TopicConfigDef {
    /// The topic-level name, e.g. `retention.ms`.
    pub name: &'static str,
    /// Its Kafka config type.
    pub config_type: ConfigType,
    /// The broker-level config that supplies its default, e.g. `log.retention.ms`.
    pub broker_synonym: &'static str,
    /// True when clients may not change it.
    pub read_only: bool,
    /// What the config does, reported by DescribeConfigs v3+.
    pub doc: &'static str,
    rule: Rule,
    binding: Binding,
}

const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
/// `Long.MAX_VALUE`, Kafka's "no limit" default of several configs.
const LONG_MAX: &str = "9223372036854775807";

/// Every topic config the broker accepts, sorted by name.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        config_type: ConfigType::List,
        broker_synonym: "log.cleanup.policy",
        read_only: false,
        doc: "How old data is removed: `delete` drops whole segments past the retention limits, \
              `compact` keeps only the latest record of each key; `compact,delete` does both.",
        rule: Rule::ListOf(CLEANUP_POLICIES),
        binding: Binding::Log(LogField::CleanupPolicy),
    },
    TopicConfigDef {
        name: "compression.type",
        config_type: ConfigType::String,
        broker_synonym: "compression.type",
        read_only: false,
        doc: "Stored and reported only: Sluice always keeps batches compressed as the producer \
              sent them (the `producer` behaviour) so fetches never re-encode records.",
        rule: Rule::OneOf(COMPRESSION_TYPES),
        binding: Binding::Stored {
            default: "producer",
        },
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        config_type: ConfigType::Long,
        broker_synonym: "log.cleaner.delete.retention.ms",
        read_only: false,
        doc: "On compacted topics, how long a tombstone (null-value record) stays readable \
              after compaction reached it, so slow consumers still see the delete.",
        rule: Rule::Long { min: 0 },
        binding: Binding::Log(LogField::DeleteRetentionMs),
    },
    TopicConfigDef {
        name: "file.delete.delay.ms",
        config_type: ConfigType::Long,
        broker_synonym: "log.segment.delete.delay.ms",
        read_only: false,
        doc: "Stored and reported only: Sluice removes expired segment files right away.",
        rule: Rule::Long { min: 0 },
        binding: Binding::Stored { default: "60000" },
    },
    TopicConfigDef {
        name: "flush.messages",
        config_type: ConfigType::Long,
        broker_synonym: "log.flush.interval.messages",
        read_only: false,
        doc: "Stored and reported only: fsync is governed by the broker's fsync policy \
              (acks=-1 waits for a group-commit fsync).",
        rule: Rule::Long { min: 1 },
        binding: Binding::Stored { default: LONG_MAX },
    },
    TopicConfigDef {
        name: "flush.ms",
        config_type: ConfigType::Long,
        broker_synonym: "log.flush.interval.ms",
        read_only: false,
        doc: "Stored and reported only: fsync is governed by the broker's fsync policy \
              (acks=-1 waits for a group-commit fsync).",
        rule: Rule::Long { min: 0 },
        binding: Binding::Stored { default: LONG_MAX },
    },
    TopicConfigDef {
        name: "follower.replication.throttled.replicas",
        config_type: ConfigType::List,
        broker_synonym: "follower.replication.throttled.replicas",
        read_only: false,
        doc: "Stored and reported only: a single node replicates nothing to throttle.",
        rule: Rule::Text,
        binding: Binding::Stored { default: "" },
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        config_type: ConfigType::Int,
        broker_synonym: "log.index.interval.bytes",
        read_only: false,
        doc: "How many bytes of batches lie between two entries of the sparse offset and time \
              indexes; smaller means faster lookups and bigger index files.",
        rule: Rule::Int { min: 0 },
        binding: Binding::Log(LogField::IndexIntervalBytes),
    },
    TopicConfigDef {
        name: "leader.replication.throttled.replicas",
        config_type: ConfigType::List,
        broker_synonym: "leader.replication.throttled.replicas",
        read_only: false,
        doc: "Stored and reported only: a single node replicates nothing to throttle.",
        rule: Rule::Text,
        binding: Binding::Stored { default: "" },
    },
    TopicConfigDef {
        name: "local.retention.bytes",
        config_type: ConfigType::Long,
        broker_synonym: "log.local.retention.bytes",
        read_only: false,
        doc: "Stored and reported only: tiered storage is not implemented; -2 means retention.bytes.",
        rule: Rule::Long { min: -2 },
        binding: Binding::Stored { default: "-2" },
    },
    TopicConfigDef {
        name: "local.retention.ms",
        config_type: ConfigType::Long,
        broker_synonym: "log.local.retention.ms",
        read_only: false,
        doc: "Stored and reported only: tiered storage is not implemented; -2 means retention.ms.",
        rule: Rule::Long { min: -2 },
        binding: Binding::Stored { default: "-2" },
    },
    TopicConfigDef {
        name: "max.compaction.lag.ms",
        config_type: ConfigType::Long,
        broker_synonym: "log.cleaner.max.compaction.lag.ms",
        read_only: false,
        doc: "Stored and reported only: the longest a record may stay uncompacted; Sluice \
              compacts on every housekeeping pass.",
        rule: Rule::Long { min: 1 },
        binding: Binding::Stored { default: LONG_MAX },
    },
    TopicConfigDef {
        name: "max.message.bytes",
        config_type: ConfigType::Int,
        broker_synonym: "message.max.bytes",
        read_only: false,
        doc: "The largest record batch (after compression) a producer may append; larger \
              batches are refused with MESSAGE_TOO_LARGE.",
        rule: Rule::Int { min: 0 },
        binding: Binding::Log(LogField::MaxMessageBytes),
    },
    TopicConfigDef {
        name: "message.downconversion.enable",
        config_type: ConfigType::Boolean,
        broker_synonym: "log.message.downconversion.enable",
        read_only: false,
        doc: "Stored and reported only: Sluice serves message format v2 and never converts \
              batches for old consumers.",
        rule: Rule::Boolean,
        binding: Binding::Stored { default: "true" },
    },
    TopicConfigDef {
        name: "message.format.version",
        config_type: ConfigType::String,
        broker_synonym: "log.message.format.version",
        read_only: false,
        doc: "Stored and reported only (deprecated in Kafka 3.0): Sluice stores message format v2 only.",
        rule: Rule::Text,
        binding: Binding::Stored { default: "3.0-IV1" },
    },
    TopicConfigDef {
        name: "message.timestamp.after.max.ms",
        config_type: ConfigType::Long,
        broker_synonym: "log.message.timestamp.after.max.ms",
        read_only: false,
        doc: "Stored and reported only: how far in the future a CreateTime timestamp may be.",
        rule: Rule::Long { min: 0 },
        binding: Binding::Stored { default: LONG_MAX },
    },
    TopicConfigDef {
        name: "message.timestamp.before.max.ms",
        config_type: ConfigType::Long,
        broker_synonym: "log.message.timestamp.before.max.ms",
        read_only: false,
        doc: "Stored and reported only: how far in the past a CreateTime timestamp may be.",
        rule: Rule::Long { min: 0 },
        binding: Binding::Stored { default: LONG_MAX },
    },
    TopicConfigDef {
        name: "message.timestamp.difference.max.ms",
        config_type: ConfigType::Long,
        broker_synonym: "log.message.timestamp.difference.max.ms",
        read_only: false,
        doc: "Stored and reported only (deprecated in Kafka): the largest allowed gap between \
              a CreateTime timestamp and the broker clock.",
        rule: Rule::Long { min: 0 },
        binding: Binding::Stored { default: LONG_MAX },
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        config_type: ConfigType::String,
        broker_synonym: "log.message.timestamp.type",
        read_only: false,
        doc: "Which timestamp records keep: `CreateTime` (the producer's) or `LogAppendTime` \
              (the broker stamps the time of the append).",
        rule: Rule::OneOf(TIMESTAMP_TYPES),
        binding: Binding::Log(LogField::TimestampType),
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        config_type: ConfigType::Double,
        broker_synonym: "log.cleaner.min.cleanable.ratio",
        read_only: false,
        doc: "Stored and reported only: the share of uncompacted log that triggers compaction; \
              Sluice compacts on every housekeeping pass.",
        rule: Rule::Double { min: 0.0, max: 1.0 },
        binding: Binding::Stored { default: "0.5" },
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        config_type: ConfigType::Long,
        broker_synonym: "log.cleaner.min.compaction.lag.ms",
        read_only: false,
        doc: "On compacted topics, records younger than this are never compacted away, so \
              consumers can see every update made within this window.",
        rule: Rule::Long { min: 0 },
        binding: Binding::Log(LogField::MinCompactionLagMs),
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        config_type: ConfigType::Int,
        broker_synonym: "min.insync.replicas",
        read_only: false,
        doc: "Stored and reported only: a single-node broker always has exactly one in-sync \
              replica, so acks=-1 waits for the local fsync instead.",
        rule: Rule::Int { min: 1 },
        binding: Binding::Stored { default: "1" },
    },
    TopicConfigDef {
        name: "preallocate",
        config_type: ConfigType::Boolean,
        broker_synonym: "log.preallocate",
        read_only: false,
        doc: "Stored and reported only: Sluice does not preallocate segment files.",
        rule: Rule::Boolean,
        binding: Binding::Stored { default: "false" },
    },
    TopicConfigDef {
        name: "remote.storage.enable",
        config_type: ConfigType::Boolean,
        broker_synonym: "remote.log.storage.system.enable",
        read_only: false,
        doc: "Stored and reported only: tiered storage is not implemented.",
        rule: Rule::Boolean,
        binding: Binding::Stored { default: "false" },
    },
    TopicConfigDef {
        name: "retention.bytes",
        config_type: ConfigType::Long,
        broker_synonym: "log.retention.bytes",
        read_only: false,
        doc: "With the delete policy, the largest a partition may grow before its oldest \
              segments are deleted; -1 means no size limit.",
        rule: Rule::Long { min: i64::MIN },
        binding: Binding::Log(LogField::RetentionBytes),
    },
    TopicConfigDef {
        name: "retention.ms",
        config_type: ConfigType::Long,
        broker_synonym: "log.retention.ms",
        read_only: false,
        doc: "With the delete policy, how long a segment is kept after its newest record; \
              -1 keeps data forever.",
        rule: Rule::Long { min: -1 },
        binding: Binding::Log(LogField::RetentionMs),
    },
    TopicConfigDef {
        name: "segment.bytes",
        config_type: ConfigType::Int,
        broker_synonym: "log.segment.bytes",
        read_only: false,
        doc: "The size at which the active segment file is closed and a new one started; \
              retention and compaction work on whole closed segments.",
        rule: Rule::Int { min: 14 },
        binding: Binding::Log(LogField::SegmentBytes),
    },
    TopicConfigDef {
        name: "segment.index.bytes",
        config_type: ConfigType::Int,
        broker_synonym: "log.index.size.max.bytes",
        read_only: false,
        doc: "The largest an offset or time index file may grow; a full index rolls the segment.",
        rule: Rule::Int { min: 4 },
        binding: Binding::Log(LogField::SegmentIndexBytes),
    },
    TopicConfigDef {
        name: "segment.jitter.ms",
        config_type: ConfigType::Long,
        broker_synonym: "log.roll.jitter.ms",
        read_only: false,
        doc: "Stored and reported only: segments roll at exactly segment.ms.",
        rule: Rule::Long { min: 0 },
        binding: Binding::Stored { default: "0" },
    },
    TopicConfigDef {
        name: "segment.ms",
        config_type: ConfigType::Long,
        broker_synonym: "log.roll.ms",
        read_only: false,
        doc: "The age at which the active segment is rolled even if not full, so time-based \
              retention and compaction can reach recent data.",
        rule: Rule::Long { min: 1 },
        binding: Binding::Log(LogField::SegmentMs),
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        config_type: ConfigType::Boolean,
        broker_synonym: "unclean.leader.election.enable",
        read_only: false,
        doc: "Stored and reported only: a single-node broker has no other replica to elect.",
        rule: Rule::Boolean,
        binding: Binding::Stored { default: "false" },
    },
];

/// The definition of topic config `name`, if the broker supports it.
pub fn topic_config(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

impl TopicConfigDef {
    /// True for list configs, the only ones IncrementalAlterConfigs may APPEND to or SUBTRACT from.
    pub fn is_list(&self) -> bool {
        matches!(self.rule, Rule::ListOf(_))
    }

    /// The value this config has when the topic does not override it.
    pub fn default_value(&self, defaults: &LogConfig) -> String {
        match self.binding {
            Binding::Log(field) => field.render(defaults),
            Binding::Stored { default } => default.to_owned(),
        }
    }

    /// Checks `value` against this config's rule.
    pub fn validate(&self, value: &str) -> Result<(), MetaError> {
        self.parse(value).map(|_| ())
    }

    fn parse(&self, value: &str) -> Result<Parsed, MetaError> {
        self.rule
            .parse(value)
            .map_err(|reason| MetaError::InvalidConfig {
                key: self.name.to_owned(),
                value: value.to_owned(),
                reason,
            })
    }
}

impl Rule {
    /// Parses like Kafka's `ConfigDef`: surrounding whitespace is ignored; enumerations are
    /// case-sensitive, booleans are not.
    fn parse(self, raw: &str) -> Result<Parsed, String> {
        let value = raw.trim();
        match self {
            Rule::Long { min } => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| "expected a 64-bit whole number (LONG)".to_owned())?;
                at_least(n, min).map(|()| Parsed::Long(n))
            }
            Rule::Int { min } => {
                let n: i32 = value
                    .parse()
                    .map_err(|_| "expected a 32-bit whole number (INT)".to_owned())?;
                at_least(n, min).map(|()| Parsed::Long(i64::from(n)))
            }
            Rule::Double { min, max } => {
                let n: f64 = value
                    .parse()
                    .map_err(|_| "expected a number (DOUBLE)".to_owned())?;
                if (min..=max).contains(&n) {
                    Ok(Parsed::Double(n))
                } else {
                    Err(format!("must be between {min} and {max}"))
                }
            }
            Rule::Boolean => match value.to_ascii_lowercase().as_str() {
                "true" => Ok(Parsed::Bool(true)),
                "false" => Ok(Parsed::Bool(false)),
                _ => Err("expected true or false".to_owned()),
            },
            Rule::OneOf(allowed) => {
                if allowed.contains(&value) {
                    Ok(Parsed::Text(value.to_owned()))
                } else {
                    Err(format!("must be one of {}", allowed.join(", ")))
                }
            }
            Rule::Text if value.len() > MAX_TEXT_CONFIG => {
                Err(format!("must be at most {MAX_TEXT_CONFIG} bytes"))
            }
            Rule::Text => Ok(Parsed::Text(value.to_owned())),
            Rule::ListOf(allowed) => {
                let items = split_list(value);
                if items.is_empty() {
                    return Err(format!("must list at least one of {}", allowed.join(", ")));
                }
                match items.iter().find(|item| !allowed.contains(&item.as_str())) {
                    Some(bad) => Err(format!(
                        "'{bad}' is not allowed; list items must be among {}",
                        allowed.join(", ")
                    )),
                    None => Ok(Parsed::List(items)),
                }
            }
        }
    }
}

fn at_least<T: PartialOrd + std::fmt::Display>(n: T, min: T) -> Result<(), String> {
    if n < min {
        Err(format!("must be at least {min}"))
    } else {
        Ok(())
    }
}

/// Splits a comma-separated list value into trimmed, non-empty items.
fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

impl LogField {
    /// The Kafka spelling of this field's value.
    fn render(self, config: &LogConfig) -> String {
        match self {
            LogField::SegmentBytes => config.segment_bytes.to_string(),
            LogField::SegmentMs => config.segment_ms.to_string(),
            LogField::RetentionMs => config.retention_ms.to_string(),
            LogField::RetentionBytes => config.retention_bytes.to_string(),
            LogField::CleanupPolicy => match config.cleanup_policy {
                CleanupPolicy::Delete => "delete",
                CleanupPolicy::Compact => "compact",
                CleanupPolicy::CompactDelete => "compact,delete",
            }
            .to_owned(),
            LogField::DeleteRetentionMs => config.delete_retention_ms.to_string(),
            LogField::MinCompactionLagMs => config.min_compaction_lag_ms.to_string(),
            LogField::MaxMessageBytes => config.max_message_bytes.to_string(),
            LogField::IndexIntervalBytes => config.index_interval_bytes.to_string(),
            LogField::SegmentIndexBytes => config.segment_index_bytes.to_string(),
            LogField::TimestampType => match config.timestamp_type {
                TimestampType::CreateTime => "CreateTime",
                TimestampType::LogAppendTime => "LogAppendTime",
            }
            .to_owned(),
        }
    }

    /// Sets this field from a value that passed the field's rule.
    fn apply(self, config: &mut LogConfig, value: &Parsed) {
        // The rules guarantee the shapes and ranges matched here; a mismatch is a table bug and
        // leaves the default in place rather than panicking in the server.
        match (self, value) {
            (LogField::SegmentBytes, Parsed::Long(n)) => {
                config.segment_bytes = u64::try_from(*n).unwrap_or(config.segment_bytes)
            }
            (LogField::SegmentMs, Parsed::Long(n)) => config.segment_ms = *n,
            (LogField::RetentionMs, Parsed::Long(n)) => config.retention_ms = *n,
            (LogField::RetentionBytes, Parsed::Long(n)) => config.retention_bytes = *n,
            (LogField::DeleteRetentionMs, Parsed::Long(n)) => config.delete_retention_ms = *n,
            (LogField::MinCompactionLagMs, Parsed::Long(n)) => config.min_compaction_lag_ms = *n,
            (LogField::MaxMessageBytes, Parsed::Long(n)) => {
                config.max_message_bytes = u32::try_from(*n).unwrap_or(config.max_message_bytes)
            }
            (LogField::IndexIntervalBytes, Parsed::Long(n)) => {
                config.index_interval_bytes =
                    u32::try_from(*n).unwrap_or(config.index_interval_bytes)
            }
            (LogField::SegmentIndexBytes, Parsed::Long(n)) => {
                config.segment_index_bytes = u32::try_from(*n).unwrap_or(config.segment_index_bytes)
            }
            (LogField::CleanupPolicy, Parsed::List(items)) => {
                let compact = items.iter().any(|i| i == "compact");
                let delete = items.iter().any(|i| i == "delete");
                config.cleanup_policy = match (compact, delete) {
                    (true, true) => CleanupPolicy::CompactDelete,
                    (true, false) => CleanupPolicy::Compact,
                    _ => CleanupPolicy::Delete,
                };
            }
            (LogField::TimestampType, Parsed::Text(t)) => {
                config.timestamp_type = if t == "LogAppendTime" {
                    TimestampType::LogAppendTime
                } else {
                    TimestampType::CreateTime
                };
            }
            (field, value) => {
                tracing::error!(
                    ?field,
                    ?value,
                    "config table bug: value shape does not fit field"
                )
            }
        }
    }
}

/// The error for a config name the broker does not know.
fn unknown_config(key: &str, value: &str) -> MetaError {
    MetaError::InvalidConfig {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: "unknown topic config; DescribeConfigs on any topic lists the supported ones"
            .to_owned(),
    }
}

/// Checks a topic's full set of overrides: every key known, every value valid, and no two
/// values in conflict.
pub fn validate(overrides: &BTreeMap<String, String>) -> Result<(), MetaError> {
    log_config(&LogConfig::default(), overrides).map(|_| ())
}

/// The effective log config of a topic: `defaults` with `overrides` applied, after validating
/// the overrides as [`validate`] does.
pub fn log_config(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, MetaError> {
    let mut config = defaults.clone();
    for (key, value) in overrides {
        let def = topic_config(key).ok_or_else(|| unknown_config(key, value))?;
        let parsed = def.parse(value)?;
        if let Binding::Log(field) = def.binding {
            field.apply(&mut config, &parsed);
        }
    }
    check_compaction_lags(&config, overrides)?;
    Ok(config)
}

/// Kafka refuses a minimum compaction lag above the maximum one.
fn check_compaction_lags(
    config: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<(), MetaError> {
    let Some(max_raw) = overrides.get("max.compaction.lag.ms") else {
        return Ok(());
    };
    match max_raw.trim().parse::<i64>() {
        Ok(max) if config.min_compaction_lag_ms > max => Err(MetaError::InvalidConfig {
            key: "min.compaction.lag.ms".to_owned(),
            value: config.min_compaction_lag_ms.to_string(),
            reason: format!("must not exceed max.compaction.lag.ms ({max})"),
        }),
        _ => Ok(()),
    }
}

/// One step of an IncrementalAlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterOp {
    /// Set the config to this value.
    Set(String),
    /// Remove the override, reverting to the default.
    Delete,
    /// Add these comma-separated items to a list config (skipping ones already present).
    Append(String),
    /// Remove these comma-separated items from a list config.
    Subtract(String),
}

/// What an incremental alteration changes: a topic's overrides, or a dynamic broker layer
/// (named by broker-level config names), each over the broker defaults in force.
#[derive(Debug, Clone, Copy)]
pub enum AlterTarget<'a> {
    /// A topic's overrides.
    Topic(&'a BrokerDefaults),
    /// One layer of dynamic broker configs.
    Broker(&'a BrokerDefaults, BrokerScope),
}

/// Applies one incremental operation to a topic's overrides. The result still needs
/// [`validate`]; this only checks what the operation itself requires (a known key, and a list
/// config for APPEND/SUBTRACT).
pub fn apply_op(
    overrides: &mut BTreeMap<String, String>,
    target: AlterTarget<'_>,
    key: &str,
    op: AlterOp,
) -> Result<(), MetaError> {
    let lookup: fn(&str) -> Option<&'static TopicConfigDef> = match target {
        AlterTarget::Topic(_) => topic_config,
        AlterTarget::Broker(..) => super::broker_defaults::dynamic_config,
    };
    let list_def = |items: &str| -> Result<&'static TopicConfigDef, MetaError> {
        let def = lookup(key).ok_or_else(|| unknown_config(key, items))?;
        if def.is_list() {
            Ok(def)
        } else {
            Err(MetaError::InvalidConfig {
                key: key.to_owned(),
                value: items.to_owned(),
                reason: "APPEND and SUBTRACT only apply to list configs; use SET".to_owned(),
            })
        }
    };
    // A list not set at this level starts from the value in force below it.
    let current = |def: &TopicConfigDef, overrides: &BTreeMap<String, String>| {
        split_list(
            &overrides.get(key).cloned().unwrap_or_else(|| match target {
                AlterTarget::Topic(defaults) => defaults.value_of(def).0,
                AlterTarget::Broker(defaults, scope) => defaults.value_below(def, scope),
            }),
        )
    };
    match op {
        AlterOp::Set(value) => {
            overrides.insert(key.to_owned(), value);
        }
        AlterOp::Delete => {
            overrides.remove(key);
        }
        AlterOp::Append(items) => {
            let def = list_def(&items)?;
            let mut list = current(def, overrides);
            for item in split_list(&items) {
                if !list.contains(&item) {
                    list.push(item);
                }
            }
            overrides.insert(key.to_owned(), list.join(","));
        }
        AlterOp::Subtract(items) => {
            let def = list_def(&items)?;
            let remove = split_list(&items);
            let list: Vec<String> = current(def, overrides)
                .into_iter()
                .filter(|item| !remove.contains(item))
                .collect();
            overrides.insert(key.to_owned(), list.join(","));
        }
    }
    Ok(())
}

/// A lower-precedence value of a described config (DescribeConfigs `synonyms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synonym {
    /// The synonym's config name (e.g. `log.retention.ms` for `retention.ms`).
    pub name: &'static str,
    /// Its value at that level.
    pub value: String,
    /// The level.
    pub source: ConfigSource,
}

/// One described config entry, independent of the response version it is encoded into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    /// Config name.
    pub name: &'static str,
    /// Effective value.
    pub value: String,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// True when clients may not change it.
    pub read_only: bool,
    /// True for secrets whose values are hidden; none of Sluice's configs are.
    pub sensitive: bool,
    /// Values at lower-precedence levels, highest first (empty unless requested).
    pub synonyms: Vec<Synonym>,
    /// Kafka config type.
    pub config_type: ConfigType,
    /// What the config does.
    pub documentation: &'static str,
}

/// Describes every supported config of a topic with these overrides, in table order.
pub fn describe_topic(
    defaults: &BrokerDefaults,
    overrides: &BTreeMap<String, String>,
    include_synonyms: bool,
) -> Vec<DescribedConfig> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let (default_value, default_source) = defaults.value_of(def);
            let overridden = overrides.get(def.name);
            let mut synonyms = Vec::new();
            if include_synonyms {
                if let Some(value) = overridden {
                    synonyms.push(Synonym {
                        name: def.name,
                        value: value.clone(),
                        source: ConfigSource::TopicConfig,
                    });
                }
                synonyms.extend(defaults.layers(def));
            }
            let (value, source) = match overridden {
                Some(value) => (value.clone(), ConfigSource::TopicConfig),
                None => (default_value, default_source),
            };
            DescribedConfig {
                name: def.name,
                value,
                source,
                read_only: def.read_only,
                sensitive: false,
                synonyms,
                config_type: def.config_type,
                documentation: def.doc,
            }
        })
        .collect()
}

/// The broker-level synonyms of a topic config: the static broker value when it differs from
/// Kafka's, then Kafka's default.
/// A broker config with no topic-level counterpart.
#[derive(Debug)]
pub struct BrokerOnlyDef {
    name: &'static str,
    config_type: ConfigType,
    /// Kafka's default, used to tell a startup setting from a default.
    kafka_default: Option<&'static str>,
    value: fn(&BrokerConfig) -> String,
    doc: &'static str,
    /// How a dynamic value is checked; `None` for a read-only config.
    dynamic: Option<Rule>,
}

impl BrokerOnlyDef {
    /// Checks a dynamic value.
    pub fn validate(&self, value: &str) -> Result<(), MetaError> {
        let rule = self.dynamic.ok_or_else(|| MetaError::InvalidConfig {
            key: self.name.to_owned(),
            value: value.to_owned(),
            reason: "read-only: set at start-up".to_owned(),
        })?;
        rule.parse(value)
            .map(|_| ())
            .map_err(|reason| MetaError::InvalidConfig {
                key: self.name.to_owned(),
                value: value.to_owned(),
                reason,
            })
    }
}

/// The broker-only config `name`, if it may be changed dynamically.
pub fn broker_only_dynamic(name: &str) -> Option<&'static BrokerOnlyDef> {
    BROKER_ONLY_CONFIGS
        .iter()
        .find(|def| def.name == name && def.dynamic.is_some())
}

fn listener(config: &BrokerConfig) -> String {
    format!("PLAINTEXT://{}", config.listen)
}

fn advertised_listener(config: &BrokerConfig) -> String {
    match &config.advertised {
        Some((host, port)) => format!("PLAINTEXT://{host}:{port}"),
        None => listener(config),
    }
}

static BROKER_ONLY_CONFIGS: &[BrokerOnlyDef] = &[
    BrokerOnlyDef {
        name: "advertised.listeners",
        config_type: ConfigType::String,
        kafka_default: None,
        value: advertised_listener,
        doc: "The address clients are told to connect to.",
        dynamic: None,
    },
    BrokerOnlyDef {
        name: "auto.create.topics.enable",
        config_type: ConfigType::Boolean,
        kafka_default: Some("true"),
        value: |c| c.auto_create_topics.to_string(),
        doc: "Whether Metadata and Produce requests for an unknown topic create it.",
        dynamic: None,
    },
    BrokerOnlyDef {
        name: "broker.id",
        config_type: ConfigType::Int,
        kafka_default: None,
        value: |c| c.node_id.to_string(),
        doc: "This broker's id (same as node.id).",
        dynamic: None,
    },
    BrokerOnlyDef {
        name: "default.replication.factor",
        config_type: ConfigType::Int,
        kafka_default: Some("1"),
        value: |_| "1".to_owned(),
        doc: "Replication factor of new topics; always 1 on a single-node broker.",
        dynamic: None,
    },
    BrokerOnlyDef {
        name: "delete.topic.enable",
        config_type: ConfigType::Boolean,
        kafka_default: Some("true"),
        value: |_| "true".to_owned(),
        doc: "Whether DeleteTopics may delete topics.",
        dynamic: None,
    },
    BrokerOnlyDef {
        name: "follower.replication.throttled.rate",
        config_type: ConfigType::Long,
        kafka_default: Some(LONG_MAX),
        value: |_| LONG_MAX.to_owned(),
        doc: "Stored and reported only: a single node has no followers to throttle. \
              Rebalancing tools set it around reassignments, as on Kafka.",
        dynamic: Some(Rule::Long { min: 0 }),
    },
    BrokerOnlyDef {
        name: "leader.replication.throttled.rate",
        config_type: ConfigType::Long,
        kafka_default: Some(LONG_MAX),
        value: |_| LONG_MAX.to_owned(),
        doc: "Stored and reported only: a single node has no followers to serve. \
              Rebalancing tools set it around reassignments, as on Kafka.",
        dynamic: Some(Rule::Long { min: 0 }),
    },
    BrokerOnlyDef {
        name: "listeners",
        config_type: ConfigType::String,
        kafka_default: None,
        value: listener,
        doc: "The address the broker listens on for Kafka clients.",
        dynamic: None,
    },
    BrokerOnlyDef {
        name: "log.dirs",
        config_type: ConfigType::List,
        kafka_default: None,
        value: |c| {
            let dirs = if c.log_dirs.is_empty() {
                std::slice::from_ref(&c.data_dir)
            } else {
                c.log_dirs.as_slice()
            };
            let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            dirs.join(",")
        },
        doc: "The directories partition logs live in; new partitions go to the one with the \
              fewest.",
        dynamic: None,
    },
    BrokerOnlyDef {
        name: "node.id",
        config_type: ConfigType::Int,
        kafka_default: None,
        value: |c| c.node_id.to_string(),
        doc: "This broker's node id.",
        dynamic: None,
    },
    BrokerOnlyDef {
        name: "num.partitions",
        config_type: ConfigType::Int,
        kafka_default: Some("1"),
        value: |c| c.default_partitions.to_string(),
        doc: "Partitions of auto-created topics and of CreateTopics requests that ask for -1.",
        dynamic: None,
    },
    BrokerOnlyDef {
        name: "offsets.topic.replication.factor",
        config_type: ConfigType::Short,
        kafka_default: Some("1"),
        value: |_| "1".to_owned(),
        doc: "Replication factor of __consumer_offsets; always 1 on a single-node broker.",
        dynamic: None,
    },
    BrokerOnlyDef {
        name: "replica.alter.log.dirs.io.max.bytes.per.second",
        config_type: ConfigType::Long,
        kafka_default: Some("9223372036854775807"),
        value: |c| {
            c.replica_alter_log_dirs_io_max_bytes_per_second
                .unwrap_or(i64::MAX as u64)
                .to_string()
        },
        doc: "Bytes per second all partition moves between log directories may copy together.",
        dynamic: Some(Rule::Long { min: 1 }),
    },
    BrokerOnlyDef {
        name: "socket.request.max.bytes",
        config_type: ConfigType::Int,
        kafka_default: Some("104857600"),
        value: |c| c.socket_request_max_bytes.to_string(),
        doc: "The largest request the broker reads; a larger one closes the connection.",
        dynamic: None,
    },
];

/// Describes the broker-level configs. For this broker: the broker-only ones (read-only:
/// startup settings) plus the broker-level default of every topic config (dynamic), sorted by
/// name. For the cluster-wide default resource: the dynamic defaults set there.
pub fn describe_broker(
    config: &BrokerConfig,
    defaults: &BrokerDefaults,
    scope: BrokerScope,
    include_synonyms: bool,
) -> Vec<DescribedConfig> {
    if scope == BrokerScope::ClusterDefault {
        return defaults
            .dynamic()
            .cluster
            .iter()
            .filter_map(|(name, value)| {
                let (name, config_type, doc) = match super::broker_defaults::dynamic_config(name) {
                    Some(def) => (def.broker_synonym, def.config_type, def.doc),
                    None => {
                        let def = broker_only_dynamic(name)?;
                        (def.name, def.config_type, def.doc)
                    }
                };
                let synonym = Synonym {
                    name,
                    value: value.clone(),
                    source: ConfigSource::DynamicDefaultBrokerConfig,
                };
                Some(DescribedConfig {
                    name,
                    value: value.clone(),
                    source: ConfigSource::DynamicDefaultBrokerConfig,
                    read_only: false,
                    sensitive: false,
                    synonyms: if include_synonyms {
                        vec![synonym]
                    } else {
                        Vec::new()
                    },
                    config_type,
                    documentation: doc,
                })
            })
            .collect();
    }
    let source_of = |value: &str, kafka_default: Option<&str>| {
        if kafka_default == Some(value) {
            ConfigSource::DefaultConfig
        } else {
            ConfigSource::StaticBrokerConfig
        }
    };
    let with_synonym = |name: &'static str, value: String, source: ConfigSource| Synonym {
        name,
        value,
        source,
    };
    let mut described: Vec<DescribedConfig> = BROKER_ONLY_CONFIGS
        .iter()
        .map(|def| {
            let startup = (def.value)(config);
            let startup_source = source_of(&startup, def.kafka_default);
            // Dynamic layers first, highest precedence first; the first one is in force.
            let mut layers = defaults.broker_only_layers(def.name);
            layers.push(with_synonym(def.name, startup, startup_source));
            let (value, source) = (layers[0].value.clone(), layers[0].source);
            DescribedConfig {
                name: def.name,
                synonyms: if include_synonyms { layers } else { Vec::new() },
                value,
                source,
                read_only: def.dynamic.is_none(),
                sensitive: false,
                config_type: def.config_type,
                documentation: def.doc,
            }
        })
        .collect();
    described.extend(TOPIC_CONFIGS.iter().map(|def| {
        let (value, source) = defaults.value_of(def);
        DescribedConfig {
            name: def.broker_synonym,
            value,
            source,
            read_only: def.read_only,
            sensitive: false,
            synonyms: if include_synonyms {
                defaults.layers(def)
            } else {
                Vec::new()
            },
            config_type: def.config_type,
            documentation: def.doc,
        }
    }));
    described.sort_by(|a, b| a.name.cmp(b.name));
    // Some topic configs share their broker name with a broker-only entry; report each once.
    described.dedup_by(|a, b| a.name == b.name);
    described
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::test_support::string_map as map;

    fn invalid_key(result: Result<impl std::fmt::Debug, MetaError>) -> String {
        match result {
            Err(MetaError::InvalidConfig { key, .. }) => key,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn table_is_sorted_unique_and_covers_the_required_configs() {
        let names: Vec<&str> = TOPIC_CONFIGS.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for required in [
            "cleanup.policy",
            "retention.ms",
            "retention.bytes",
            "segment.bytes",
            "segment.ms",
            "delete.retention.ms",
            "min.compaction.lag.ms",
            "max.message.bytes",
            "message.timestamp.type",
            "index.interval.bytes",
            "segment.index.bytes",
            "min.insync.replicas",
            "compression.type",
            "unclean.leader.election.enable",
            "message.timestamp.difference.max.ms",
            "message.timestamp.before.max.ms",
            "message.timestamp.after.max.ms",
            "max.compaction.lag.ms",
            "min.cleanable.dirty.ratio",
            "file.delete.delay.ms",
            "flush.messages",
            "flush.ms",
            "preallocate",
            "message.downconversion.enable",
        ] {
            assert!(topic_config(required).is_some(), "{required} missing");
        }
    }

    #[test]
    fn every_default_passes_its_own_validator() {
        for def in TOPIC_CONFIGS {
            let value = def.default_value(&LogConfig::default());
            assert!(def.validate(&value).is_ok(), "{}={value}", def.name);
        }
    }

    #[test]
    fn defaults_render_the_log_defaults() {
        let defaults = BrokerDefaults::startup(LogConfig::default());
        let described = describe_topic(&defaults, &BTreeMap::new(), false);
        let value = |name: &str| {
            described
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.value.clone())
        };
        assert_eq!(value("retention.ms").as_deref(), Some("604800000"));
        assert_eq!(value("segment.bytes").as_deref(), Some("1073741824"));
        assert_eq!(value("cleanup.policy").as_deref(), Some("delete"));
        assert_eq!(value("max.message.bytes").as_deref(), Some("1048588"));
        assert_eq!(value("compression.type").as_deref(), Some("producer"));
        assert!(described
            .iter()
            .all(|c| c.source == ConfigSource::DefaultConfig));
    }

    #[test]
    fn overrides_map_onto_log_config() {
        let overrides = map(&[
            ("cleanup.policy", " delete , compact "),
            ("retention.ms", "-1"),
            ("retention.bytes", "1048576"),
            ("segment.bytes", "4096"),
            ("segment.ms", "60000"),
            ("delete.retention.ms", "0"),
            ("min.compaction.lag.ms", "10"),
            ("max.message.bytes", "2048"),
            ("message.timestamp.type", "LogAppendTime"),
            ("index.interval.bytes", "128"),
            ("segment.index.bytes", "1024"),
            ("compression.type", "zstd"),
            ("preallocate", "TRUE"),
        ]);
        let config = log_config(&LogConfig::default(), &overrides).unwrap();
        assert_eq!(config.cleanup_policy, CleanupPolicy::CompactDelete);
        assert_eq!(config.retention_ms, -1);
        assert_eq!(config.retention_bytes, 1_048_576);
        assert_eq!(config.segment_bytes, 4096);
        assert_eq!(config.segment_ms, 60_000);
        assert_eq!(config.delete_retention_ms, 0);
        assert_eq!(config.min_compaction_lag_ms, 10);
        assert_eq!(config.max_message_bytes, 2048);
        assert_eq!(config.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(config.index_interval_bytes, 128);
        assert_eq!(config.segment_index_bytes, 1024);
        let compact = log_config(
            &LogConfig::default(),
            &map(&[("cleanup.policy", "compact")]),
        );
        assert_eq!(compact.unwrap().cleanup_policy, CleanupPolicy::Compact);
    }

    #[test]
    fn broker_defaults_are_the_base_of_overrides() {
        let defaults = LogConfig {
            retention_ms: 1000,
            ..LogConfig::default()
        };
        let config = log_config(&defaults, &map(&[("segment.ms", "5")])).unwrap();
        assert_eq!((config.retention_ms, config.segment_ms), (1000, 5));
    }

    #[test]
    fn bad_values_are_refused_with_the_offending_key() {
        for (key, value) in [
            ("retention.ms", "-2"),
            ("retention.ms", "soon"),
            ("segment.bytes", "13"),
            ("segment.bytes", "4294967296"),
            ("segment.ms", "0"),
            ("max.message.bytes", "-1"),
            ("cleanup.policy", "compact,archive"),
            ("cleanup.policy", " , "),
            ("message.timestamp.type", "createtime"),
            ("compression.type", "brotli"),
            ("min.insync.replicas", "0"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("min.cleanable.dirty.ratio", "NaN"),
            ("preallocate", "yes"),
            ("no.such.config", "1"),
        ] {
            assert_eq!(
                invalid_key(validate(&map(&[(key, value)]))),
                key,
                "{key}={value}"
            );
        }
    }

    #[test]
    fn min_compaction_lag_may_not_exceed_max() {
        let overrides = map(&[
            ("min.compaction.lag.ms", "100"),
            ("max.compaction.lag.ms", "10"),
        ]);
        assert_eq!(invalid_key(validate(&overrides)), "min.compaction.lag.ms");
        let ok = map(&[
            ("min.compaction.lag.ms", "10"),
            ("max.compaction.lag.ms", "10"),
        ]);
        assert!(validate(&ok).is_ok());
    }

    #[test]
    fn describe_reports_overrides_with_synonyms() {
        let defaults = BrokerDefaults::startup(LogConfig {
            segment_bytes: 1 << 20,
            ..LogConfig::default()
        });
        let overrides = map(&[("retention.ms", "5000")]);
        let described = describe_topic(&defaults, &overrides, true);
        let get = |name: &str| described.iter().find(|c| c.name == name).cloned().unwrap();

        let retention = get("retention.ms");
        assert_eq!(retention.value, "5000");
        assert_eq!(retention.source, ConfigSource::TopicConfig);
        let synonyms: Vec<_> = retention
            .synonyms
            .iter()
            .map(|s| (s.name, s.source))
            .collect();
        assert_eq!(
            synonyms,
            vec![
                ("retention.ms", ConfigSource::TopicConfig),
                ("log.retention.ms", ConfigSource::DefaultConfig),
            ]
        );

        let segment = get("segment.bytes");
        assert_eq!(segment.value, "1048576");
        assert_eq!(segment.source, ConfigSource::StaticBrokerConfig);
        assert_eq!(segment.synonyms.len(), 2);
        assert_eq!(segment.synonyms[1].value, "1073741824");

        assert!(describe_topic(&defaults, &overrides, false)
            .iter()
            .all(|c| c.synonyms.is_empty()));
    }

    #[test]
    fn append_and_subtract_edit_list_configs() {
        let defaults = BrokerDefaults::startup(LogConfig::default());
        let defaults = AlterTarget::Topic(&defaults);
        let mut overrides = BTreeMap::new();
        apply_op(
            &mut overrides,
            defaults,
            "cleanup.policy",
            AlterOp::Append("compact".into()),
        )
        .unwrap();
        assert_eq!(overrides["cleanup.policy"], "delete,compact");
        apply_op(
            &mut overrides,
            defaults,
            "cleanup.policy",
            AlterOp::Append("delete".into()),
        )
        .unwrap();
        assert_eq!(overrides["cleanup.policy"], "delete,compact");
        apply_op(
            &mut overrides,
            defaults,
            "cleanup.policy",
            AlterOp::Subtract("delete".into()),
        )
        .unwrap();
        assert_eq!(overrides["cleanup.policy"], "compact");
        apply_op(
            &mut overrides,
            defaults,
            "cleanup.policy",
            AlterOp::Subtract("compact".into()),
        )
        .unwrap();
        // An emptied list is not a valid cleanup.policy.
        assert_eq!(invalid_key(validate(&overrides)), "cleanup.policy");
        apply_op(&mut overrides, defaults, "cleanup.policy", AlterOp::Delete).unwrap();
        assert!(overrides.is_empty());
        let not_list = apply_op(
            &mut overrides,
            defaults,
            "retention.ms",
            AlterOp::Append("1".into()),
        );
        assert_eq!(invalid_key(not_list), "retention.ms");
    }

    #[test]
    fn broker_view_uses_broker_names_and_only_defaults_are_dynamic() {
        let config = BrokerConfig {
            default_partitions: 3,
            ..BrokerConfig::default()
        };
        let defaults = BrokerDefaults::startup(config.log_defaults.clone());
        let described = describe_broker(&config, &defaults, BrokerScope::ThisBroker, true);
        let get = |name: &str| described.iter().find(|c| c.name == name).cloned();
        assert!(get("num.partitions").unwrap().read_only);
        assert!(!get("log.retention.ms").unwrap().read_only);
        assert!(describe_broker(&config, &defaults, BrokerScope::ClusterDefault, true).is_empty());
        let partitions = get("num.partitions").unwrap();
        assert_eq!(
            (partitions.value.as_str(), partitions.source),
            ("3", ConfigSource::StaticBrokerConfig)
        );
        let retention = get("log.retention.ms").unwrap();
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("604800000", ConfigSource::DefaultConfig)
        );
        assert_eq!(get("socket.request.max.bytes").unwrap().value, "104857600");
        let mut names: Vec<&str> = described.iter().map(|c| c.name).collect();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "duplicate broker config names");
        assert!(get("retention.ms").is_none());
    }

    proptest! {
        #[test]
        fn validators_never_panic(value in any::<String>(), index in 0..TOPIC_CONFIGS.len()) {
            let def = &TOPIC_CONFIGS[index];
            let overrides = BTreeMap::from([(def.name.to_owned(), value.clone())]);
            let accepted = def.validate(&value).is_ok();
            // The whole-map path agrees with the single validator.
            prop_assert_eq!(log_config(&LogConfig::default(), &overrides).is_ok(), accepted);
        }

        #[test]
        fn numeric_validators_match_their_bounds(n in any::<i64>()) {
            let accepted = topic_config("retention.ms").map(|d| d.validate(&n.to_string()).is_ok());
            prop_assert_eq!(accepted, Some(n >= -1));
            let accepted = topic_config("segment.bytes").map(|d| d.validate(&n.to_string()).is_ok());
            prop_assert_eq!(accepted, Some((14..=i64::from(i32::MAX)).contains(&n)));
        }

        #[test]
        fn incremental_ops_never_panic(key in "[a-z.]{0,30}", value in any::<String>(), op in 0u8..4) {
            let op = match op {
                0 => AlterOp::Set(value),
                1 => AlterOp::Delete,
                2 => AlterOp::Append(value),
                _ => AlterOp::Subtract(value),
            };
            let mut overrides = BTreeMap::new();
            let defaults = BrokerDefaults::startup(LogConfig::default());
            let _ = apply_op(&mut overrides, AlterTarget::Topic(&defaults), &key, op);
            let _ = validate(&overrides);
        }
    }
}
