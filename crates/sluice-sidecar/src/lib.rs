//! The credentials sidecar: generates a key pair locally (the private key never leaves the
//! host), has KSS sign it, and keeps `key.pem`, `cert.pem`, `ca.pem` and ready-to-use client
//! properties in a directory shared with the application, renewing before expiry.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use ring::rand::SecureRandom;
use sluice_kss::api::types::{CertificateRequest, CertificateResponse, ErrorResponse};
use sluice_kss::files::{write_atomic, FileMode};

/// First retry delay while KSS is unreachable.
const BACKOFF_START: Duration = Duration::from_secs(1);
/// Shortest wait between two renewals.
pub const MIN_RENEWAL_DELAY: Duration = Duration::from_secs(1);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Where the identity token comes from; read again for every request, since tokens are
/// short-lived and something else (a platform agent, a CI job) refreshes them.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// A file holding the token.
    File(PathBuf),
    /// The token itself (e.g. from an environment variable).
    Value(String),
}

impl TokenSource {
    fn read(&self) -> Result<String, SidecarError> {
        let token = match self {
            TokenSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
                SidecarError::Token(format!(
                    "cannot read the token file {}: {e}",
                    path.display()
                ))
            })?,
            TokenSource::Value(v) => v.clone(),
        };
        let token = token.trim().to_owned();
        if token.is_empty() {
            return Err(SidecarError::Token("the identity token is empty".into()));
        }
        Ok(token)
    }
}

/// Sidecar settings.
#[derive(Debug, Clone)]
pub struct SidecarConfig {
    /// KSS base URL, e.g. `http://kss:8090`.
    pub kss_url: String,
    /// Extra CA to trust for an `https://` KSS URL.
    pub kss_ca: Option<PathBuf>,
    /// Directory the credentials are written to.
    pub out_dir: PathBuf,
    /// The identity token.
    pub token: TokenSource,
    /// Requested certificate lifetime (KSS caps it).
    pub lifetime: Option<Duration>,
    /// Bootstrap servers written into the client properties, if known.
    pub bootstrap: Option<String>,
    /// How long `--once` keeps retrying an unreachable KSS.
    pub once_deadline: Duration,
}

/// Why the sidecar stopped.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// KSS answered with a refusal (bad token, disabled service, bad CSR): retrying will not help.
    #[error("KSS refused the certificate (HTTP {status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// KSS's explanation.
        message: String,
    },
    /// KSS could not be reached or failed; worth retrying.
    #[error("KSS at {url} is unavailable: {detail}")]
    Unavailable {
        /// The KSS URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The identity token could not be read.
    #[error("{0}")]
    Token(String),
    /// Key generation or CSR building failed.
    #[error("could not create the key pair or CSR: {0}")]
    Key(String),
    /// The credentials could not be written.
    #[error("could not write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("{0}")]
    Client(String),
}

impl SidecarError {
    fn retryable(&self) -> bool {
        matches!(self, SidecarError::Unavailable { .. })
    }
}

/// Credentials written to the directory.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate as KSS returned it.
    pub response: CertificateResponse,
    /// When to renew.
    pub renew_at: SystemTime,
}

fn http_client(config: &SidecarConfig) -> Result<reqwest::Client, SidecarError> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(ca) = &config.kss_ca {
        let pem = std::fs::read(ca).map_err(|e| {
            SidecarError::Client(format!("cannot read the KSS CA {}: {e}", ca.display()))
        })?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| SidecarError::Client(format!("bad KSS CA {}: {e}", ca.display())))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| SidecarError::Client(format!("cannot build the HTTP client: {e}")))
}

/// A fresh P-256 key and a CSR signed by it. The CSR's subject is informational only: KSS puts
/// the authenticated service id in the certificate.
fn key_and_csr() -> Result<(KeyPair, String), SidecarError> {
    let key = KeyPair::generate().map_err(|e| SidecarError::Key(e.to_string()))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .and_then(|c| c.pem())
        .map_err(|e| SidecarError::Key(e.to_string()))?;
    Ok((key, csr))
}

