//! HTTPS for the KSS API. Tokens and certificates must not travel in clear, and a sidecar must be
//! able to tell the real KSS from anything else answering on its address: by default KSS serves
//! a certificate it issues itself from its own CA (which sidecars already trust), renewed before
//! it expires; a certificate and key from files can be given instead.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;

use crate::ca::CertificateAuthority;
use crate::KssError;

/// Lifetime of the certificate KSS issues itself.
const SERVER_CERT_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// It is replaced when less than this is left.
const SERVER_CERT_RENEW_BEFORE: Duration = Duration::from_secs(10 * 24 * 3600);
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; further connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

/// How KSS serves its API.
#[derive(Debug, Clone)]
pub enum KssTls {
    /// HTTPS with a certificate issued from the KSS CA at start (and renewed while running) for
    /// `localhost`, `127.0.0.1`, `::1`, the listen IP unless it is a wildcard, and `names`.
    Issued {
        /// Further DNS names or IP addresses clients use to reach KSS.
        names: Vec<String>,
    },
    /// HTTPS with a PEM certificate chain and key from files (read at start).
    Files {
        /// Certificate chain, PEM, the server certificate first.
        cert: PathBuf,
        /// Its private key, PEM.
        key: PathBuf,
    },
    /// Plain HTTP: tokens and certificates travel in clear and clients cannot authenticate
    /// KSS. For development only.
    InsecureHttp,
}

impl Default for KssTls {
    fn default() -> Self {
        KssTls::Issued { names: Vec::new() }
    }
}

/// The names KSS's own certificate is issued for.
fn server_names(listen: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.extend(extra.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

fn provider() -> Arc<CryptoProvider> {
    // Explicit: the process-wide default provider is ambiguous when several are linked in.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(detail: impl fmt::Display) -> KssError {
    KssError::Config(format!("KSS HTTPS: {detail}"))
}

/// The TLS server settings for `tls`, or `None` for plain HTTP.
pub(crate) fn server_config(
    tls: &KssTls,
    ca: &Arc<CertificateAuthority>,
    listen: SocketAddr,
) -> Result<Option<Arc<rustls::ServerConfig>>, KssError> {
    if matches!(tls, KssTls::InsecureHttp) {
        return Ok(None);
    }
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth();
    let mut config = match tls {
        KssTls::InsecureHttp => return Ok(None),
        KssTls::Issued { names } => {
            let resolver = IssuedCertResolver::new(ca.clone(), server_names(listen, names))?;
            builder.with_cert_resolver(Arc::new(resolver))
        }
        KssTls::Files { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| config_error(format!("--tls-cert {}: {e}", cert.display())))?;
            if chain.is_empty() {
                return Err(config_error(format!(
                    "--tls-cert {} holds no CERTIFICATE",
                    cert.display()
                )));
            }
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| config_error(format!("--tls-key {}: {e}", key.display())))?;
            builder.with_single_cert(chain, key_der).map_err(|e| {
                config_error(format!(
                    "--tls-cert {} and --tls-key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// Serves the certificate KSS issues itself, issuing a new one when the current one nears its
/// end (at most one signature per handshake, and only then).
struct IssuedCertResolver {
    ca: Arc<CertificateAuthority>,
    names: Vec<String>,
    current: RwLock<(Arc<CertifiedKey>, SystemTime)>,
}

impl fmt::Debug for IssuedCertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertResolver")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl IssuedCertResolver {
    fn new(ca: Arc<CertificateAuthority>, names: Vec<String>) -> Result<Self, KssError> {
        let first = issue(&ca, &names)?;
        tracing::info!(names = ?names, "issued KSS's HTTPS certificate from its CA");
        Ok(IssuedCertResolver {
            ca,
            names,
            current: RwLock::new(first),
        })
    }
}

/// A new certificate for `names` and when to replace it.
fn issue(
    ca: &CertificateAuthority,
    names: &[String],
) -> Result<(Arc<CertifiedKey>, SystemTime), KssError> {
    let server = ca.issue_server_certificate(names, SERVER_CERT_LIFETIME)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key_der));
    let certified = CertifiedKey::from_der(
        vec![CertificateDer::from(server.certificate_der)],
        key,
        &provider(),
    )
    .map_err(config_error)?;
    let renew_at = SystemTime::now() + (SERVER_CERT_LIFETIME - SERVER_CERT_RENEW_BEFORE);
    Ok((Arc::new(certified), renew_at))
}

impl ResolvesServerCert for IssuedCertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let (current, renew_at) = self.current.read().clone();
        if SystemTime::now() < renew_at {
            return Some(current);
        }
        let mut slot = self.current.write();
        if SystemTime::now() >= slot.1 {
            match issue(&self.ca, &self.names) {
                Ok(renewed) => {
                    tracing::info!("renewed KSS's HTTPS certificate");
                    *slot = renewed;
                }
                // The current certificate is still valid for days: keep serving it.
                Err(e) => tracing::error!("could not renew KSS's HTTPS certificate: {e}"),
            }
        }
        Some(slot.0.clone())
    }
}

/// A listener whose connections have completed a TLS handshake. Handshakes run in their own
/// tasks with a deadline, so one silent client cannot hold up everyone else's.
pub(crate) struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `listener` and hands out connections whose handshake with `config` succeeded.
    pub(crate) fn new(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let tls = tokio_rustls::TlsAcceptor::from(config);
        let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // E.g. out of file descriptors: wait instead of spinning.
                        tracing::warn!("KSS accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            local_addr,
            ready,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // Only when the accept task is gone, i.e. while shutting down.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_loopback_the_listen_ip_and_extras_once() {
        let names = server_names(
            "10.1.2.3:8090".parse().unwrap(),
            &["kss.internal".into(), "localhost".into()],
        );
        assert_eq!(
            names,
            ["localhost", "127.0.0.1", "::1", "10.1.2.3", "kss.internal"]
        );
        let wildcard = server_names("0.0.0.0:8090".parse().unwrap(), &[]);
        assert_eq!(wildcard, ["localhost", "127.0.0.1", "::1"]);
    }
}
