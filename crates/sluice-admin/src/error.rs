//! Errors of the admin client.

/// Why an admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The client settings are unusable.
    #[error("{0}")]
    Config(String),
    /// A certificate, key or CA file could not be used.
    #[error("{what} {path}: {detail}")]
    TlsFile {
        /// Which setting the file came from.
        what: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No bootstrap server could be reached.
    #[error("could not connect to {server}: {detail}; is a Kafka broker running there (and does the listener speak the chosen security.protocol)?")]
    Connect {
        /// The server tried last.
        server: String,
        /// What failed.
        detail: String,
    },
    /// The connection failed or timed out during a request.
    #[error("{0}")]
    Io(String),
    /// A request or response could not be encoded or decoded.
    #[error("Kafka protocol error: {0}")]
    Protocol(String),
    /// The broker answered with an error code.
    #[error("{what} failed with {error}{detail}")]
    Broker {
        /// The operation that failed.
        what: String,
        /// The Kafka error name, e.g. `ClusterAuthorizationFailed`.
        error: String,
        /// The broker's message, prefixed with `: `, or empty.
        detail: String,
    },
}