/// One attempt: new key, CSR, call KSS, write the files.
pub async fn obtain_once(config: &SidecarConfig) -> Result<Issued, SidecarError> {
    let client = http_client(config)?;
    let token = config.token.read()?;
    let (key, csr) = key_and_csr()?;
    let url = format!("{}/v1/certificates", config.kss_url.trim_end_matches('/'));
    let unavailable = |detail: String| SidecarError::Unavailable {
        url: config.kss_url.clone(),
        detail,
    };
    let response = client
        .post(&url)
        .bearer_auth(token)
        .json(&CertificateRequest {
            csr,
            lifetime_secs: config.lifetime.map(|l| l.as_secs()),
        })
        .send()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorResponse>(&body)
            .map(|e| e.error)
            .unwrap_or(body);
        return Err(if status.is_server_error() {
            unavailable(format!("HTTP {status}: {message}"))
        } else {
            SidecarError::Refused {
                status: status.as_u16(),
                message,
            }
        });
    }
    let issued: CertificateResponse = response
        .json()
        .await
        .map_err(|e| unavailable(format!("unreadable answer: {e}")))?;
    write_credentials(
        &config.out_dir,
        &key.serialize_pem(),
        &issued,
        config.bootstrap.as_deref(),
    )?;
    // Measured from receipt, not from not_before: KSS backdates not_before by a few minutes.
    let received = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let renew_at = renewal_time(received, issued.not_after, jitter_fraction());
    tracing::info!(
        service = %issued.service,
        serial = %issued.serial,
        not_after = issued.not_after,
        dir = %config.out_dir.display(),
        "wrote new credentials"
    );
    Ok(Issued {
        response: issued,
        renew_at,
    })
}

/// A random fraction in [-0.05, 0.05) of the lifetime, so a fleet started together does not
/// renew together.
fn jitter_fraction() -> f64 {
    let mut b = [0u8; 2];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    (f64::from(u16::from_le_bytes(b)) / 65536.0 - 0.5) / 10.0
}

