//! Pipelines: a Kafka consumer group → transforms → a fan-out to destinations. At least once
//! (`run.rs`): an event's offset is stored for commit only once the fan-out's policy is
//! satisfied for it and for every event before it in the partition, so a crash or restart
//! re-delivers what was not acknowledged and never skips it. Exactly once, Kafka to Kafka
//! (`exactly_once.rs`): results and source offsets in one Kafka transaction.

mod config;
mod exactly_once;
mod run;
mod source;
mod transform;

pub use config::{
    BatchConfig, DeliveryConfig, DestinationConfig, DestinationKind, KafkaSourceConfig,
    PipelineConfig, SourceConfig,
};
pub use run::{Pipeline, RunSummary};
pub use transform::{
    MapConfig, Outcome, PredicateConfig, RouteConfig, TransformConfig, TransformError, Transforms,
};

use crate::error::Result;
use crate::metrics::StreamMetrics;
use crate::sinks::kafka::{Failover, KafkaConfig, KafkaService};
use crate::sinks::kinesis::KinesisService;
use crate::sinks::sns::SnsService;
use crate::sinks::sqs::SqsService;
use crate::sinks::Sink;

/// Starts the destination `d` describes (its preset and batch settings applied).
pub fn start_destination(d: &DestinationConfig, metrics: &StreamMetrics) -> Result<Sink> {
    let options = d.sink_options()?;
    Ok(match d.kind()? {
        DestinationKind::Kafka(k) => {
            let config = KafkaConfig {
                properties: d.kafka_properties(),
                ..k.clone()
            };
            match &k.failover {
                Some(f) => {
                    let failover = Failover::new(&d.name, config, f, metrics)?;
                    Sink::spawn(&d.name, failover, options, metrics)
                }
                None => Sink::spawn(&d.name, KafkaService::new(config)?, options, metrics),
            }
        }
        DestinationKind::Sqs(q) => {
            Sink::spawn(&d.name, SqsService::new(q.clone())?, options, metrics)
        }
        DestinationKind::Sns(s) => {
            Sink::spawn(&d.name, SnsService::new(s.clone())?, options, metrics)
        }
        DestinationKind::Kinesis(k) => {
            Sink::spawn(&d.name, KinesisService::new(k.clone())?, options, metrics)
        }
    })
}
