//! TLS for SSL listeners: a rustls server configuration built from PEM files, reloaded when
//! the files change (the credentials sidecar renews certificates in place), plus the peer
//! certificate -> principal step of the handshake.
//!
//! The files are checked at most once per [`RELOAD_CHECK_INTERVAL`], on a handshake: three
//! `stat` calls, and a rebuild only when a file's mtime, size or inode changed. A rebuild that
//! fails (say the sidecar has written the certificate but not yet its key) keeps the previous
//! configuration and is retried at the next check.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::auth::principal::{self, KafkaPrincipal, PrincipalError, PrincipalMapper};
pub use crate::config::{ClientAuth, TlsSettings};

/// How often a handshake may look at the certificate files for changes.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}; check the path and its permissions")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the expected kind.
    #[error("{path} contains no {what} in PEM format")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was expected ("certificate", "private key").
        what: &'static str,
    },
    /// Client certificates are requested but no CA bundle is configured.
    #[error("ssl.client.auth={0:?} needs a CA bundle (ssl.truststore / ca file) to verify client certificates")]
    MissingCa(ClientAuth),
    /// rustls refused the certificates or key (e.g. the key does not match the certificate).
    #[error("invalid TLS configuration: {0}")]
    Rustls(String),
}

/// A file's identity for change detection.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

#[derive(Debug)]
struct ReloadState {
    last_check: Instant,
    stamps: Vec<Stamp>,
}

/// Hands out TLS acceptors for one listener, rebuilding the configuration when its files
/// change.
#[derive(Debug)]
pub struct TlsAcceptorSource {
    settings: TlsSettings,
    current: ArcSwap<ServerConfig>,
    reload: parking_lot::Mutex<ReloadState>,
}

impl TlsAcceptorSource {
    /// Loads the files now; errors here stop the broker from starting.
    pub fn new(settings: TlsSettings) -> Result<Self, TlsError> {
        let stamps = stamps(&settings);
        let config = build_config(&settings)?;
        Ok(TlsAcceptorSource {
            settings,
            current: ArcSwap::from_pointee(config),
            reload: parking_lot::Mutex::new(ReloadState {
                last_check: Instant::now(),
                stamps,
            }),
        })
    }

    /// The listener's settings.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// An acceptor with the current configuration (reloaded first if the files changed).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.reload_if_due(RELOAD_CHECK_INTERVAL);
        TlsAcceptor::from(self.current.load_full())
    }

    /// Rebuilds the configuration if at least `interval` passed since the last check and a
    /// file changed. Returns true when a new configuration was installed.
    pub fn reload_if_due(&self, interval: Duration) -> bool {
        // Another handshake already checking is as good as checking ourselves.
        let Some(mut state) = self.reload.try_lock() else {
            return false;
        };
        if state.last_check.elapsed() < interval {
            return false;
        }
        state.last_check = Instant::now();
        let now = stamps(&self.settings);
        if now == state.stamps {
            return false;
        }
        match build_config(&self.settings) {
            Ok(config) => {
                self.current.store(Arc::new(config));
                state.stamps = now;
                info!(cert = %self.settings.cert.display(), "TLS certificates reloaded");
                true
            }
            Err(e) => {
                warn!(error = %e, "TLS files changed but could not be loaded; keeping the previous certificates and retrying");
                false
            }
        }
    }
}

fn stamps(settings: &TlsSettings) -> Vec<Stamp> {
    let mut paths = vec![settings.cert.as_path(), settings.key.as_path()];
    paths.extend(settings.ca.as_deref());
    paths.into_iter().map(stamp).collect()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// Builds the rustls configuration from the files in `settings`.
pub fn build_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&settings.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&read(&settings.key)?).map_err(|_| TlsError::Pem {
        path: settings.key.clone(),
        what: "private key",
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match (settings.client_auth, &settings.ca) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (mode, None) => return Err(TlsError::MissingCa(mode)),
        (mode, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Rustls(format!("CA bundle {}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Rustls(e.to_string()))?,
            )
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))
}

/// The verified leaf certificate the client presented, if any.
pub fn peer_certificate(conn: &ServerConnection) -> Option<&CertificateDer<'static>> {
    conn.peer_certificates().and_then(<[_]>::first)
}

