//! KSS's Prometheus metrics: requests per route, certificates issued, refusals by reason, and
//! when the CA certificate expires (for the alert that warns weeks ahead).

use std::sync::Arc;

use sluice_metrics::http::HttpRequests;
use sluice_metrics::{Counter, Family, Registry};

/// Why a certificate request was refused (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The body was not a certificate request.
    BadRequest,
    /// No, an invalid or a used token.
    Token,
    /// The identity provider could not be asked.
    Unavailable,
    /// The service is disabled.
    Disabled,
    /// The CSR is malformed or its key too weak.
    BadCsr,
    /// The service name is reserved (a super user's).
    Reserved,
    /// Signing failed.
    Internal,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Refused::BadRequest => "bad_request",
            Refused::Token => "token",
            Refused::Unavailable => "unavailable",
            Refused::Disabled => "disabled",
            Refused::BadCsr => "bad_csr",
            Refused::Reserved => "reserved",
            Refused::Internal => "internal",
        }
    }
}

/// The metrics of one KSS.
pub struct KssMetrics {
    registry: Registry,
    /// Requests per route and status.
    pub requests: Arc<HttpRequests>,
    issued: Arc<Counter>,
    refused: Arc<Family<Counter>>,
}

impl KssMetrics {
    /// Metrics for a CA whose certificate expires at `ca_not_after` (Unix seconds).
    pub fn new(ca_not_after: Option<i64>) -> Self {
        let registry = Registry::new();
        if let Some(t) = ca_not_after {
            registry
                .gauge(
                    "sluice_kss_ca_expiry_timestamp_seconds",
                    "When the CA certificate expires (Unix time).",
                )
                .set(t);
        }
        KssMetrics {
            requests: Arc::new(HttpRequests::new(
                &registry,
                "sluice_kss_requests_total",
                "sluice_kss_request_duration_seconds",
            )),
            issued: registry.counter(
                "sluice_kss_certificates_issued_total",
                "Service certificates issued.",
            ),
            refused: registry.counter_family(
                "sluice_kss_certificates_refused_total",
                "Certificate requests refused, by reason.",
                &["reason"],
            ),
            registry,
        }
    }

    /// Counts an issued certificate.
    pub fn issued(&self) {
        self.issued.inc();
    }

    /// Counts a refusal.
    pub fn refused(&self, why: Refused) {
        self.refused.with(&[why.label()]).inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        self.registry.render()
    }
}

/// When the first certificate of `pem` expires (Unix seconds).
pub fn not_after(pem: &str) -> Option<i64> {
    let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = der.parse_x509().ok()?;
    Some(cert.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_reason() {
        let m = KssMetrics::new(Some(1_900_000_000));
        m.issued();
        m.refused(Refused::Token);
        m.refused(Refused::Token);
        let text = m.render();
        assert!(
            text.contains("sluice_kss_certificates_issued_total 1"),
            "{text}"
        );
        assert!(
            text.contains("sluice_kss_certificates_refused_total{reason=\"token\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("sluice_kss_ca_expiry_timestamp_seconds 1900000000"),
            "{text}"
        );
    }
}
