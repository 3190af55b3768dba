//! Errors a benchmark run can end with.

use std::path::PathBuf;

/// Why a benchmark could not run or could not write its results.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A command-line value could not be understood.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArg {
        /// Which option was wrong.
        what: &'static str,
        /// The value given.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
    /// The Kafka client failed in a way the benchmark cannot work around.
    #[error("kafka client error while {context}: {source}; check that the broker at the bootstrap address is running and reachable")]
    Kafka {
        /// What the benchmark was doing.
        context: String,
        /// The librdkafka error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The broker did not do something within the allotted time.
    #[error("timed out {0}; is the broker running and does it support this API?")]
    Timeout(String),
    /// Reading /proc or writing an output file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding the JSON report failed.
    #[error("could not encode the JSON report: {0}")]
    Json(#[from] serde_json::Error),
    /// Drawing the SVG chart failed.
    #[error("could not draw the latency chart: {0}")]
    Chart(String),
    /// A benchmark worker thread panicked.
    #[error("benchmark worker thread {0} panicked; see the log above")]
    WorkerPanicked(&'static str),
}

impl BenchError {
    /// Wraps a librdkafka error with what the benchmark was doing at the time.
    pub fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        BenchError::Kafka {
            context: context.into(),
            source,
        }
    }

    /// Wraps an I/O error with the file it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for benchmark operations.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
