//! Verifying a CSR and keeping nothing of it but its public key.

use rcgen::{PublicKeyData, SignatureAlgorithm};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;

use super::CaError;

/// Largest CSR accepted, PEM.
const MAX_CSR_BYTES: usize = 64 * 1024;

/// The public key of a CSR whose self-signature verified.
#[derive(Debug, Clone)]
pub struct CsrPublicKey {
    key: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl CsrPublicKey {
    /// Parses a PEM CSR, verifies its signature and returns its public key (P-256, P-384,
    /// Ed25519 or RSA).
    pub fn from_verified_pem(pem: &str) -> Result<Self, CaError> {
        let bad = |detail: String| CaError::BadCsr(detail);
        if pem.len() > MAX_CSR_BYTES {
            return Err(bad(format!("larger than {MAX_CSR_BYTES} bytes")));
        }
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| bad(format!("not PEM ({e}); send a PEM \"CERTIFICATE REQUEST\"")))?;
        if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
            return Err(bad(format!(
                "a PEM {:?} block is not a CSR; send a \"CERTIFICATE REQUEST\"",
                block.label
            )));
        }
        let (_, csr) = X509CertificationRequest::from_der(&block.contents)
            .map_err(|e| bad(format!("not a PKCS#10 request ({e})")))?;
        csr.verify_signature().map_err(|e| {
            bad(format!(
                "its signature does not verify ({e}); it must be signed by the key it carries"
            ))
        })?;
        let spki = &csr.certification_request_info.subject_pki;
        let oid = &spki.algorithm.algorithm;
        let alg = if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(c) if c == OID_EC_P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
                Some(c) if c == OID_NIST_EC_P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
                _ => return Err(bad("unsupported EC curve; use P-256 or P-384".into())),
            }
        } else if *oid == OID_SIG_ED25519 {
            &rcgen::PKCS_ED25519
        } else if *oid == OID_PKCS1_RSAENCRYPTION {
            &rcgen::PKCS_RSA_SHA256
        } else {
            return Err(bad(format!(
                "unsupported key type {oid}; use EC P-256, P-384, Ed25519 or RSA"
            )));
        };
        Ok(CsrPublicKey {
            key: spki.subject_public_key.data.to_vec(),
            alg,
        })
    }
}

impl PublicKeyData for CsrPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.key
    }

    fn algorithm(&self) -> &SignatureAlgorithm {
        self.alg
    }
}
