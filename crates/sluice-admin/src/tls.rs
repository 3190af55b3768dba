//! TLS client settings: which CA to trust and which client certificate to present.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::AdminError;

/// PEM files for a TLS connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificates the broker's certificate must chain to (required).
    pub ca: Option<PathBuf>,
    /// The client certificate chain (optional, with `key`).
    pub cert: Option<PathBuf>,
    /// The client private key (optional, with `cert`).
    pub key: Option<PathBuf>,
}

fn file_error(what: &'static str, path: &Path, detail: impl ToString) -> AdminError {
    AdminError::TlsFile {
        what,
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, AdminError> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(what, path, e))
}

impl TlsFiles {
    /// Builds a connector from the files (read now, so a renewed certificate is used by the
    /// next connection).
    pub fn connector(&self) -> Result<tokio_rustls::TlsConnector, AdminError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ca = self.ca.as_deref().ok_or_else(|| {
            AdminError::Config(
                "security.protocol=ssl needs ssl.ca.location=CA.pem to verify the broker".into(),
            )
        })?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in read_certs("ssl.ca.location", ca)? {
            roots
                .add(cert)
                .map_err(|e| file_error("ssl.ca.location", ca, e))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| AdminError::Config(e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs("ssl.certificate.location", cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| file_error("ssl.key.location", key, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| file_error("ssl.certificate.location", cert, e))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(AdminError::Config(
                    "set both ssl.certificate.location and ssl.key.location, or neither".into(),
                ))
            }
        };
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_without_ca_is_refused() {
        assert!(TlsFiles::default().connector().is_err());
        let missing = TlsFiles {
            ca: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        assert!(matches!(
            missing.connector(),
            Err(AdminError::TlsFile { .. })
        ));
    }
}
