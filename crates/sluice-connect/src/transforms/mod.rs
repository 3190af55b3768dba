//! Single message transforms, configured as Kafka Connect configures them
//! (`transforms=a,b`, `transforms.a.type=…`, `transforms.a.predicate=…`, `predicates=…`), so
//! connector configs written for Kafka Connect and Debezium carry over:
//!
//! - `org.apache.kafka.connect.transforms.RegexRouter`: route to a topic derived from the
//!   topic name (e.g. one topic per table → one per schema);
//! - `io.debezium.transforms.ExtractNewRecordState`: unwrap the Debezium envelope into the
//!   row's state;
//! - `org.apache.kafka.connect.transforms.MaskField$Key` / `$Value`: blank out fields;
//! - `org.apache.kafka.connect.transforms.InsertHeader`: add a literal header;
//!
//! and the predicates `TopicNameMatches`, `HasHeaderKey` and `RecordIsTombstone`.

mod header;
mod mask;
mod predicate;
mod route;
mod settings;
mod unwrap;

use std::collections::BTreeMap;

use crate::plugin::{ConfigDef, ConfigType, Problems};
use crate::runtime::SourceRecord;

use predicate::Predicate;
use settings::Settings;

/// One transform.
trait Transform: Send + Sync {
    /// The record after the transform; `None` drops it.
    fn apply(&mut self, record: SourceRecord) -> Result<Option<SourceRecord>, String>;
}

/// A configured transform in the chain.
struct Step {
    alias: String,
    class: String,
    transform: Box<dyn Transform>,
    /// Applied only to records the predicate matches (or, negated, does not match).
    predicate: Option<(Predicate, bool)>,
}

/// Why a transform rejected a record.
#[derive(Debug, thiserror::Error)]
#[error("transform {alias} ({class}) failed: {message}")]
pub(crate) struct TransformError {
    pub(crate) alias: String,
    pub(crate) class: String,
    pub(crate) message: String,
}

/// A connector's transform chain, applied in order.
#[derive(Default)]
pub(crate) struct Transforms {
    steps: Vec<Step>,
}

impl std::fmt::Debug for Transforms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.steps.iter().map(|s| &s.alias))
            .finish()
    }
}

/// The settings every connector accepts for transforms (the per-alias ones are checked when
/// parsed).
pub(crate) fn definitions() -> Vec<ConfigDef> {
    vec![
        ConfigDef::new(
            "transforms",
            ConfigType::List,
            Some(""),
            "Aliases of the transforms to apply, in order",
        ),
        ConfigDef::new(
            "predicates",
            ConfigType::List,
            Some(""),
            "Aliases of the predicates transforms may refer to",
        ),
    ]
}

fn aliases(props: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    props
        .get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl Transforms {
    /// Reads the chain from `props`, collecting every problem.
    pub(crate) fn parse(props: &BTreeMap<String, String>, problems: &mut Problems) -> Self {
        let mut predicates = BTreeMap::new();
        for alias in aliases(props, "predicates") {
            let settings = Settings::new(props, format!("predicates.{alias}."));
            if let Some(p) = Predicate::parse(&settings, problems) {
                predicates.insert(alias, p);
            }
        }
        let mut steps = Vec::new();
        for alias in aliases(props, "transforms") {
            let settings = Settings::new(props, format!("transforms.{alias}."));
            let Some(class) = settings.get("type") else {
                problems.add(
                    &settings.key("type"),
                    "Missing required configuration: the transform's class".into(),
                );
                continue;
            };
            let transform: Option<Box<dyn Transform>> = match class.as_str() {
                route::CLASS => route::RegexRouter::parse(&settings, problems)
                    .map(|t| Box::new(t) as Box<dyn Transform>),
                unwrap::CLASS => unwrap::ExtractNewRecordState::parse(&settings, problems)
                    .map(|t| Box::new(t) as Box<dyn Transform>),
                mask::KEY_CLASS | mask::VALUE_CLASS => {
                    mask::MaskField::parse(&settings, class == mask::KEY_CLASS, problems)
                        .map(|t| Box::new(t) as Box<dyn Transform>)
                }
                header::CLASS => header::InsertHeader::parse(&settings, problems)
                    .map(|t| Box::new(t) as Box<dyn Transform>),
                other => {
                    problems.add(
                        &settings.key("type"),
                        format!(
                            "{other} is not a transform this worker has; it has {}, {}, {}, {} and {}",
                            route::CLASS,
                            unwrap::CLASS,
                            mask::KEY_CLASS,
                            mask::VALUE_CLASS,
                            header::CLASS
                        ),
                    );
                    None
                }
            };
            let predicate = match settings.get("predicate") {
                None => None,
                Some(name) => match predicates.get(&name) {
                    Some(p) => {
                        let negate = settings.boolean("negate", false, problems);
                        Some((Predicate::clone(p), negate))
                    }
                    None => {
                        problems.add(
                            &settings.key("predicate"),
                            format!("{name} is not one of the predicates listed in \"predicates\""),
                        );
                        None
                    }
                },
            };
            if let Some(transform) = transform {
                steps.push(Step {
                    alias,
                    class,
                    transform,
                    predicate,
                });
            }
        }
        Self { steps }
    }

    /// Whether there is nothing to apply.
    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs `record` through the chain; `None` when a transform dropped it.
    pub(crate) fn apply(
        &mut self,
        mut record: SourceRecord,
    ) -> Result<Option<SourceRecord>, TransformError> {
        for step in &mut self.steps {
            if let Some((predicate, negate)) = &step.predicate {
                if predicate.test(&record) == *negate {
                    continue;
                }
            }
            match step.transform.apply(record) {
                Ok(Some(r)) => record = r,
                Ok(None) => return Ok(None),
                Err(message) => {
                    return Err(TransformError {
                        alias: step.alias.clone(),
                        class: step.class.clone(),
                        message,
                    })
                }
            }
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
pub(crate) mod tests;