/// When to renew a certificate received at `received` and valid until `not_after` (unix
/// seconds): at about two thirds of its remaining lifetime, shifted by `jitter` (a fraction of
/// it), and never sooner than [`MIN_RENEWAL_DELAY`] so a short lifetime cannot spin.
pub fn renewal_time(received: u64, not_after: u64, jitter: f64) -> SystemTime {
    let lifetime = not_after.saturating_sub(received) as f64;
    let offset = Duration::try_from_secs_f64((lifetime * (2.0 / 3.0 + jitter)).max(0.0))
        .unwrap_or(Duration::MAX)
        .max(MIN_RENEWAL_DELAY);
    // An absurd not_after from the server must not overflow the clock arithmetic.
    let received = UNIX_EPOCH + Duration::from_secs(received.min(u64::from(u32::MAX)));
    received
        .checked_add(offset.min(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(received)
}

/// Writes the credentials into `dir`, each file replaced atomically through the one helper KSS
/// uses too (never following a link planted in `dir`). The key is written before
/// the certificate, so a reader that sees the new certificate also finds its key.
pub fn write_credentials(
    dir: &Path,
    key_pem: &str,
    issued: &CertificateResponse,
    bootstrap: Option<&str>,
) -> Result<(), SidecarError> {
    std::fs::create_dir_all(dir).map_err(|source| SidecarError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let write = |name: &str, contents: &str, private: bool| {
        let path = dir.join(name);
        let mode = if private {
            FileMode::Private
        } else {
            FileMode::Shared
        };
        write_atomic(&path, contents.as_bytes(), mode)
            .map_err(|source| SidecarError::Write { path, source })
    };
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    write("ca.pem", &issued.ca, false)?;
    write("key.pem", key_pem, true)?;
    write("cert.pem", &issued.certificate, false)?;
    // Java's PEM keystore wants the key and its chain in one file.
    write(
        "keystore.pem",
        &format!("{key_pem}{}", issued.certificate),
        true,
    )?;
    write(
        "client.properties",
        &librdkafka_properties(&abs, bootstrap),
        false,
    )?;
    write(
        "client-java.properties",
        &java_properties(&abs, bootstrap),
        false,
    )?;
    Ok(())
}

fn bootstrap_line(bootstrap: Option<&str>) -> String {
    bootstrap
        .map(|b| format!("bootstrap.servers={b}\n"))
        .unwrap_or_default()
}

/// librdkafka settings (confluent-kafka clients, kcat `-F`, `sluice -X`).
pub fn librdkafka_properties(dir: &Path, bootstrap: Option<&str>) -> String {
    format!(
        "# Written by sluice sidecar: librdkafka (confluent-kafka, kcat -F) settings.\n{}security.protocol=SSL\nssl.ca.location={}\nssl.certificate.location={}\nssl.key.location={}\n",
        bootstrap_line(bootstrap),
        dir.join("ca.pem").display(),
        dir.join("cert.pem").display(),
        dir.join("key.pem").display(),
    )
}

/// Java client settings (PEM key and trust stores, Kafka 2.7+).
pub fn java_properties(dir: &Path, bootstrap: Option<&str>) -> String {
    format!(
        "# Written by sluice sidecar: Java client settings.\n{}security.protocol=SSL\nssl.keystore.type=PEM\nssl.keystore.location={}\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
        bootstrap_line(bootstrap),
        dir.join("keystore.pem").display(),
        dir.join("ca.pem").display(),
    )
}

/// Obtains credentials, retrying with backoff while KSS is unavailable, until `deadline`
/// (`None`: forever). Refusals end it at once.
pub async fn obtain_with_retry(
    config: &SidecarConfig,
    deadline: Option<tokio::time::Instant>,
) -> Result<Issued, SidecarError> {
    let mut delay = BACKOFF_START;
    loop {
        match obtain_once(config).await {
            Ok(issued) => return Ok(issued),
            Err(e) if e.retryable() => {
                if deadline.is_some_and(|d| tokio::time::Instant::now() + delay > d) {
                    return Err(e);
                }
                tracing::warn!("{e}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(BACKOFF_MAX);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs until `stop` resolves: obtains credentials, then renews them at about two thirds of each
/// certificate's lifetime.
pub async fn run(
    config: SidecarConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), SidecarError> {
    tokio::pin!(stop);
    loop {
        let issued = tokio::select! {
            r = obtain_with_retry(&config, None) => r?,
            _ = &mut stop => return Ok(()),
        };
        let wait = issued
            .renew_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        tracing::info!("next renewal in {} s", wait.as_secs());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_at_two_thirds_with_bounded_jitter() {
        let at = |j| {
            renewal_time(1000, 1000 + 3000, j)
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert_eq!(at(0.0), 3000);
        assert!((2849..=3151).contains(&at(0.05)) && (2849..=3151).contains(&at(-0.05)));
        // A hostile or broken not_after must not panic the clock arithmetic.
        assert!(renewal_time(u64::MAX, u64::MAX, 0.05) >= UNIX_EPOCH);
        assert!(renewal_time(0, u64::MAX, 0.05) > UNIX_EPOCH);
        let expired = renewal_time(1000, 900, 0.0)
            .duration_since(UNIX_EPOCH)
            .unwrap();
        assert_eq!(
            expired,
            Duration::from_secs(1001),
            "never sooner than the minimum delay"
        );
        for _ in 0..100 {
            assert!(jitter_fraction().abs() <= 0.05);
        }
    }

    #[test]
    fn credentials_are_written_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let issued = CertificateResponse {
            service: "s".into(),
            certificate: "CERT\n".into(),
            ca: "CA\n".into(),
            serial: "01".into(),
            not_before: 0,
            not_after: 1,
        };
        write_credentials(dir.path(), "KEY\n", &issued, Some("h:9093")).unwrap();
        let props = std::fs::read_to_string(dir.path().join("client.properties")).unwrap();
        assert!(props.contains("bootstrap.servers=h:9093\n"));
        assert!(props.contains(&format!(
            "ssl.key.location={}",
            dir.path().join("key.pem").display()
        )));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keystore.pem")).unwrap(),
            "KEY\nCERT\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |n: &str| {
                std::fs::metadata(dir.path().join(n))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode("key.pem"), 0o600);
            assert_eq!(mode("keystore.pem"), 0o600);
        }
    }

    #[tokio::test]
    async fn an_unreachable_kss_is_retried_until_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let config = SidecarConfig {
            kss_url: "http://127.0.0.1:1".into(),
            kss_ca: None,
            out_dir: dir.path().into(),
            token: TokenSource::Value("t".into()),
            lifetime: None,
            bootstrap: None,
            once_deadline: Duration::from_secs(2),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let err = obtain_with_retry(&config, Some(deadline))
            .await
            .unwrap_err();
        assert!(matches!(err, SidecarError::Unavailable { .. }), "{err}");
        assert!(!dir.path().join("key.pem").exists());
    }
}
