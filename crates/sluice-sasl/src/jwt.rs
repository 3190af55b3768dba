//! JWT bearer tokens (RFC 7519) checked against keys from a JWKS document (RFC 7517) or PEM
//! public keys: RS256/384/512, ES256/384 and EdDSA (Ed25519). The token's `alg` must fit the
//! key's type, so an RSA key can never verify an HMAC or `none` token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

use crate::pem::{self, SpkiKey};
use crate::{TokenIdentity, TokenValidator};

/// Longest token accepted, bytes.
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Why a token or a key set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a JWS in compact form, or a part did not decode.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The `alg` is not one accepted here (`none` and HMAC never are).
    #[error("unsupported signature algorithm {0:?}")]
    Algorithm(String),
    /// No configured key has the token's `kid` and a matching type.
    #[error("no trusted key matches the token (kid {0:?})")]
    UnknownKey(Option<String>),
    /// The signature does not verify with any candidate key.
    #[error("the signature does not verify")]
    Signature,
    /// `exp` has passed.
    #[error("the token expired")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// A required claim is missing or has the wrong type.
    #[error("claim {0:?} is missing or invalid")]
    Claim(String),
    /// `aud` does not contain the expected audience.
    #[error("the token is not meant for this audience")]
    Audience,
    /// `iss` is not the expected issuer.
    #[error("the token's issuer is not trusted")]
    Issuer,
    /// A key in the configuration could not be used.
    #[error("invalid key: {0}")]
    Key(String),
}

/// What a token must say to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtValidatorConfig {
    /// `aud` must contain this value (Kafka's `sasl.oauthbearer.expected.audience`).
    pub expected_audience: Option<String>,
    /// `iss` must equal this value (`sasl.oauthbearer.expected.issuer`).
    pub expected_issuer: Option<String>,
    /// The claim naming the principal (`sasl.oauthbearer.sub.claim.name`, default `sub`).
    pub principal_claim: String,
    /// Clock difference tolerated on `exp`, `nbf` and `iat`
    /// (`sasl.oauthbearer.clock.skew.seconds`, default 30 s).
    pub clock_skew: Duration,
}

impl Default for JwtValidatorConfig {
    fn default() -> Self {
        JwtValidatorConfig {
            expected_audience: None,
            expected_issuer: None,
            principal_claim: "sub".to_owned(),
            clock_skew: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Es256,
    Es384,
    EdDsa,
}

impl Alg {
    fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }

    fn rsa(self) -> Option<&'static signature::RsaParameters> {
        match self {
            Alg::Rs256 => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
            Alg::Rs384 => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
            Alg::Rs512 => Some(&signature::RSA_PKCS1_2048_8192_SHA512),
            _ => None,
        }
    }
}

/// One trusted key.
#[derive(Debug, Clone)]
struct Key {
    kid: Option<String>,
    /// The only algorithm this key verifies, if the JWKS pins one.
    alg: Option<Alg>,
    material: Material,
}

#[derive(Debug, Clone)]
enum Material {
    /// RSA modulus and exponent (big-endian).
    RsaComponents { n: Vec<u8>, e: Vec<u8> },
    /// Any other key in the form ring verifies (PKCS#1 DER for RSA from PEM).
    Spki(SpkiKey),
}

impl Key {
    /// Whether this key may verify a token signed with `alg`.
    fn accepts(&self, alg: Alg) -> bool {
        if self.alg.is_some_and(|pinned| pinned != alg) {
            return false;
        }
        match (&self.material, alg) {
            (Material::RsaComponents { .. } | Material::Spki(SpkiKey::Rsa(_)), a) => {
                a.rsa().is_some()
            }
            (Material::Spki(SpkiKey::P256(_)), Alg::Es256)
            | (Material::Spki(SpkiKey::P384(_)), Alg::Es384)
            | (Material::Spki(SpkiKey::Ed25519(_)), Alg::EdDsa) => true,
            _ => false,
        }
    }

    fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
        let spki = |material: &SpkiKey| -> bool {
            let (algorithm, bytes): (&dyn signature::VerificationAlgorithm, &[u8]) =
                match (material, alg) {
                    (SpkiKey::Rsa(der), a) => match a.rsa() {
                        Some(params) => (params, der),
                        None => return false,
                    },
                    (SpkiKey::P256(point), Alg::Es256) => {
                        (&signature::ECDSA_P256_SHA256_FIXED, point)
                    }
                    (SpkiKey::P384(point), Alg::Es384) => {
                        (&signature::ECDSA_P384_SHA384_FIXED, point)
                    }
                    (SpkiKey::Ed25519(key), Alg::EdDsa) => (&signature::ED25519, key),
                    _ => return false,
                };
            UnparsedPublicKey::new(algorithm, bytes)
                .verify(message, sig)
                .is_ok()
        };
        match &self.material {
            Material::RsaComponents { n, e } => alg.rsa().is_some_and(|params| {
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }),
            Material::Spki(key) => spki(key),
        }
    }
}

/// A JWK as found in a JWKS document; fields beyond these are ignored.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

fn b64url(field: &str, value: Option<&str>) -> Result<Vec<u8>, JwtError> {
    let value = value.ok_or_else(|| JwtError::Key(format!("JWK without {field:?}")))?;
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| JwtError::Key(format!("JWK {field:?} is not base64url")))
}

impl Jwk {
    fn into_key(self) -> Result<Option<Key>, JwtError> {
        // Encryption keys are not for verifying signatures.
        if self.usage.as_deref().is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        let alg = match self.alg.as_deref() {
            None => None,
            Some(name) => match Alg::parse(name) {
                Some(alg) => Some(alg),
                // A key for an algorithm not accepted here can never verify a token.
                None => return Ok(None),
            },
        };
        let material = match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => Material::RsaComponents {
                n: b64url("n", self.n.as_deref())?,
                e: b64url("e", self.e.as_deref())?,
            },
            ("EC", Some(curve @ ("P-256" | "P-384"))) => {
                let x = b64url("x", self.x.as_deref())?;
                let y = b64url("y", self.y.as_deref())?;
                let point = [&[0x04][..], &x, &y].concat();
                Material::Spki(if curve == "P-256" {
                    SpkiKey::P256(point)
                } else {
                    SpkiKey::P384(point)
                })
            }
            ("OKP", Some("Ed25519")) => {
                Material::Spki(SpkiKey::Ed25519(b64url("x", self.x.as_deref())?))
            }
            _ => return Ok(None),
        };
        Ok(Some(Key {
            kid: self.kid,
            alg,
            material,
        }))
    }
}

/// Checks JWTs against a set of trusted keys.
#[derive(Debug, Clone)]
pub struct JwtValidator {
    keys: Vec<Key>,
    config: JwtValidatorConfig,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

impl JwtValidator {
    /// A validator without keys; add them with [`JwtValidator::add_jwks`] and
    /// [`JwtValidator::add_pem`].
    pub fn new(config: JwtValidatorConfig) -> Self {
        JwtValidator {
            keys: Vec::new(),
            config,
        }
    }

    /// Adds the signature keys of a JWKS document (`{"keys": [...]}`); keys of other types or
    /// uses are skipped. Returns how many were added.
    pub fn add_jwks(&mut self, json: &[u8]) -> Result<usize, JwtError> {
        let jwks: Jwks =
            serde_json::from_slice(json).map_err(|e| JwtError::Key(format!("not a JWKS: {e}")))?;
        let before = self.keys.len();
        for jwk in jwks.keys {
            self.keys.extend(jwk.into_key()?);
        }
        Ok(self.keys.len() - before)
    }

    /// Adds every `PUBLIC KEY` block of a PEM document (RSA, EC P-256/P-384, Ed25519), without
    /// a key id. Returns how many were added.
    pub fn add_pem(&mut self, pem: &str) -> Result<usize, JwtError> {
        let blocks = pem::blocks(pem, "PUBLIC KEY").map_err(|e| JwtError::Key(e.into()))?;
        for der in &blocks {
            let key = pem::spki(der).map_err(|e| JwtError::Key(e.into()))?;
            self.keys.push(Key {
                kid: None,
                alg: None,
                material: Material::Spki(key),
            });
        }
        Ok(blocks.len())
    }

