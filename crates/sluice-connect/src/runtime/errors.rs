//! What a task does with a record that cannot be transformed or converted, as Kafka
//! Connect's `errors.*` settings (KIP-298) describe: fail the task (`errors.tolerance=none`,
//! the default) or skip the record (`all`), logging it and copying it to a dead-letter topic
//! with headers saying where and why it failed.
//!
//! Kafka Connect writes dead letters for sink connectors only; a source record that failed
//! has no Kafka bytes yet, so Sluice writes it in schemaless JSON, which a person can read.

use std::collections::BTreeMap;

use crate::plugin::{ConfigDef, ConfigType, Problems};

/// Where a record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Transformation,
    KeyConverter,
    ValueConverter,
}

impl Stage {
    /// Connect's name for the stage (`__connect.errors.stage`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stage::Transformation => "TRANSFORMATION",
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
        }
    }
}

/// Where skipped records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeadLetter {
    pub(crate) topic: String,
    pub(crate) replication_factor: Option<i16>,
    /// Whether the `__connect.errors.*` headers are added.
    pub(crate) context_headers: bool,
}

/// The `errors.*` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErrorPolicy {
    /// `errors.tolerance=all`.
    pub(crate) tolerate: bool,
    /// `errors.log.enable`.
    pub(crate) log: bool,
    /// `errors.log.include.messages`.
    pub(crate) log_messages: bool,
    pub(crate) dead_letter: Option<DeadLetter>,
}

const TOLERANCE: &str = "errors.tolerance";
const DLQ_TOPIC: &str = "errors.deadletterqueue.topic.name";
const DLQ_REPLICATION: &str = "errors.deadletterqueue.topic.replication.factor";
const DLQ_HEADERS: &str = "errors.deadletterqueue.context.headers.enable";
const LOG: &str = "errors.log.enable";
const LOG_MESSAGES: &str = "errors.log.include.messages";

impl ErrorPolicy {
    /// The settings, for validation.
    pub(crate) fn definitions() -> Vec<ConfigDef> {
        use ConfigType::*;
        vec![
            ConfigDef::new(TOLERANCE, String, Some("none"), "none: a record that cannot be transformed or converted fails the task; all: it is skipped"),
            ConfigDef::new(DLQ_TOPIC, String, Some(""), "Topic skipped records are written to (empty: none)"),
            ConfigDef::new(DLQ_REPLICATION, Int, Some("-1"), "Replication factor of the dead-letter topic when it is created (-1: the broker's default)"),
            ConfigDef::new(DLQ_HEADERS, Boolean, Some("false"), "Add __connect.errors.* headers saying where and why a record failed"),
            ConfigDef::new(LOG, Boolean, Some("false"), "Log each skipped record's failure"),
            ConfigDef::new(LOG_MESSAGES, Boolean, Some("false"), "Include the record in that log line"),
        ]
    }

    /// Reads the settings, collecting problems.
    pub(crate) fn parse(props: &BTreeMap<String, String>, problems: &mut Problems) -> Self {
        let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let boolean = |k: &str, problems: &mut Problems| match get(k) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                problems.add(k, format!("{other:?} is not true or false"));
                false
            }
        };
        let tolerate = match get(TOLERANCE) {
            None | Some("none") => false,
            Some("all") => true,
            Some(other) => {
                problems.add(TOLERANCE, format!("{other:?} is not none or all"));
                false
            }
        };
        let replication_factor = match get(DLQ_REPLICATION).map(str::parse::<i16>) {
            None => None,
            Some(Ok(-1)) => None,
            Some(Ok(n)) if n > 0 => Some(n),
            Some(_) => {
                problems.add(
                    DLQ_REPLICATION,
                    "not a replication factor (-1 or more than 0)".into(),
                );
                None
            }
        };
        let context_headers = boolean(DLQ_HEADERS, problems);
        let dead_letter = get(DLQ_TOPIC).map(|topic| DeadLetter {
            topic: topic.to_owned(),
            replication_factor,
            context_headers,
        });
        if dead_letter.is_some() && !tolerate {
            problems.add(
                DLQ_TOPIC,
                format!("a dead-letter topic needs {TOLERANCE}=all: with none the first failing record stops the task"),
            );
        }
        Self {
            tolerate,
            log: boolean(LOG, problems),
            log_messages: boolean(LOG_MESSAGES, problems),
            dead_letter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> (ErrorPolicy, Problems) {
        let props = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut problems = Problems::default();
        (ErrorPolicy::parse(&props, &mut problems), problems)
    }

    #[test]
    fn defaults_fail_the_task() {
        let (policy, problems) = parse(&[]);
        assert!(problems.is_empty());
        assert_eq!(policy, ErrorPolicy::default());
    }

    #[test]
    fn dead_letter_settings_are_read_and_checked() {
        let (policy, problems) = parse(&[
            (TOLERANCE, "all"),
            (DLQ_TOPIC, "dlq"),
            (DLQ_REPLICATION, "1"),
            (DLQ_HEADERS, "true"),
        ]);
        assert!(problems.is_empty(), "{}", problems.summary());
        assert!(policy.tolerate);
        assert_eq!(
            policy.dead_letter,
            Some(DeadLetter {
                topic: "dlq".into(),
                replication_factor: Some(1),
                context_headers: true
            })
        );
        let (_, problems) = parse(&[(DLQ_TOPIC, "dlq"), (TOLERANCE, "some")]);
        let keys: Vec<_> = problems.keys().collect();
        assert_eq!(keys, [DLQ_TOPIC, TOLERANCE]);
    }
}
