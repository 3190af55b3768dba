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
    /// 40403, naming the id when the request named one (`Schema 7 not found`) and not otherwise
    /// (`Schema not found`), as Confluent words them.
    #[error("Schema {}not found", .0.as_ref().map(|id| format!("{id} ")).unwrap_or_default())]
    SchemaNotFound(Option<String>),
    /// 40404 (no space after "deleted.": Confluent's wording, which scripts match).
    #[error("Subject '{0}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// 40405.
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// 40406.
    #[error("Subject '{0}' Version {1} was soft deleted.Set permanent=true to delete permanently")]
    VersionSoftDeleted(String, i32),
    /// 40407.
    #[error("Subject '{0}' Version {1} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted(String, i32),
    /// 40408.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectCompatNotConfigured(String),
    /// 40409.
    #[error("Subject '{0}' does not have subject-level mode configured")]
    SubjectModeNotConfigured(String),
    /// 42201: the message names the problem.
    #[error("{0}")]
    InvalidSchema(String),
    /// 42201 with Confluent's message for a request whose schema is missing or blank.
    #[error("Empty schema")]
    EmptySchema,
    /// 42202.
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    /// 42203.
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")]
    InvalidCompatibility,
    /// 42204.
    #[error("{0}")]
    InvalidMode(String),
    /// 42205.
    #[error("{0}")]
    OperationNotPermitted(String),
    /// 42206: other live schemas reference this subject version.
    #[error("One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={subject},version={version}}}.")]
    ReferenceExists {
        /// Referenced subject.
        subject: String,
        /// Referenced version.
        version: i32,
    },
    /// 409: the new schema breaks the subject's compatibility level.
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]", .details.join(", "))]
    Incompatible {
        /// Subject registered to.
        subject: String,
        /// Why, one entry per problem.
        details: Vec<String>,
    },
    /// 404 for a path that names no resource (e.g. a schema id that is not a number).
    #[error("HTTP 404 Not Found")]
    NoSuchPath,
    /// 406: no type the request's `Accept` allows is one the registry answers in.
    #[error("HTTP 406 Not Acceptable")]
    NotAcceptable,
    /// 415: the request body's `Content-Type` is not one the registry reads.
    #[error("HTTP 415 Unsupported Media Type")]
    UnsupportedMediaType,
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
            RegistryError::InvalidSchema(_) | RegistryError::EmptySchema => (422, 42201),
            RegistryError::InvalidVersion(_) => (422, 42202),
            RegistryError::InvalidCompatibility => (422, 42203),
            RegistryError::InvalidMode(_) => (422, 42204),
            RegistryError::OperationNotPermitted(_) => (422, 42205),
            RegistryError::ReferenceExists { .. } => (422, 42206),
            RegistryError::Incompatible { .. } => (409, 409),
            RegistryError::NoSuchPath => (404, 404),
            RegistryError::NotAcceptable => (406, 406),
            RegistryError::UnsupportedMediaType => (415, 415),
            RegistryError::PayloadTooLarge(_) => (413, 413),
            RegistryError::BadRequest(_) => (400, 400),
            RegistryError::Store(_) => (500, 50001),
            RegistryError::Timeout(_) => (500, 50002),
            RegistryError::Forwarding(_) => (500, 50003),
            RegistryError::UnknownLeader => (500, 50004),
        }
    }
}
