//! TLS to PostgreSQL, with libpq's `sslmode` meanings: the client asks with an `SSLRequest`,
//! the server answers one byte (`S` or `N`), and only then does the TLS handshake start on
//! the same socket.

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::PgError;

/// `sslmode`: whether TLS is used and what is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plaintext.
    Disable,
    /// TLS when the server offers it, plaintext otherwise; the certificate is never checked.
    Prefer,
    /// TLS or no connection; the certificate is verified only when a root certificate is
    /// configured (then as `VerifyCa`).
    Require,
    /// TLS with a certificate chaining to the root certificate.
    VerifyCa,
    /// `VerifyCa`, and the certificate names the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The modes by their configuration names.
    pub(crate) const NAMES: [(&'static str, SslMode); 5] = [
        ("disable", SslMode::Disable),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ];

    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }
}

/// The TLS settings of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgTls {
    /// `database.sslmode`.
    pub(crate) mode: SslMode,
    /// `database.sslrootcert`: PEM CA certificates the server's certificate must chain to.
    pub(crate) root_cert: Option<PathBuf>,
    /// `database.sslcert` and `database.sslkey`: a client certificate to present.
    pub(crate) client_cert: Option<(PathBuf, PathBuf)>,
}

impl Default for PgTls {
    fn default() -> Self {
        Self {
            mode: SslMode::Prefer,
            root_cert: None,
            client_cert: None,
        }
    }
}

/// `SSLRequest`: length 8, then the request code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// The socket, in plaintext or TLS.
pub(super) enum PgStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl PgTls {
    /// Asks for TLS on a new connection to `host` and performs the handshake as the mode says.
    pub(super) async fn negotiate(
        &self,
        mut stream: TcpStream,
        host: &str,
    ) -> Result<PgStream, PgError> {
        if self.mode == SslMode::Disable {
            return Ok(PgStream::Plain(stream));
        }
        let io = |e: std::io::Error| PgError::Io(format!("asking {host} for TLS: {e}"));
        stream.write_all(&SSL_REQUEST).await.map_err(io)?;
        // Exactly one byte, unbuffered: anything the server sent after it before the
        // handshake would be unauthenticated (CVE-2021-23222), and it stays in the socket
        // for TLS to refuse.
        let answer = stream.read_u8().await.map_err(io)?;
        match answer {
            b'S' => {}
            b'N' if self.mode == SslMode::Prefer => return Ok(PgStream::Plain(stream)),
            b'N' => {
                return Err(PgError::Tls(format!(
                    "{host} does not accept TLS connections and database.sslmode={} requires TLS",
                    self.mode.name()
                )))
            }
            // An error before any TLS, e.g. too many connections: transient, retried. Its
            // text is not read, since nothing authenticated it.
            b'E' => {
                return Err(PgError::Io(format!(
                    "{host} answered the TLS request with an error (too many connections, or starting up?)"
                )))
            }
            other => {
                return Err(PgError::Protocol(format!(
                    "{host} answered the TLS request with byte {other:#04x}"
                )))
            }
        }
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| PgError::Tls(format!("{host:?} is not a host name for TLS: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.client_config()?));
        let tls = connector.connect(name, stream).await.map_err(|e| {
            // A refused certificate or protocol mismatch will not get better by retrying; a
            // reset or closed socket during the handshake may.
            let message = format!("TLS handshake with {host} failed: {e}");
            if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                PgError::Tls(message)
            } else {
                PgError::Io(message)
            }
        })?;
        Ok(PgStream::Tls(Box::new(tls)))
    }

    /// The rustls configuration; files are read on each connection, so renewed certificates
    /// take effect at the next reconnect.
    fn client_config(&self) -> Result<rustls::ClientConfig, PgError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // prefer falls back to plaintext whenever the server says so, so checking its
        // certificate would protect nothing: as with libpq, it is never checked.
        let roots = match (&self.root_cert, self.mode) {
            (_, SslMode::Prefer) | (None, SslMode::Require) => None,
            (Some(path), _) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_certs("database.sslrootcert", path)? {
                    roots
                        .add(cert)
                        .map_err(|e| file_error("database.sslrootcert", path, e))?;
                }
                Some(Arc::new(roots))
            }
            (None, _) => {
                return Err(PgError::Tls(format!(
                    "database.sslmode={} needs database.sslrootcert",
                    self.mode.name()
                )))
            }
        };
        let verifier = Arc::new(Verifier {
            provider: provider.clone(),
            roots,
            check_name: self.mode == SslMode::VerifyFull,
        });
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PgError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        match &self.client_cert {
            Some((cert, key)) => {
                let chain = read_certs("database.sslcert", cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| file_error("database.sslkey", key, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| file_error("database.sslcert", cert, e))
            }
            None => Ok(builder.with_no_client_auth()),
        }
    }
}