    /// How many keys are trusted.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    fn verify_signature(&self, token: &str) -> Result<serde_json::Value, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Malformed("token too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("expected header.payload.signature"));
        };
        let decode = |part: &str, what| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| JwtError::Malformed(what))
        };
        let header: Header = serde_json::from_slice(&decode(header, "header is not base64url")?)
            .map_err(|_| JwtError::Malformed("header is not a JWS header"))?;
        if header.crit.is_some() {
            return Err(JwtError::Malformed(
                "critical header extensions are not supported",
            ));
        }
        let alg = Alg::parse(&header.alg).ok_or(JwtError::Algorithm(header.alg.clone()))?;
        let sig = decode(sig, "signature is not base64url")?;
        let signed = &token[..token.len() - parts_len_tail(token)];
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
            .filter(|k| k.accepts(alg))
            .peekable();
        if candidates.peek().is_none() {
            return Err(JwtError::UnknownKey(header.kid));
        }
        if !candidates.any(|k| k.verify(alg, signed.as_bytes(), &sig)) {
            return Err(JwtError::Signature);
        }
        serde_json::from_slice(&decode(payload, "payload is not base64url")?)
            .map_err(|_| JwtError::Malformed("payload is not JSON"))
    }

    fn check_claims(
        &self,
        claims: &serde_json::Value,
        now: SystemTime,
    ) -> Result<TokenIdentity, JwtError> {
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let skew = self.config.clock_skew.as_secs_f64();
        let time = |name: &str| -> Result<Option<f64>, JwtError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v.as_f64().map(Some).ok_or(JwtError::Claim(name.into())),
            }
        };
        let exp = time("exp")?.ok_or(JwtError::Claim("exp".into()))?;
        if exp + skew <= now_secs {
            return Err(JwtError::Expired);
        }
        for name in ["nbf", "iat"] {
            if time(name)?.is_some_and(|t| t > now_secs + skew) {
                return Err(JwtError::NotYetValid);
            }
        }
        if let Some(expected) = &self.config.expected_audience {
            let ok = match claims.get("aud") {
                Some(serde_json::Value::String(a)) => a == expected,
                Some(serde_json::Value::Array(all)) => {
                    all.iter().any(|a| a.as_str() == Some(expected.as_str()))
                }
                _ => false,
            };
            if !ok {
                return Err(JwtError::Audience);
            }
        }
        if let Some(expected) = &self.config.expected_issuer {
            if claims.get("iss").and_then(|i| i.as_str()) != Some(expected.as_str()) {
                return Err(JwtError::Issuer);
            }
        }
        let claim = &self.config.principal_claim;
        let principal = claims
            .get(claim)
            .and_then(|s| s.as_str())
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| JwtError::Claim(claim.clone()))?;
        let expires_at = if exp <= 0.0 {
            UNIX_EPOCH
        } else {
            // Far-future values saturate instead of overflowing.
            UNIX_EPOCH
                .checked_add(Duration::try_from_secs_f64(exp).unwrap_or(Duration::MAX))
                .unwrap_or(now + Duration::from_secs(u64::from(u32::MAX)))
        };
        Ok(TokenIdentity {
            principal: principal.to_owned(),
            expires_at,
        })
    }
}

/// Length of `.signature` at the end of a compact JWS.
fn parts_len_tail(token: &str) -> usize {
    token.rfind('.').map_or(0, |dot| token.len() - dot)
}

impl TokenValidator for JwtValidator {
    fn validate(&self, token: &str, now: SystemTime) -> Result<TokenIdentity, JwtError> {
        let claims = self.verify_signature(token)?;
        self.check_claims(&claims, now)
    }
}

#[cfg(test)]
mod tests;
