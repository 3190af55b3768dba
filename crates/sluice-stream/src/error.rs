//! Errors of the streaming SDK.

/// What went wrong setting up or running a destination, fan-out or pipeline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration (pipeline file, destination settings, AWS settings) is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A destination could not be created (client construction, unreachable endpoint).
    #[error("destination {destination}: {message}")]
    Destination {
        /// The destination's name.
        destination: String,
        /// What failed.
        message: String,
    },
    /// Delivering an event failed for good.
    #[error(transparent)]
    Delivery(Box<crate::sinks::DeliveryError>),
    /// The fan-out could not deliver an event as its policy requires.
    #[error(transparent)]
    FanOut(Box<crate::fanout::FanOutError>),
    /// The Kafka source failed.
    #[error("kafka source: {0}")]
    Source(String),
    /// The linter found errors.
    #[error("{0} configuration error(s); see the findings above")]
    Lint(usize),
}

/// Result of the streaming SDK.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::sinks::DeliveryError> for Error {
    fn from(e: crate::sinks::DeliveryError) -> Error {
        Error::Delivery(Box::new(e))
    }
}

impl From<crate::fanout::FanOutError> for Error {
    fn from(e: crate::fanout::FanOutError) -> Error {
        Error::FanOut(Box::new(e))
    }
}