fn file_error(setting: &str, path: &Path, detail: impl fmt::Display) -> PgError {
    PgError::Tls(format!("{setting} {}: {detail}", path.display()))
}

fn read_certs(setting: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, PgError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(setting, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(setting, path, e))?;
    if certs.is_empty() {
        return Err(file_error(setting, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// What is checked of the server's certificate. Without roots nothing is (encrypted, not
/// authenticated: `prefer`, `require` without a root certificate); the server must still
/// prove it holds the certificate's key.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    roots: Option<Arc<rustls::RootCertStore>>,
    /// `verify-full`: the certificate must name the host.
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
            if self.check_name {
                rustls::client::verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl AsyncRead for PgStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PgStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_flush(cx),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            PgStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            PgStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    use super::*;

    struct Ca {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    fn ca() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca {
            cert: params.self_signed(&key).unwrap(),
            key,
        }
    }

    fn server_cert(ca: &Ca, name: &str, expired: bool) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        params
            .signed_by(&key, &ca.cert, &ca.key)
            .unwrap()
            .der()
            .clone()
    }

    fn verifier(ca: Option<&Ca>, check_name: bool) -> Verifier {
        Verifier {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            roots: ca.map(|ca| {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.cert.der().clone()).unwrap();
                Arc::new(roots)
            }),
            check_name,
        }
    }

    fn verify(v: &Verifier, cert: &CertificateDer<'_>, host: &str) -> Result<(), rustls::Error> {
        let name = ServerName::try_from(host.to_owned()).unwrap();
        v.verify_server_cert(cert, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn verify_ca_checks_the_chain_and_dates_but_not_the_name() {
        let (ours, theirs) = (ca(), ca());
        let good = server_cert(&ours, "db.example", false);
        let v = verifier(Some(&ours), false);
        assert!(verify(&v, &good, "db.example").is_ok());
        assert!(verify(&v, &good, "127.0.0.1").is_ok());
        assert!(verify(&v, &server_cert(&theirs, "db.example", false), "db.example").is_err());
        assert!(verify(&v, &server_cert(&ours, "db.example", true), "db.example").is_err());
    }

    #[test]
    fn verify_full_also_checks_the_name() {
        let ours = ca();
        let good = server_cert(&ours, "db.example", false);
        let v = verifier(Some(&ours), true);
        assert!(verify(&v, &good, "db.example").is_ok());
        assert!(matches!(
            verify(&v, &good, "other.example"),
            Err(rustls::Error::InvalidCertificate(_))
        ));
    }

    #[test]
    fn without_roots_any_certificate_is_accepted() {
        let v = verifier(None, false);
        assert!(verify(&v, &server_cert(&ca(), "x", true), "y").is_ok());
    }

    #[test]
    fn verify_modes_need_a_root_certificate() {
        let tls = PgTls {
            mode: SslMode::VerifyCa,
            ..PgTls::default()
        };
        assert!(matches!(tls.client_config(), Err(PgError::Tls(_))));
        let prefer = PgTls {
            root_cert: Some("/nonexistent.pem".into()),
            ..PgTls::default()
        };
        assert!(prefer.client_config().is_ok(), "prefer never reads it");
    }
}
