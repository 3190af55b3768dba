//! Registry errors, each carrying Confluent's HTTP status and error code.

/// Anything a registry operation can fail with; [`RegistryError::codes`] gives the HTTP status
/// and Confluent error code clients branch on.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// 40401.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// 40402.
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    /// 40403.
    #[error("Schema {0} not found")]
    SchemaNotFound(String),
    /// 40404.
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// 40405.
    #[error("Subject '{0}' was not deleted first before being permanently deleted; soft-delete it first")]
    SubjectNotSoftDeleted(String),
    /// 40406.
    #[error(
        "Subject '{0}' Version {1} was soft deleted. Set permanent=true to delete permanently"
    )]
    VersionSoftDeleted(String, i32),
    /// 40407.
    #[error("Subject '{0}' Version {1} was not deleted first before being permanently deleted; soft-delete it first")]
    VersionNotSoftDeleted(String, i32),
    /// 40408.
    #[error("Subject '{0}' does not have subject-level compatibility configured; use defaultToGlobal=true to see the global level")]
    SubjectCompatNotConfigured(String),
    /// 40409.
    #[error("Subject '{0}' does not have subject-level mode configured; use defaultToGlobal=true to see the global mode")]
    SubjectModeNotConfigured(String),
    /// 42201: the message names the problem.
    #[error("{0}")]
    InvalidSchema(String),
    /// 42202.
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    /// 42203.
    #[error("{0}")]
    InvalidCompatibility(String),
    /// 42204.
    #[error("{0}")]
    InvalidMode(String),
    /// 42205.
    #[error("{0}")]
    OperationNotPermitted(String),
    /// 42206.
    #[error("{0}")]
    ReferenceExists(String),
    /// 409: the new schema breaks the subject's compatibility level.
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]", .details.join(", "))]
    Incompatible {
        /// Subject registered to.
        subject: String,
        /// Why, one entry per problem.
        details: Vec<String>,
    },
    /// 413: the request body is larger than the limit (in bytes).
    #[error("Request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// 400: the request body is not the expected JSON.
    #[error("Unprocessable request body: {0}")]
    BadRequest(String),
    /// 50001: the `_schemas` topic could not be read or written.
    #[error("Error in the backend data store: {0}")]
    Store(String),
    /// 50002.
    #[error("Operation timed out: {0}")]
    Timeout(String),
    /// 50004: no leader has been elected yet.
    #[error("Unknown leader: the registry instances have not elected a leader yet; retry shortly")]
    UnknownLeader,
    /// 50003: a non-leader could not forward a write to the leader.
    #[error("Error while forwarding the request to the leader: {0}")]
    Forwarding(String),
}

impl RegistryError {
    /// HTTP status and Confluent error code.
    pub fn codes(&self) -> (u16, u32) {
        match self {
            RegistryError::SubjectNotFound(_) => (404, 40401),
            RegistryError::VersionNotFound(_) => (404, 40402),
            RegistryError::SchemaNotFound(_) => (404, 40403),
            RegistryError::SubjectSoftDeleted(_) => (404, 40404),
            RegistryError::SubjectNotSoftDeleted(_) => (404, 40405),
            RegistryError::VersionSoftDeleted(..) => (404, 40406),
            RegistryError::VersionNotSoftDeleted(..) => (404, 40407),
            RegistryError::SubjectCompatNotConfigured(_) => (404, 40408),
            RegistryError::SubjectModeNotConfigured(_) => (404, 40409),
            RegistryError::InvalidSchema(_) => (422, 42201),
            RegistryError::InvalidVersion(_) => (422, 42202),
            RegistryError::InvalidCompatibility(_) => (422, 42203),
            RegistryError::InvalidMode(_) => (422, 42204),
            RegistryError::OperationNotPermitted(_) => (422, 42205),
            RegistryError::ReferenceExists(_) => (422, 42206),
            RegistryError::Incompatible { .. } => (409, 409),
            RegistryError::PayloadTooLarge(_) => (413, 413),
            RegistryError::BadRequest(_) => (400, 400),
            RegistryError::Store(_) => (500, 50001),
            RegistryError::Timeout(_) => (500, 50002),
            RegistryError::Forwarding(_) => (500, 50003),
            RegistryError::UnknownLeader => (500, 50004),
        }
    }
}
