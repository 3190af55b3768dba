//! The credentials sidecar: generates a key pair locally (the private key never leaves the
//! host), has KSS sign it over HTTPS, checks what comes back, and keeps `key.pem`, `cert.pem`,
//! `ca.pem` and ready-to-use client properties in a directory shared with the application,
//! renewing before expiry.

mod client;
mod credentials;
pub mod verify;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use ring::rand::SecureRandom;
use sluice_kss::api::types::{CertificateRequest, CertificateResponse};
use sluice_kss::identity::jwt::unverified_subject;
use tokio::time::Instant;

pub use credentials::{java_properties, librdkafka_properties, write_credentials};

/// First retry delay while KSS is unreachable.
const BACKOFF_START: Duration = Duration::from_secs(1);
/// Shortest wait between two renewals.
pub const MIN_RENEWAL_DELAY: Duration = Duration::from_secs(1);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Longest one request round may take when no earlier deadline applies.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// KSS base URL, e.g. `https://kss:8090`.
    pub kss_url: String,
    /// CA certificates (PEM) that KSS's HTTPS certificate and the certificates it issues must
    /// chain to; required for `https://`.
    pub kss_ca: Option<PathBuf>,
    /// Accept an `http://` KSS URL (development only: no authentication of KSS, everything in
    /// clear).
    pub allow_insecure_http: bool,
    /// Directory the credentials are written to.
    pub out_dir: PathBuf,
    /// The identity token.
    pub token: TokenSource,
    /// Requested certificate lifetime (KSS caps it).
    pub lifetime: Option<Duration>,
    /// Bootstrap servers written into the client properties, if known.
    pub bootstrap: Option<String>,
    /// How long `--once` may take in all, retries included.
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
    /// KSS could not be reached, did not answer in time, or failed; worth retrying.
    #[error("KSS at {url} is unavailable: {detail}")]
    Unavailable {
        /// The KSS URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The server is not the KSS expected, or its answer is not a certificate this sidecar can
    /// use; nothing on disk was replaced.
    #[error("refusing KSS's answer, the existing credentials are kept: {0}")]
    Untrusted(String),
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
    /// The settings are unusable (URL, `--kss-ca`).
    #[error("{0}")]
    Config(String),
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

/// One attempt: new key, CSR, call KSS, check the answer, write the files. Nothing is written
/// unless the answer passes [`verify::check_answer`].
pub async fn obtain_once(config: &SidecarConfig) -> Result<Issued, SidecarError> {
    let kss = client::KssClient::new(config)?;
    let token = config.token.read()?;
    let service = unverified_subject(&token)
        .map_err(|e| SidecarError::Token(format!("the identity token is unusable: {e}")))?;
    let (key, csr) = key_and_csr()?;
    let request = CertificateRequest {
        csr,
        lifetime_secs: config.lifetime.map(|l| l.as_secs()),
    };
    let answer = kss.request_certificate(&token, &request).await?;
    let public_key = key.public_key_der();
    let received = unix_now();
    let not_after = verify::check_answer(
        &answer,
        &verify::Expected {
            public_key_der: &public_key,
            service: &service,
            anchors: kss.anchors(),
            now: received,
        },
    )
    .map_err(SidecarError::Untrusted)?;
    write_credentials(
        &config.out_dir,
        &key.serialize_pem(),
        &answer,
        config.bootstrap.as_deref(),
    )?;
    // From the checked certificate, not the answer's own fields; measured from receipt, not
    // from not_before, which KSS backdates by a few minutes.
    let renew_at = renewal_time(received, not_after, jitter_fraction());
    tracing::info!(
        service = %answer.service,
        serial = %answer.serial,
        not_after,
        dir = %config.out_dir.display(),
        "wrote new credentials"
    );
    Ok(Issued {
        response: answer,
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

/// One attempt bounded by `deadline` (or [`REQUEST_TIMEOUT`], whichever is sooner): every step,
/// connecting, the TLS handshake, waiting for and reading the answer, ends by then.
async fn attempt(
    config: &SidecarConfig,
    deadline: Option<Instant>,
) -> Result<Issued, SidecarError> {
    let limit = Instant::now() + REQUEST_TIMEOUT;
    let until = deadline.map_or(limit, |d| d.min(limit));
    match tokio::time::timeout_at(until, obtain_once(config)).await {
        Ok(result) => result,
        Err(_) => Err(SidecarError::Unavailable {
            url: config.kss_url.clone(),
            detail: if deadline == Some(until) {
                "no answer before the deadline".into()
            } else {
                format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())
            },
        }),
    }
}

/// Obtains credentials, retrying with backoff while KSS is unavailable, until `deadline`
/// (`None`: forever), which bounds every request as well as the waits between them. Refusals
/// end it at once.
pub async fn obtain_with_retry(
    config: &SidecarConfig,
    deadline: Option<Instant>,
) -> Result<Issued, SidecarError> {
    let mut delay = BACKOFF_START;
    loop {
        match attempt(config, deadline).await {
            Ok(issued) => return Ok(issued),
            Err(e) if e.retryable() => {
                let wait = match deadline {
                    Some(d) if Instant::now() + delay >= d => return Err(e),
                    _ => delay,
                };
                tracing::warn!("{e}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
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
mod tests;
