//! The settings every connector shares for turning its records into Kafka records:
//! converters, transforms and the error policy.

use std::collections::BTreeMap;

use super::errors::ErrorPolicy;
use crate::convert::{ConverterConfig, Converters};
use crate::plugin::{ConfigDef, ConfigType, Problems, TaskError};
use crate::transforms::{self, Transforms};

/// What turns a connector's records into Kafka records.
pub(crate) struct Pipeline {
    pub(crate) transforms: Transforms,
    pub(crate) converters: Converters,
    pub(crate) errors: ErrorPolicy,
}

/// The parsed shared settings (transforms are built per task: they keep state).
#[derive(Debug, Clone)]
pub(crate) struct PipelineConfig {
    pub(crate) key_converter: ConverterConfig,
    pub(crate) value_converter: ConverterConfig,
    pub(crate) errors: ErrorPolicy,
}

impl PipelineConfig {
    /// The shared settings, for validation.
    pub(crate) fn definitions() -> Vec<ConfigDef> {
        use ConfigType::*;
        let d = ConfigDef::new;
        let mut defs = vec![
            d(
                "key.converter",
                String,
                Some("org.apache.kafka.connect.json.JsonConverter"),
                "Key converter: JsonConverter or io.confluent.connect.avro.AvroConverter",
            ),
            d(
                "value.converter",
                String,
                Some("org.apache.kafka.connect.json.JsonConverter"),
                "Value converter: JsonConverter or io.confluent.connect.avro.AvroConverter",
            ),
            d(
                "key.converter.schemas.enable",
                Boolean,
                Some("true"),
                "Schema envelope in JSON keys",
            ),
            d(
                "value.converter.schemas.enable",
                Boolean,
                Some("true"),
                "Schema envelope in JSON values",
            ),
            d(
                "key.converter.schema.registry.url",
                String,
                None,
                "Registry of the Avro key converter",
            ),
            d(
                "value.converter.schema.registry.url",
                String,
                None,
                "Registry of the Avro value converter",
            ),
        ];
        defs.extend(transforms::definitions());
        defs.extend(ErrorPolicy::definitions());
        defs
    }

    /// Reads the shared settings, collecting every problem (the transforms' too).
    pub(crate) fn parse(props: &BTreeMap<String, String>, problems: &mut Problems) -> Self {
        let _ = Transforms::parse(props, problems);
        Self {
            key_converter: ConverterConfig::parse(props, "key", problems),
            value_converter: ConverterConfig::parse(props, "value", problems),
            errors: ErrorPolicy::parse(props, problems),
        }
    }

    /// A task's pipeline.
    pub(crate) fn build(&self, props: &BTreeMap<String, String>) -> Result<Pipeline, TaskError> {
        let mut problems = Problems::default();
        let transforms = Transforms::parse(props, &mut problems);
        if !problems.is_empty() {
            return Err(TaskError::Fatal(problems.summary()));
        }
        Ok(Pipeline {
            transforms,
            converters: Converters::new(&self.key_converter, &self.value_converter)?,
            errors: self.errors.clone(),
        })
    }
}
