//! Checking KSS's answer before anything on disk is replaced. HTTPS says the answer came from
//! KSS; these checks say it is usable and what was asked for, so a broken or impersonated KSS
//! cannot make the sidecar throw away working credentials for a certificate that belongs to
//! another key, another service, another CA, or another time.

use sluice_kss::api::types::CertificateResponse;
use sluice_kss::service::ServiceId;
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::OID_X509_COMMON_NAME;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;

/// CA certificates the sidecar trusts (`--kss-ca`): KSS's HTTPS certificate and every
/// certificate KSS issues must chain to one of them.
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    der: Vec<Vec<u8>>,
}

/// The `CERTIFICATE` blocks of `pem`, each checked to be an X.509 certificate; at least one.
fn certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| format!("not PEM ({e})"))?;
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "holds a PEM {:?} block, only CERTIFICATE blocks are expected",
                block.label
            ));
        }
        parse_whole(&block.contents)?;
        out.push(block.contents);
    }
    if out.is_empty() {
        return Err("holds no PEM CERTIFICATE".into());
    }
    Ok(out)
}

/// Parses one DER certificate with nothing after it.
fn parse_whole(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err("trailing bytes after the certificate".into()),
        Err(e) => Err(format!("not an X.509 certificate ({e})")),
    }
}

impl TrustAnchors {
    /// The certificates of a PEM bundle.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        Ok(TrustAnchors {
            der: certificates(pem)?,
        })
    }

    /// Each certificate, DER.
    pub fn der(&self) -> impl Iterator<Item = &[u8]> {
        self.der.iter().map(Vec::as_slice)
    }

    /// True when one of the anchors is `cert`'s issuer and its signature verifies.
    fn signed(&self, cert: &X509Certificate<'_>) -> bool {
        self.der
            .iter()
            .filter_map(|der| parse_whole(der).ok())
            .any(|anchor| {
                anchor.subject().as_raw() == cert.issuer().as_raw()
                    && cert.verify_signature(Some(anchor.public_key())).is_ok()
            })
    }
}

/// What the answer must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The SubjectPublicKeyInfo (DER) of the key this sidecar generated.
    pub public_key_der: &'a [u8],
    /// The service this sidecar's token is for.
    pub service: &'a ServiceId,
    /// The CAs the certificate must chain to; `None` only with `--insecure-http` and no
    /// `--kss-ca`.
    pub anchors: Option<&'a TrustAnchors>,
    /// Now, unix seconds.
    pub now: u64,
}

/// Checks `answer` against `expected`; `Ok` is the certificate's not-after (unix seconds), the
/// only time renewal trusts. `Err` says what is wrong.
pub fn check_answer(answer: &CertificateResponse, expected: &Expected<'_>) -> Result<u64, String> {
    let service = expected.service.as_str();
    if answer.service != service {
        return Err(format!(
            "it is for service {:?}, this sidecar's token is for {service:?}",
            answer.service
        ));
    }
    let blocks =
        certificates(answer.certificate.as_bytes()).map_err(|e| format!("its certificate {e}"))?;
    let [der] = blocks.as_slice() else {
        return Err(format!(
            "it holds {} certificates, one is expected",
            blocks.len()
        ));
    };
    let cert = parse_whole(der)?;
    if cert.public_key().raw != expected.public_key_der {
        return Err(
            "the certificate's public key is not the key this sidecar generated (it would not work with key.pem)"
                .into(),
        );
    }
    if common_name_only(&cert) != Some(service) {
        return Err(format!(
            "the certificate's subject is {:?}, expected exactly \"CN={service}\"",
            cert.subject().to_string()
        ));
    }
    if cert.is_ca() {
        return Err("the certificate is a CA certificate, not a client certificate".into());
    }
    let now = i64::try_from(expected.now)
        .ok()
        .and_then(|n| ASN1Time::from_timestamp(n).ok())
        .ok_or("the system clock is out of range")?;
    if !cert.validity().is_valid_at(now) {
        return Err(format!(
            "the certificate is not valid now (valid from {} to {})",
            cert.validity().not_before,
            cert.validity().not_after
        ));
    }
    if let Some(anchors) = expected.anchors {
        if !anchors.signed(&cert) {
            return Err(format!(
                "the certificate (issuer {:?}) is not signed by a CA in --kss-ca",
                cert.issuer().to_string()
            ));
        }
    }
    certificates(answer.ca.as_bytes()).map_err(|e| format!("its CA bundle {e}"))?;
    Ok(u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0))
}

/// The subject's value when it is exactly one CN and nothing else.
fn common_name_only<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a str> {
    let mut attributes = cert.subject().iter().flat_map(|rdn| rdn.iter());
    let only = attributes.next()?;
    if attributes.next().is_some() || only.attr_type() != &OID_X509_COMMON_NAME {
        return None;
    }
    only.as_str().ok()
}

#[cfg(test)]
mod tests;
