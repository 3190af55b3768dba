//! Sluice SDK: a schema-aware Kafka producer and consumer built on librdkafka (`rdkafka`).
//!
//! - [`Producer`] registers protobuf (with imports as references), Avro and JSON Schema
//!   schemas in any Confluent-compatible registry, frames payloads in Confluent's wire format
//!   and stamps every record with [provenance headers](headers).
//! - [`Consumer`] filters on headers before decoding, decodes by schema id (typed or dynamic),
//!   keeps an end-to-end latency histogram and a per-producer completeness [`audit`], and
//!   can dead-letter undecodable payloads.
//! - [`SdkConfig`] reads a sidecar credentials directory and applies platform defaults;
//!   [`lint`] warns about known configuration mistakes.
//!
//! See `docs/sdk.md` for header encodings, configuration keys and linter rules.

pub mod audit;
pub mod config;
pub mod consumer;
pub mod error;
pub mod headers;
pub mod lint;
pub mod producer;
pub mod registry;
pub mod schema;
pub mod wire;

pub use audit::{AuditReport, ProducerAudit};
pub use config::SdkConfig;
pub use consumer::{Consumer, ConsumerMetrics, DynamicValue, Received};
pub use error::{Error, Result};
pub use headers::Provenance;
pub use producer::{Prepared, Producer};
pub use registry::{RegistryClient, RetryPolicy};
pub use schema::{AvroRecord, JsonRecord, SubjectStrategy};
