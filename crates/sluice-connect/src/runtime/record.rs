//! A source record between the connector and Kafka: Connect data with its schemas, before
//! the transforms and the converters turn it into bytes.

use std::sync::Arc;

use crate::convert::Prepared;
use crate::data::Datum;

/// A key or value: its prepared schema and the datum.
pub(crate) type Part = (Arc<Prepared>, Datum);

/// One record a source connector produced.
#[derive(Debug, Clone)]
pub(crate) struct SourceRecord {
    pub(crate) topic: String,
    pub(crate) key: Option<Part>,
    /// `None`: a tombstone.
    pub(crate) value: Option<Part>,
    /// Milliseconds since the epoch; `None` lets the producer stamp it.
    pub(crate) timestamp_ms: Option<i64>,
    /// Headers, as `SimpleHeaderConverter` writes them (UTF-8 text of the value).
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}
