//! Just enough PEM and DER to read a SubjectPublicKeyInfo: which algorithm, and the key bits.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// DER of the OIDs that matter here.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;

/// A public key's type and the bytes the verifier takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SpkiKey {
    /// PKCS#1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
    /// Uncompressed P-256 point.
    P256(Vec<u8>),
    /// Uncompressed P-384 point.
    P384(Vec<u8>),
    /// 32-byte Ed25519 key.
    Ed25519(Vec<u8>),
}

/// The DER contents of every `label` block in `pem`.
pub(crate) fn blocks(pem: &str, label: &str) -> Result<Vec<Vec<u8>>, &'static str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let body = &rest[start + begin.len()..];
        let stop = body.find(&end).ok_or("PEM block without END line")?;
        let b64: String = body[..stop].split_whitespace().collect();
        out.push(
            STANDARD
                .decode(b64)
                .map_err(|_| "PEM block is not base64")?,
        );
        rest = &body[stop + end.len()..];
    }
    Ok(out)
}

/// Reads one DER element: `(tag, contents, rest)`.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// Parses a SubjectPublicKeyInfo.
pub(crate) fn spki(der: &[u8]) -> Result<SpkiKey, &'static str> {
    let bad = "not a SubjectPublicKeyInfo";
    let (SEQUENCE, spki, []) = element(der).ok_or(bad)? else {
        return Err(bad);
    };
    let (SEQUENCE, algorithm, rest) = element(spki).ok_or(bad)? else {
        return Err(bad);
    };
    let (BIT_STRING, bits, []) = element(rest).ok_or(bad)? else {
        return Err(bad);
    };
    let (0, key) = bits.split_first().ok_or(bad)? else {
        return Err(bad);
    };
    let (OID, oid, params) = element(algorithm).ok_or(bad)? else {
        return Err(bad);
    };
    let key = key.to_vec();
    match oid {
        OID_RSA => Ok(SpkiKey::Rsa(key)),
        OID_ED25519 if key.len() == 32 => Ok(SpkiKey::Ed25519(key)),
        OID_EC => match element(params) {
            Some((OID, OID_P256, _)) => Ok(SpkiKey::P256(key)),
            Some((OID, OID_P384, _)) => Ok(SpkiKey::P384(key)),
            _ => Err("unsupported elliptic curve (P-256 and P-384 are)"),
        },
        _ => Err("unsupported key type (RSA, EC P-256/P-384 and Ed25519 are)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_ed25519_spki() {
        let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let der = blocks(pem, "PUBLIC KEY").unwrap();
        assert_eq!(der.len(), 1);
        let SpkiKey::Ed25519(key) = spki(&der[0]).unwrap() else {
            panic!("not Ed25519");
        };
        assert_eq!(key[0], 0x19);
    }

    #[test]
    fn refuses_garbage() {
        for der in [
            &[][..],
            &[0x30],
            &[0x30, 0x81],
            &[0x30, 0x02, 0x30, 0x00],
            &[0x04, 0x00],
        ] {
            assert!(spki(der).is_err());
        }
        assert!(blocks("-----BEGIN PUBLIC KEY-----\nAAA", "PUBLIC KEY").is_err());
    }
}
