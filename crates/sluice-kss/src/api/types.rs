//! JSON bodies of the KSS HTTP API (shared with the sidecar).

use serde::{Deserialize, Serialize};

/// Body of `POST /v1/certificates` (the identity token goes in `Authorization: Bearer`).
/// Unknown fields are refused, so a misspelt option is an error rather than silently ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    /// The PEM CSR; only its public key (and that it is signed by it) matters.
    pub csr: String,
    /// Requested lifetime in seconds; capped by the KSS maximum, default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_secs: Option<u64>,
}

/// Answer to a successful `POST /v1/certificates`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateResponse {
    /// The service the certificate was issued to (its CN).
    pub service: String,
    /// The client certificate, PEM.
    pub certificate: String,
    /// The CA certificates clients should trust, PEM (the KSS CA plus any trust bundle).
    pub ca: String,
    /// Serial number, hex.
    pub serial: String,
    /// Unix seconds the certificate becomes valid.
    pub not_before: u64,
    /// Unix seconds the certificate expires.
    pub not_after: u64,
}

/// Body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// What went wrong and what to do.
    pub error: String,
}
