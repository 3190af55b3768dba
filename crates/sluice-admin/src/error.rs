//! Errors of the admin client.

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;

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
    /// What the operation was about does not exist (an unknown transactional id, no
    /// transaction starting at the given offset).
    #[error("{0}")]
    NotFound(String),
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

/// The Kafka name of an error code, e.g. `TransactionalIdNotFound`.
pub(crate) fn error_name(code: i16) -> String {
    ResponseError::try_from_code(code)
        .map_or_else(|| format!("error code {code}"), |e| format!("{e:?}"))
}

/// `Ok` for error code 0, else [`AdminError::Broker`] describing `what` failed.
pub(crate) fn check(
    code: i16,
    message: Option<&StrBytes>,
    what: impl FnOnce() -> String,
) -> Result<(), AdminError> {
    if code == 0 {
        return Ok(());
    }
    let detail = message
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {}", m.as_str()))
        .unwrap_or_default();
    Err(AdminError::Broker {
        what: what(),
        error: error_name(code),
        detail,
    })
}
