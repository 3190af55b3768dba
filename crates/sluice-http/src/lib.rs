//! HTTP ingestion for Sluice: Confluent's REST Proxy API (v2 produce, consume and metadata; v3
//! produce, single, streaming and batched) in front of any Kafka cluster, reached only through
//! the Kafka protocol (librdkafka) and the Confluent registry API.
//!
//! Built for browsers and mobile apps as well as services: CORS, gzip request bodies, API keys
//! mapped to Kafka principals (so the cluster's ACLs apply), per-key rate limits, request size
//! limits, and the SDK's provenance headers on every record. See `docs/http.md`.

mod auth;
mod avro_json;
mod body;
mod codec;
mod config;
mod cors;
mod error;
mod extract;
mod kafka;
mod metrics;
mod produce;
mod provenance;
mod ratelimit;
mod server;
mod v2;
mod v3;

pub use auth::{ApiKey, KeysError, KeysFile};
pub use codec::Format;
pub use config::HttpConfig;
pub use error::ApiError;
pub use kafka::PRODUCER_DEFAULTS;
pub use server::{start, HttpHandle, StartError};
