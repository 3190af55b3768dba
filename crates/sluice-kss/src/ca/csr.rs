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

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;
    use crate::identity::keys::pem_encode;

    /// A valid CSR, DER, and the byte ranges its signature covers or is: any change there must
    /// make it refused.
    fn valid() -> &'static (Vec<u8>, Vec<std::ops::Range<usize>>) {
        static CSR: OnceLock<(Vec<u8>, Vec<std::ops::Range<usize>>)> = OnceLock::new();
        CSR.get_or_init(|| {
            let key = rcgen::KeyPair::generate().unwrap();
            let pem = rcgen::CertificateParams::new(vec!["x.example".to_owned()])
                .unwrap()
                .serialize_request(&key)
                .unwrap()
                .pem()
                .unwrap();
            let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
            let der = block.contents;
            let (_, csr) = X509CertificationRequest::from_der(&der).unwrap();
            let info = csr.certification_request_info.raw;
            let start = info.as_ptr() as usize - der.as_ptr() as usize;
            let signed = start..start + info.len();
            // The last bytes of the ECDSA signature's `s` value.
            let signature = der.len() - 8..der.len();
            (der.clone(), vec![signed, signature])
        })
    }

    #[test]
    fn the_unmutated_csr_is_accepted() {
        let (der, _) = valid();
        assert!(CsrPublicKey::from_verified_pem(&pem_encode("CERTIFICATE REQUEST", der)).is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics_or_passes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let text = String::from_utf8_lossy(&bytes);
            prop_assert!(CsrPublicKey::from_verified_pem(&text).is_err());
        }

        #[test]
        fn arbitrary_der_in_a_csr_pem_block_never_panics_or_passes(der in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let pem = pem_encode("CERTIFICATE REQUEST", &der);
            prop_assert!(CsrPublicKey::from_verified_pem(&pem).is_err());
        }

        #[test]
        fn a_csr_changed_where_its_signature_matters_is_refused(
            which in 0usize..2,
            offset in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let (der, ranges) = valid();
            let range = &ranges[which];
            let at = range.start + offset.index(range.len());
            let mut mutated = der.clone();
            mutated[at] ^= flip;
            let pem = pem_encode("CERTIFICATE REQUEST", &mutated);
            prop_assert!(matches!(CsrPublicKey::from_verified_pem(&pem), Err(CaError::BadCsr(_))));
        }

        #[test]
        fn a_truncated_csr_is_refused(cut in any::<prop::sample::Index>()) {
            let (der, _) = valid();
            let pem = pem_encode("CERTIFICATE REQUEST", &der[..cut.index(der.len())]);
            prop_assert!(CsrPublicKey::from_verified_pem(&pem).is_err());
        }
    }
}
