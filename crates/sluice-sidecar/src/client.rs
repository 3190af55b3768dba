//! Talking to KSS: HTTPS verified against `--kss-ca` only (no public roots, no redirects), plain
//! HTTP only when explicitly allowed, and answers read with a size limit.

use sluice_kss::api::types::{CertificateRequest, CertificateResponse, ErrorResponse};

use crate::verify::TrustAnchors;
use crate::{SidecarConfig, SidecarError};

/// Largest answer read from KSS (a certificate plus a CA bundle is a few KiB).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Longest error message from KSS shown as is.
const MAX_MESSAGE_CHARS: usize = 2000;

/// A client for one KSS, built for one request round.
pub(crate) struct KssClient {
    url: String,
    http: reqwest::Client,
    anchors: Option<TrustAnchors>,
}

impl KssClient {
    /// Checks the URL scheme against the configuration and loads `--kss-ca`.
    pub(crate) fn new(config: &SidecarConfig) -> Result<Self, SidecarError> {
        let url = config.kss_url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| SidecarError::Config(format!("--kss {url:?} is not a URL: {e}")))?;
        let https = match parsed.scheme() {
            "https" => true,
            "http" if config.allow_insecure_http => false,
            "http" => {
                return Err(SidecarError::Config(format!(
                    "--kss {url} is plain HTTP: the token and certificate would travel in clear to an unauthenticated server; use https:// with --kss-ca (or --insecure-http for development)"
                )))
            }
            other => {
                return Err(SidecarError::Config(format!(
                    "--kss {url}: unsupported scheme {other:?}; use https://"
                )))
            }
        };
        let anchors = match &config.kss_ca {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    SidecarError::Config(format!("cannot read --kss-ca {}: {e}", path.display()))
                })?;
                Some(TrustAnchors::from_pem(&pem).map_err(|e| {
                    SidecarError::Config(format!("--kss-ca {} {e}", path.display()))
                })?)
            }
            None if https => {
                return Err(SidecarError::Config(
                    "--kss-ca FILE is required with an https:// KSS: the CA KSS's certificate and the certificates it issues must chain to (ca.pem in KSS's --ca-dir)".into(),
                ))
            }
            None => None,
        };
        let mut builder = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .https_only(https)
            // A redirect could carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        for der in anchors.iter().flat_map(TrustAnchors::der) {
            let cert = reqwest::Certificate::from_der(der)
                .map_err(|e| SidecarError::Config(format!("--kss-ca: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| {
            SidecarError::Config(format!("cannot build the HTTP client: {}", chain(&e)))
        })?;
        Ok(KssClient { url, http, anchors })
    }

    /// The CAs issued certificates must chain to.
    pub(crate) fn anchors(&self) -> Option<&TrustAnchors> {
        self.anchors.as_ref()
    }

    fn unavailable(&self, detail: String) -> SidecarError {
        SidecarError::Unavailable {
            url: self.url.clone(),
            detail,
        }
    }

    /// Asks KSS to sign `csr` for the holder of `token`.
    pub(crate) async fn request_certificate(
        &self,
        token: &str,
        request: &CertificateRequest,
    ) -> Result<CertificateResponse, SidecarError> {
        let response = self
            .http
            .post(format!("{}/v1/certificates", self.url))
            .bearer_auth(token)
            .json(request)
            .send()
            .await
            .map_err(|e| self.send_error(&e))?;
        let status = response.status();
        let body = read_limited(response)
            .await
            .map_err(|e| self.unavailable(format!("reading the answer: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                SidecarError::Untrusted(format!("KSS's answer is not a certificate response ({e})"))
            });
        }
        let text = String::from_utf8_lossy(&body);
        let message = serde_json::from_str::<ErrorResponse>(&text)
            .map(|e| e.error)
            .unwrap_or_else(|_| text.into_owned());
        let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        Err(if status.is_server_error() {
            self.unavailable(format!("HTTP {status}: {message}"))
        } else {
            SidecarError::Refused {
                status: status.as_u16(),
                message,
            }
        })
    }

    /// A failed send: a certificate KSS presented that does not verify is final, anything
    /// else (refused connection, reset, DNS) is worth retrying.
    fn send_error(&self, e: &reqwest::Error) -> SidecarError {
        match certificate_error(e) {
            Some(detail) => SidecarError::Untrusted(format!(
                "the server at {} presented a certificate that does not verify against --kss-ca ({detail}): it is not KSS, or --kss-ca is the wrong CA",
                self.url
            )),
            None => self.unavailable(chain(e)),
        }
    }
}

/// The rustls certificate error somewhere in `e`'s causes.
fn certificate_error(e: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        if let Some(rustls::Error::InvalidCertificate(reason)) = err.downcast_ref::<rustls::Error>()
        {
            return Some(format!("{reason:?}"));
        }
        cause = match err.downcast_ref::<std::io::Error>() {
            // An io::Error's source() skips the error it wraps (often another io::Error).
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// `e` and its causes, `: `-separated (reqwest's own message alone rarely says what failed).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(err) = cause {
        let next = err.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = err.source();
    }
    text
}

/// The body, refusing more than [`MAX_ANSWER_BYTES`].
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let too_large = || format!("larger than {MAX_ANSWER_BYTES} bytes");
    if response
        .content_length()
        .is_some_and(|l| l > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| chain(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
