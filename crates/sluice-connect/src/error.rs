//! Errors of the runtime.

/// Why the worker could not do something.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// Kafka refused or could not be reached.
    #[error("{0}")]
    Kafka(String),
}
