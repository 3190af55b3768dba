//! Sluice's streaming SDK: one send to Kafka, SQS, SNS and Kinesis.
//!
//! - [`sinks`]: one shape per destination (config, request builder, service) over a shared
//!   [`Sink`] driver with a bounded buffer, batches within each service's limits and
//!   per-record retries — a failure inside a successful batch answer is a failure.
//! - [`FanOut`]: one send to several destinations under a [`Policy`] (all, best effort with a
//!   dead-letter destination, ordered fallback).
//! - [`pipeline`]: a Kafka consumer group → transforms → fan-out, at least once (offsets
//!   committed only after every destination acknowledged) or, Kafka to Kafka, exactly once
//!   through transactions; declared in YAML and run by `sluice stream run pipeline.yml`.
//! - [`Preset`]s and a [`lint`]er for configurations known to go wrong;
//!   [`sinks::kafka::Failover`] between Kafka clusters.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sluice_stream::Error> {
//! use sluice_stream::sinks::{kafka::{KafkaConfig, KafkaService}, sqs::{SqsConfig, SqsService}};
//! use sluice_stream::{Event, FanOut, Policy, Sink, SinkOptions, StreamMetrics};
//!
//! let metrics = StreamMetrics::default();
//! let kafka = Sink::spawn("orders", KafkaService::new(KafkaConfig::new("127.0.0.1:9092", "orders"))?,
//!     SinkOptions::default(), &metrics);
//! let sqs = Sink::spawn("orders-queue", SqsService::new(SqsConfig::new("https://sqs.eu-west-1.amazonaws.com/1/orders"))?,
//!     SinkOptions::default(), &metrics);
//! let fan = FanOut::new(vec![kafka, sqs], Policy::All, None)?;
//! let report = fan.send(Event::new(r#"{"id":1}"#).with_key("order-1")).await?;
//! assert_eq!(report.delivered.len(), 2);
//! # Ok(()) }
//! ```
//!
//! See `docs/stream.md`.

pub mod aws;
mod error;
mod event;
pub mod fanout;
pub mod lint;
mod metrics;
pub mod pipeline;
mod preset;
pub mod sinks;
#[cfg(test)]
mod testing;

pub use error::{Error, Result};
pub use event::Event;
pub use fanout::{FanOut, FanOutError, FanOutReport, Policy};
pub use metrics::StreamMetrics;
pub use preset::{base_options, Preset};
pub use sinks::field::Field;
pub use sinks::{DeliveryError, Receipt, Sink, SinkOptions};
