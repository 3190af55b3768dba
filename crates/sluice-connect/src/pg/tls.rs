//! TLS to PostgreSQL, with libpq's `sslmode` meanings: the client asks with an `SSLRequest`,
//! the server answers one byte (`S` or `N`), and only then does the TLS handshake start on
//! the same socket.

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
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
    /// TLS when the server offers it, plaintext otherwise; verified like `Require`.
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
            other => {
                return Err(PgError::Protocol(format!(
                    "{host} answered the TLS request with byte {other:#04x}"
                )))
            }
        }
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| PgError::Tls(format!("{host:?} is not a host name for TLS: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.client_config()?));
        let tls = connector
            .connect(name, stream)
            .await
            .map_err(|e| PgError::Tls(format!("TLS handshake with {host} failed: {e}")))?;
        Ok(PgStream::Tls(Box::new(tls)))
    }

    /// The rustls configuration; files are read on each connection, so renewed certificates
    /// take effect at the next reconnect.
    fn client_config(&self) -> Result<rustls::ClientConfig, PgError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (&self.root_cert, self.mode) {
            (Some(path), mode) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_certs("database.sslrootcert", path)? {
                    roots
                        .add(cert)
                        .map_err(|e| file_error("database.sslrootcert", path, e))?;
                }
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| file_error("database.sslrootcert", path, e))?;
                Arc::new(Verifier {
                    webpki,
                    check_name: mode == SslMode::VerifyFull,
                })
            }
            (None, SslMode::VerifyCa | SslMode::VerifyFull) => {
                return Err(PgError::Tls(format!(
                    "database.sslmode={} needs database.sslrootcert",
                    self.mode.name()
                )))
            }
            // prefer and require without a root certificate: encrypted, not authenticated,
            // as with libpq.
            (None, _) => Arc::new(EncryptOnly(provider.clone())),
        };
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

/// Chain verification against the configured roots; the host name only for `verify-full`.
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // webpki checks the name last, so a name error means the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Accepts any certificate but still checks that the server holds its key.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
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
