//! The pipeline file (`sluice stream run pipeline.yml`): a Kafka source, transforms,
//! destinations and a delivery policy.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::transform::TransformConfig;
use crate::error::{Error, Result};
use crate::fanout::Policy;
use crate::preset::{base_options, Preset};
use crate::sinks::kafka::KafkaConfig;
use crate::sinks::kinesis::KinesisConfig;
use crate::sinks::sns::SnsConfig;
use crate::sinks::sqs::SqsConfig;
use crate::sinks::SinkOptions;

/// Pipeline files larger than this are refused (a pipeline is a page of YAML).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A whole pipeline.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// A name for logs and metrics.
    #[serde(default)]
    pub name: Option<String>,
    /// Where events come from.
    pub source: SourceConfig,
    /// Applied in order to every event.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// Where events go.
    pub destinations: Vec<DestinationConfig>,
    /// How the destinations' answers combine.
    #[serde(default)]
    pub delivery: DeliveryConfig,
}

/// The source (`source:`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A Kafka consumer group.
    pub kafka: KafkaSourceConfig,
}

/// A Kafka consumer group reading topics.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Topics to read.
    pub topics: Vec<String>,
    /// librdkafka consumer properties; `bootstrap.servers` and `group.id` are required.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// One destination (`destinations: - name: …`), exactly one of `kafka`, `sqs`, `sns`,
/// `kinesis`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Unique name (routes, metrics and dead-letter headers use it).
    pub name: String,
    /// Tuning preset, applied before `batch`.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// Driver settings overriding the preset's.
    #[serde(default)]
    pub batch: BatchConfig,
    /// A Kafka topic.
    #[serde(default)]
    pub kafka: Option<KafkaConfig>,
    /// An SQS queue.
    #[serde(default)]
    pub sqs: Option<SqsConfig>,
    /// An SNS topic.
    #[serde(default)]
    pub sns: Option<SnsConfig>,
    /// A Kinesis data stream.
    #[serde(default)]
    pub kinesis: Option<KinesisConfig>,
}

/// The destination kinds, once the file is checked.
#[derive(Debug, Clone, Copy)]
pub enum DestinationKind<'a> {
    /// Kafka.
    Kafka(&'a KafkaConfig),
    /// SQS.
    Sqs(&'a SqsConfig),
    /// SNS.
    Sns(&'a SnsConfig),
    /// Kinesis.
    Kinesis(&'a KinesisConfig),
}

impl DestinationKind<'_> {
    /// `kafka`, `sqs`, `sns` or `kinesis`.
    pub fn name(&self) -> &'static str {
        match self {
            DestinationKind::Kafka(_) => "kafka",
            DestinationKind::Sqs(_) => "sqs",
            DestinationKind::Sns(_) => "sns",
            DestinationKind::Kinesis(_) => "kinesis",
        }
    }
}

impl DestinationConfig {
    /// Its one kind.
    pub fn kind(&self) -> Result<DestinationKind<'_>> {
        let mut kinds = Vec::new();
        if let Some(k) = &self.kafka {
            kinds.push(DestinationKind::Kafka(k));
        }
        if let Some(s) = &self.sqs {
            kinds.push(DestinationKind::Sqs(s));
        }
        if let Some(s) = &self.sns {
            kinds.push(DestinationKind::Sns(s));
        }
        if let Some(k) = &self.kinesis {
            kinds.push(DestinationKind::Kinesis(k));
        }
        match kinds.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::Config(format!(
                "destination {:?} names no kind: add one of kafka, sqs, sns, kinesis",
                self.name
            ))),
            _ => Err(Error::Config(format!(
                "destination {:?} names {} kinds; give exactly one",
                self.name,
                kinds.len()
            ))),
        }
    }

    /// The driver settings: the kind's defaults, then the preset's, then `batch`.
    pub fn sink_options(&self) -> Result<SinkOptions> {
        let kind = self.kind()?.name();
        let mut o = match self.preset {
            Some(p) => p.sink_options(kind),
            None => base_options(kind),
        };
        let b = &self.batch;
        if let Some(ms) = b.linger_ms {
            o.linger = Duration::from_millis(ms);
        }
        if let Some(n) = b.max_records {
            o.max_records = Some(n);
        }
        if let Some(n) = b.max_in_flight {
            o.max_in_flight = n.max(1);
        }
        if let Some(n) = b.buffer_bytes {
            o.buffer_bytes = n.max(1);
        }
        if let Some(n) = b.max_attempts {
            o.max_attempts = n.max(1);
        }
        if let Some(ms) = b.delivery_timeout_ms {
            o.delivery_timeout = Duration::from_millis(ms);
        }
        if let Some(ordered) = b.ordered {
            o.ordered = ordered;
        }
        Ok(o)
    }

    /// Kafka properties with the preset's applied first.
    pub fn kafka_properties(&self) -> BTreeMap<String, String> {
        let mut props: BTreeMap<String, String> = self
            .preset
            .map(|p| {
                p.kafka_properties()
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(k) = &self.kafka {
            props.extend(k.properties.clone());
        }
        props
    }
}

/// Driver settings of one destination (`batch:`); unset fields keep the preset's.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Milliseconds a batch waits for more events.
    pub linger_ms: Option<u64>,
    /// Records per request (at most the service's limit).
    pub max_records: Option<usize>,
    /// Requests in flight.
    pub max_in_flight: Option<usize>,
    /// Bytes buffered before senders wait.
    pub buffer_bytes: Option<usize>,
    /// Attempts per event.
    pub max_attempts: Option<u32>,
    /// Milliseconds after which an event is no longer retried.
    pub delivery_timeout_ms: Option<u64>,
    /// Keep order across retries.
    pub ordered: Option<bool>,
}