/// The principal of a TLS client: from its certificate through the mapping rules, or
/// `User:ANONYMOUS` without one.
pub fn peer_principal(
    conn: &ServerConnection,
    mapper: &PrincipalMapper,
) -> Result<KafkaPrincipal, PrincipalError> {
    match peer_certificate(conn) {
        Some(cert) => principal::principal_from_certificate(cert.as_ref(), mapper),
        None => Ok(KafkaPrincipal::anonymous()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use rustls::ClientConfig;
    use rustls_pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Ca {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    fn ca(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca {
            cert: params.self_signed(&key).unwrap(),
            key,
        }
    }

    /// A leaf certificate signed by `ca`: (cert PEM, key PEM).
    fn leaf(ca: &Ca, cn: &str, sans: &[&str], expired: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        // A fresh name: rcgen's default holds a CN that a later push would replace in place.
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, "prod");
        params.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    struct Files {
        dir: tempfile::TempDir,
        settings: TlsSettings,
    }

    fn files(ca: &Ca, mode: ClientAuth) -> Files {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = leaf(ca, "broker", &["localhost"], false);
        std::fs::write(dir.path().join("server.pem"), cert).unwrap();
        std::fs::write(dir.path().join("server.key"), key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
        let settings = TlsSettings {
            cert: dir.path().join("server.pem"),
            key: dir.path().join("server.key"),
            ca: Some(dir.path().join("ca.pem")),
            client_auth: mode,
        };
        Files { dir, settings }
    }

    fn client_config(trust: &Ca, identity: Option<(String, String)>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(trust.cert.der().clone()).unwrap();
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                    .map(Result::unwrap)
                    .collect();
                builder
                    .with_client_auth_cert(
                        chain,
                        PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                    )
                    .unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        Arc::new(config)
    }

    /// Runs one handshake plus a byte echo; returns the server's view of the principal.
    async fn handshake(
        source: &TlsAcceptorSource,
        client: Arc<ClientConfig>,
    ) -> Result<KafkaPrincipal, String> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let acceptor = source.acceptor();
        let server = tokio::spawn(async move {
            let mut tls = acceptor
                .accept(server_io)
                .await
                .map_err(|e| e.to_string())?;
            let principal = peer_principal(tls.get_ref().1, &PrincipalMapper::default())
                .map_err(|e| e.to_string())?;
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
            tls.write_all(&byte).await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(principal)
        });
        let connector = tokio_rustls::TlsConnector::from(client);
        let client_side = async {
            let mut tls = connector
                .connect(ServerName::try_from("localhost").unwrap(), client_io)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"x").await.map_err(|e| e.to_string())?;
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(())
        };
        let client_result = client_side.await;
        let server_result = server.await.unwrap();
        client_result?;
        server_result
    }

    #[tokio::test]
    async fn required_client_auth_accepts_only_valid_certificates_of_the_ca() {
        let ca1 = ca("ca-one");
        let other = ca("ca-other");
        let f = files(&ca1, ClientAuth::Required);
        let source = TlsAcceptorSource::new(f.settings.clone()).unwrap();

        let good = client_config(&ca1, Some(leaf(&ca1, "orders-svc", &[], false)));
        assert_eq!(
            handshake(&source, good).await.unwrap().as_str(),
            "User:CN=orders-svc,OU=prod"
        );
        let foreign = client_config(&ca1, Some(leaf(&other, "orders-svc", &[], false)));
        assert!(handshake(&source, foreign).await.is_err());
        let expired = client_config(&ca1, Some(leaf(&ca1, "orders-svc", &[], true)));
        assert!(handshake(&source, expired).await.is_err());
        let anonymous = client_config(&ca1, None);
        assert!(handshake(&source, anonymous).await.is_err());
    }

    #[tokio::test]
    async fn requested_and_no_client_auth_let_anonymous_clients_in() {
        let ca1 = ca("ca-one");
        let f = files(&ca1, ClientAuth::Requested);
        let source = TlsAcceptorSource::new(f.settings.clone()).unwrap();
        assert_eq!(
            handshake(&source, client_config(&ca1, None)).await.unwrap(),
            KafkaPrincipal::anonymous()
        );
        let with_cert = client_config(&ca1, Some(leaf(&ca1, "billing-svc", &[], false)));
        assert_eq!(
            handshake(&source, with_cert).await.unwrap().as_str(),
            "User:CN=billing-svc,OU=prod"
        );

        let none = TlsAcceptorSource::new(TlsSettings {
            client_auth: ClientAuth::None,
            ..f.settings.clone()
        })
        .unwrap();
        assert_eq!(
            handshake(&none, client_config(&ca1, None)).await.unwrap(),
            KafkaPrincipal::anonymous()
        );
    }

    #[tokio::test]
    async fn changed_files_are_reloaded_without_restart() {
        let ca1 = ca("ca-one");
        let ca2 = ca("ca-two");
        let f = files(&ca1, ClientAuth::None);
        let source = TlsAcceptorSource::new(f.settings.clone()).unwrap();
        assert!(handshake(&source, client_config(&ca2, None)).await.is_err());
        assert!(
            !source.reload_if_due(Duration::ZERO),
            "unchanged files must not reload"
        );

        // A half-written renewal (new certificate, old key) keeps the old configuration.
        let (cert, key) = leaf(&ca2, "broker", &["localhost"], false);
        std::fs::write(&f.settings.cert, &cert).unwrap();
        assert!(!source.reload_if_due(Duration::ZERO));
        assert!(handshake(&source, client_config(&ca1, None)).await.is_ok());

        std::fs::write(f.dir.path().join("server.key.tmp"), &key).unwrap();
        std::fs::rename(f.dir.path().join("server.key.tmp"), &f.settings.key).unwrap();
        assert!(source.reload_if_due(Duration::ZERO));
        assert!(handshake(&source, client_config(&ca2, None)).await.is_ok());
        assert!(handshake(&source, client_config(&ca1, None)).await.is_err());
    }

    #[test]
    fn configuration_errors_name_the_problem() {
        let ca1 = ca("ca-one");
        let f = files(&ca1, ClientAuth::Required);
        let no_ca = TlsSettings {
            ca: None,
            ..f.settings.clone()
        };
        assert!(matches!(
            TlsAcceptorSource::new(no_ca),
            Err(TlsError::MissingCa(ClientAuth::Required))
        ));
        let missing = TlsSettings {
            cert: f.dir.path().join("nope.pem"),
            ..f.settings.clone()
        };
        assert!(matches!(
            TlsAcceptorSource::new(missing),
            Err(TlsError::Read { .. })
        ));
        let key_as_cert = TlsSettings {
            cert: f.settings.key.clone(),
            ..f.settings.clone()
        };
        assert!(matches!(
            TlsAcceptorSource::new(key_as_cert),
            Err(TlsError::Pem { .. })
        ));
        assert_eq!(ClientAuth::parse("Required"), Some(ClientAuth::Required));
        assert_eq!(ClientAuth::parse("bogus"), None);
    }
}
