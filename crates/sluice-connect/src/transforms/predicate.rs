//! Predicates that decide whether a transform applies to a record, as Kafka Connect's
//! `org.apache.kafka.connect.transforms.predicates` package defines them.

use regex::Regex;

use super::settings::Settings;
use crate::plugin::Problems;
use crate::runtime::SourceRecord;

const TOPIC_NAME_MATCHES: &str = "org.apache.kafka.connect.transforms.predicates.TopicNameMatches";
const HAS_HEADER_KEY: &str = "org.apache.kafka.connect.transforms.predicates.HasHeaderKey";
const RECORD_IS_TOMBSTONE: &str =
    "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone";

/// A configured predicate.
#[derive(Debug, Clone)]
pub(super) enum Predicate {
    /// The whole topic name matches.
    TopicNameMatches(Regex),
    /// A header with this name is present.
    HasHeaderKey(String),
    /// The value is null.
    RecordIsTombstone,
}

impl Predicate {
    pub(super) fn parse(settings: &Settings<'_>, problems: &mut Problems) -> Option<Self> {
        let class = settings.required("type", problems)?;
        match class.as_str() {
            TOPIC_NAME_MATCHES => {
                let pattern = settings.required("pattern", problems)?;
                match Regex::new(&format!("^(?:{pattern})$")) {
                    Ok(r) => Some(Predicate::TopicNameMatches(r)),
                    Err(e) => {
                        problems.add(
                            &settings.key("pattern"),
                            format!("not a valid pattern: {e}"),
                        );
                        None
                    }
                }
            }
            HAS_HEADER_KEY => Some(Predicate::HasHeaderKey(
                settings.required("name", problems)?,
            )),
            RECORD_IS_TOMBSTONE => Some(Predicate::RecordIsTombstone),
            other => {
                problems.add(
                    &settings.key("type"),
                    format!(
                        "{other} is not a predicate this worker has; it has {TOPIC_NAME_MATCHES}, {HAS_HEADER_KEY} and {RECORD_IS_TOMBSTONE}"
                    ),
                );
                None
            }
        }
    }

    pub(super) fn test(&self, record: &SourceRecord) -> bool {
        match self {
            Predicate::TopicNameMatches(r) => r.is_match(&record.topic),
            Predicate::HasHeaderKey(name) => record.headers.iter().any(|(k, _)| k == name),
            Predicate::RecordIsTombstone => record.value.is_none(),
        }
    }
}