/// How the destinations' answers combine (`delivery:`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// `all` (default), `best_effort` or `fallback`.
    #[serde(default)]
    pub policy: Policy,
    /// Where failed events go, with the error as headers.
    #[serde(default)]
    pub dead_letter: Option<Box<DestinationConfig>>,
    /// Events read from the source and not yet answered by every destination [default
    /// 10,000]; offsets are committed only below the oldest of them.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// Kafka to Kafka only: write each batch of results and its source offsets in one Kafka
    /// transaction, so consumers reading committed data see every event exactly once.
    #[serde(default)]
    pub exactly_once: bool,
}

impl PipelineConfig {
    /// Parses YAML text, checking what the types alone cannot.
    pub fn from_yaml(text: &str) -> Result<PipelineConfig> {
        let config: PipelineConfig =
            serde_yaml::from_str(text).map_err(|e| Error::Config(format!("pipeline file: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a pipeline file.
    pub fn from_file(path: &std::path::Path) -> Result<PipelineConfig> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(Error::Config(format!(
                "{} is {} bytes; a pipeline file may have at most {MAX_FILE_BYTES}",
                path.display(),
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        PipelineConfig::from_yaml(&text).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Checks names, kinds, routes and the source.
    pub fn validate(&self) -> Result<()> {
        if self.destinations.is_empty() {
            return Err(Error::Config("the pipeline has no destinations".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in &self.destinations {
            d.kind()?;
            if !seen.insert(d.name.as_str()) {
                return Err(Error::Config(format!(
                    "two destinations are called {:?}",
                    d.name
                )));
            }
        }
        if let Some(d) = &self.delivery.dead_letter {
            d.kind()?;
        }
        let k = &self.source.kafka;
        if k.topics.is_empty() {
            return Err(Error::Config("source.kafka.topics is empty".into()));
        }
        for required in ["bootstrap.servers", "group.id"] {
            if !k.properties.contains_key(required) {
                return Err(Error::Config(format!(
                    "source.kafka.properties needs {required}"
                )));
            }
        }
        super::transform::Transforms::compile(&self.transforms)?;
        if self.delivery.exactly_once {
            super::exactly_once::validate(self)?;
        }
        for t in &self.transforms {
            for name in t.destination_names() {
                if !seen.contains(name) {
                    return Err(Error::Config(format!(
                        "a route names destination {name:?}, which is not defined"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
name: clicks
source:
  kafka:
    topics: [clicks]
    properties: { bootstrap.servers: "127.0.0.1:9092", group.id: fanout }
transforms:
  - filter: { header: event_type, in: [Click, View] }
destinations:
  - name: copy
    preset: durable
    kafka: { topic: clicks-copy, properties: { bootstrap.servers: "127.0.0.1:9092", linger.ms: "1" } }
  - name: queue
    batch: { linger_ms: 20, max_records: 5 }
    sqs: { queue_url: "http://127.0.0.1:5000/123456789012/q", aws: { region: us-east-1 } }
delivery:
  policy: best_effort
  dead_letter:
    name: dlq
    kafka: { topic: clicks-dlq, properties: { bootstrap.servers: "127.0.0.1:9092" } }
"#;

    #[test]
    fn parses_and_resolves_presets() {
        let c = PipelineConfig::from_yaml(FILE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.destinations.len(), 2);
        let copy = &c.destinations[0];
        let props = copy.kafka_properties();
        assert_eq!(props.get("acks").map(String::as_str), Some("all"));
        assert_eq!(
            props.get("linger.ms").map(String::as_str),
            Some("1"),
            "explicit wins"
        );
        let q = c.destinations[1].sink_options().unwrap_or_default();
        assert_eq!(
            (q.linger, q.max_records),
            (Duration::from_millis(20), Some(5))
        );
        assert_eq!(c.delivery.policy, Policy::BestEffort);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (
                FILE.replace("sqs: {", "kinesis: { stream_name: s }\n    sqs: {"),
                "2 kinds",
            ),
            (FILE.replace("group.id: fanout", "x: y"), "group.id"),
            (
                FILE.replace("name: queue", "name: copy"),
                "two destinations",
            ),
            (FILE.replace("linger_ms", "lingr_ms"), "unknown field"),
            (
                FILE.replace("preset: durable", "preset: fastest"),
                "unknown variant",
            ),
            ("source: [".to_owned(), "pipeline file"),
        ];
        for (text, want) in cases {
            let e = PipelineConfig::from_yaml(&text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
