//! Ed25519 issuer keys on disk: a PKCS#8 private key (mode 0600) and SPKI public keys, PEM.

use std::path::Path;

use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::files::{write_atomic, FileMode};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("key file {path}: {detail}")]
pub struct KeyFileError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub detail: String,
}

fn key_error(path: &Path, detail: impl ToString) -> KeyFileError {
    KeyFileError {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// Encodes DER as a PEM block.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_blocks(path: &Path) -> Result<Vec<(String, Vec<u8>)>, KeyFileError> {
    let data = std::fs::read(path).map_err(|e| key_error(path, e))?;
    let mut blocks = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(&data) {
        let pem = pem.map_err(|e| key_error(path, format!("not PEM: {e}")))?;
        blocks.push((pem.label, pem.contents));
    }
    if blocks.is_empty() {
        return Err(key_error(path, "no PEM block found"));
    }
    Ok(blocks)
}

/// Generates a new Ed25519 key pair, PKCS#8 DER.
pub fn generate_pkcs8() -> Result<Vec<u8>, String> {
    let rng = ring::rand::SystemRandom::new();
    Ed25519KeyPair::generate_pkcs8(&rng)
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| "the system random generator failed".to_owned())
}

/// Loads the issuer key at `path`, creating it (mode 0600) when it does not exist and `create`.
pub fn load_issuer_key(path: &Path, create: bool) -> Result<Ed25519KeyPair, KeyFileError> {
    if !path.exists() && create {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| key_error(dir, e))?;
        }
        let der = generate_pkcs8().map_err(|e| key_error(path, e))?;
        write_atomic(
            path,
            pem_encode("PRIVATE KEY", &der).as_bytes(),
            FileMode::Private,
        )
        .map_err(|e| key_error(path, e))?;
        tracing::info!(path = %path.display(), "created a development token issuer key");
    }
    for (label, der) in pem_blocks(path)? {
        if label == "PRIVATE KEY" {
            return Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                .map_err(|e| key_error(path, format!("not an Ed25519 PKCS#8 key ({e})")));
        }
    }
    Err(key_error(path, "no \"PRIVATE KEY\" PEM block found"))
}

/// The public key of an issuer key pair, as a PEM SubjectPublicKeyInfo.
pub fn public_key_pem(key: &Ed25519KeyPair) -> String {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(key.public_key().as_ref());
    pem_encode("PUBLIC KEY", &der)
}

/// Reads trusted Ed25519 public keys from `path`: `PUBLIC KEY` blocks, or the public half of a
/// `PRIVATE KEY` block (so a development issuer key file can be trusted directly).
pub fn load_public_keys(path: &Path) -> Result<Vec<[u8; 32]>, KeyFileError> {
    let mut keys = Vec::new();
    for (label, der) in pem_blocks(path)? {
        match label.as_str() {
            "PUBLIC KEY" => {
                let key = der
                    .strip_prefix(&ED25519_SPKI_PREFIX[..])
                    .and_then(|k| <[u8; 32]>::try_from(k).ok())
                    .ok_or_else(|| key_error(path, "a PUBLIC KEY block is not an Ed25519 key"))?;
                keys.push(key);
            }
            "PRIVATE KEY" => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                    .map_err(|e| key_error(path, format!("not an Ed25519 PKCS#8 key ({e})")))?;
                let mut key = [0u8; 32];
                key.copy_from_slice(pair.public_key().as_ref());
                keys.push(key);
            }
            other => {
                return Err(key_error(
                    path,
                    format!("unexpected PEM block {other:?}; expected PUBLIC KEY"),
                ))
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_key_is_created_0600_and_its_public_key_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.key");
        assert!(load_issuer_key(&path, false).is_err());
        let key = load_issuer_key(&path, true).unwrap();
        let again = load_issuer_key(&path, false).unwrap();
        assert_eq!(key.public_key().as_ref(), again.public_key().as_ref());
        let pub_path = dir.path().join("issuer.pub");
        std::fs::write(&pub_path, public_key_pem(&key)).unwrap();
        let from_pub = load_public_keys(&pub_path).unwrap();
        let from_priv = load_public_keys(&path).unwrap();
        assert_eq!(from_pub, from_priv);
        assert_eq!(&from_pub[0][..], key.public_key().as_ref());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
