//! Destinations. Each one has the same shape (as Vector's sinks): `config.rs` (settings and
//! their checks), `request_builder.rs` (events → one API request within the service's limits),
//! `service.rs` (the call, and the answer read **per record**) — and the shared [`Sink`]
//! driver batches, retries and bounds memory for all of them.
//!
//! A destination implements [`Service`]; [`Sink::spawn`] turns it into a cloneable handle.

mod attributes;
mod driver;
pub mod field;
pub mod kafka;
pub mod kinesis;
pub mod sns;
pub mod sqs;

use std::future::Future;

pub use attributes::BodyEncoding;
pub use driver::{Delivery, Sink, SinkOptions};

use crate::event::Event;

/// How much one request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Records per request.
    pub max_records: usize,
    /// Bytes per request, as the service counts them.
    pub max_bytes: usize,
}

/// What a destination said about one delivered record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The service's id for it: SQS/SNS message id, Kinesis `shardId/sequenceNumber`, Kafka
    /// `partition@offset`.
    pub id: Option<String>,
}

/// Why one record (or a whole request) was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The service's error code, or a local one (`TooLarge`, `Network`, …).
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// Whether trying again may succeed (throttling, unavailability) or never will
    /// (validation, a record over the service's limit).
    pub retriable: bool,
}

impl Failure {
    /// A failure that trying again cannot fix.
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            code: code.into(),
            message: message.into(),
            retriable: false,
        }
    }

    /// A failure that may go away.
    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            code: code.into(),
            message: message.into(),
            retriable: true,
        }
    }
}

impl From<crate::aws::AwsError> for Failure {
    fn from(e: crate::aws::AwsError) -> Failure {
        Failure {
            code: e.code,
            message: e.message,
            retriable: e.retriable,
        }
    }
}

/// The final failure of one event at one destination, after its retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{destination}: {} after {attempts} attempt(s): {}", failure.code, failure.message)]
pub struct DeliveryError {
    /// The destination's name.
    pub destination: String,
    /// The last failure.
    pub failure: Failure,
    /// Attempts made.
    pub attempts: u32,
}

/// One destination's API: limits, per-record checks and the batched call.
pub trait Service: Send + Sync + 'static {
    /// The kind, for logs and metrics (`kafka`, `sqs`, `sns`, `kinesis`).
    fn kind(&self) -> &'static str;

    /// Limits of one request.
    fn limits(&self) -> BatchLimits;

    /// Bytes `event` takes in a request, or why it can never be sent (over the service's
    /// record limit, not representable); checked before it is buffered.
    fn check(&self, event: &Event) -> Result<usize, Failure>;

    /// Sends `batch` (within [`Service::limits`]) in one call, answering one outcome per
    /// record in order; a failure of the whole call is `Err` and applies to every record.
    fn send(
        &self,
        batch: &[Event],
    ) -> impl Future<Output = Result<Vec<Result<Receipt, Failure>>, Failure>> + Send;
}
