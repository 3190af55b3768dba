//! Ed25519-signed JWTs (`alg` EdDSA): minting for development and verification with a replay
//! cache.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use parking_lot::Mutex;
use ring::rand::SecureRandom;
use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

use super::{IdentityError, IdentityVerifier, AUDIENCE};
use crate::service::ServiceId;

/// Longest token lifetime accepted: `exp` at most this far ahead.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// Clock skew tolerated between the token issuer and KSS.
const LEEWAY_SECS: u64 = 30;
/// Longest token accepted, bytes.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Most remembered token ids; beyond it new tokens are refused until old ones expire (a flood of
/// valid tokens would otherwise grow the cache without bound).
const MAX_REMEMBERED_JTIS: usize = 1_000_000;

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

/// `aud` is a string or an array of strings.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(a) => a == wanted,
            Audience::Many(all) => all.iter().any(|a| a == wanted),
        }
    }

    fn describe(&self) -> String {
        match self {
            Audience::One(a) => a.clone(),
            Audience::Many(all) => all.join(","),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: Audience,
    exp: u64,
    jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What to put in a minted token.
#[derive(Debug, Clone)]
pub struct MintOptions {
    /// The audience (`sluice-kss` unless testing refusals).
    pub audience: String,
    /// Seconds from now until `exp`; negative mints an already-expired token (for tests).
    pub expires_in_secs: i64,
}

impl Default for MintOptions {
    fn default() -> Self {
        MintOptions {
            audience: AUDIENCE.to_owned(),
            expires_in_secs: MAX_TOKEN_TTL.as_secs() as i64,
        }
    }
}

/// Mints a token for `service` signed with `key`, with a random `jti`.
pub fn mint(
    key: &Ed25519KeyPair,
    service: &ServiceId,
    options: &MintOptions,
) -> Result<String, String> {
    let mut jti = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut jti)
        .map_err(|_| "the system random generator failed".to_owned())?;
    let now = unix_now();
    let claims = Claims {
        sub: service.to_string(),
        aud: Audience::One(options.audience.clone()),
        exp: now.saturating_add_signed(options.expires_in_secs),
        jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
        iat: Some(now),
    };
    let header = Header {
        alg: "EdDSA".into(),
        typ: Some("JWT".into()),
    };
    let signing_input = format!("{}.{}", b64_json(&header)?, b64_json(&claims)?);
    let signature = key.sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    ))
}

/// A token part: JSON, base64url without padding.
fn b64_json<T: Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_vec(value)
        .map(|json| URL_SAFE_NO_PAD.encode(json))
        .map_err(|e| e.to_string())
}

/// Verifies Ed25519 JWTs against trusted public keys and refuses replayed `jti`s.
pub struct Ed25519JwtVerifier {
    keys: Vec<[u8; 32]>,
    /// jti -> exp, kept until the token would have expired anyway.
    seen: Mutex<HashMap<String, u64>>,
}

impl Ed25519JwtVerifier {
    /// A verifier trusting `keys` (raw 32-byte Ed25519 public keys).
    pub fn new(keys: Vec<[u8; 32]>) -> Self {
        Ed25519JwtVerifier {
            keys,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn decode_part<T: for<'de> Deserialize<'de>>(
        part: &str,
        what: &str,
    ) -> Result<T, IdentityError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| IdentityError::Malformed(format!("the {what} is not base64url ({e})")))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            IdentityError::Malformed(format!("the {what} is not the expected JSON ({e})"))
        })
    }

    /// Checks everything but replay, at time `now` (unix seconds).
    fn check(&self, token: &str, now: u64) -> Result<(ServiceId, String, u64), IdentityError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(IdentityError::Malformed(format!(
                "longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdentityError::Malformed(
                "a JWT has three dot-separated parts".into(),
            ));
        };
        let header: Header = Self::decode_part(header, "header")?;
        if header.alg != "EdDSA" {
            return Err(IdentityError::Malformed(format!(
                "alg {:?} is not accepted; tokens must be EdDSA (Ed25519)",
                header.alg
            )));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| IdentityError::Malformed("the signature is not base64url".into()))?;
        let signing_input = &token[..header_len(token)];
        let verified = self.keys.iter().any(|key| {
            UnparsedPublicKey::new(&ED25519, key)
                .verify(signing_input.as_bytes(), &signature)
                .is_ok()
        });
        if !verified {
            return Err(IdentityError::Forged);
        }
        let claims: Claims = Self::decode_part(payload, "payload")?;
        if !claims.aud.contains(AUDIENCE) {
            return Err(IdentityError::WrongAudience(claims.aud.describe()));
        }
        if now > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(IdentityError::Expired(now - claims.exp));
        }
        let max = MAX_TOKEN_TTL.as_secs();
        if claims.exp > now + max + LEEWAY_SECS {
            return Err(IdentityError::TooLong(claims.exp - now, max));
        }
        if claims.jti.is_empty() {
            return Err(IdentityError::Malformed(
                "the jti claim is empty; every token needs a unique jti".into(),
            ));
        }
        let service = ServiceId::parse(&claims.sub).map_err(IdentityError::BadSubject)?;
        Ok((service, claims.jti, claims.exp))
    }

    /// Verifies at time `now` (unix seconds); [`IdentityVerifier::verify`] uses the clock.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<ServiceId, IdentityError> {
        let (service, jti, exp) = self.check(token, now)?;
        let mut seen = self.seen.lock();
        if seen.contains_key(&jti) {
            return Err(IdentityError::Replayed(jti));
        }
        if seen.len() >= MAX_REMEMBERED_JTIS {
            seen.retain(|_, e| e.saturating_add(LEEWAY_SECS) >= now);
            if seen.len() >= MAX_REMEMBERED_JTIS {
                return Err(IdentityError::Malformed(
                    "too many live tokens; retry in a few minutes".into(),
                ));
            }
        }
        seen.insert(jti, exp);
        Ok(service)
    }
}

/// Length of `header.payload`, the part the signature covers.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

impl IdentityVerifier for Ed25519JwtVerifier {
    fn verify(&self, token: &str) -> Result<ServiceId, IdentityError> {
        self.verify_at(token, unix_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ring::signature::KeyPair;

    fn key() -> Ed25519KeyPair {
        Ed25519KeyPair::from_pkcs8(&crate::identity::keys::generate_pkcs8().unwrap()).unwrap()
    }

    fn verifier_for(key: &Ed25519KeyPair) -> Ed25519JwtVerifier {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(key.public_key().as_ref());
        Ed25519JwtVerifier::new(vec![raw])
    }

    fn svc() -> ServiceId {
        ServiceId::parse("orders-svc").unwrap()
    }

    #[test]
    fn a_valid_token_verifies_once() {
        let key = key();
        let verifier = verifier_for(&key);
        let token = mint(&key, &svc(), &MintOptions::default()).unwrap();
        assert_eq!(verifier.verify(&token).unwrap(), svc());
        assert!(matches!(
            verifier.verify(&token),
            Err(IdentityError::Replayed(_))
        ));
    }

    #[test]
    fn each_refusal_says_which_check_failed() {
        let key = key();
        let verifier = verifier_for(&key);
        let forged = mint(&self::key(), &svc(), &MintOptions::default()).unwrap();
        assert_eq!(verifier.verify(&forged), Err(IdentityError::Forged));
        let expired = mint(
            &key,
            &svc(),
            &MintOptions {
                expires_in_secs: -120,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(matches!(
            verifier.verify(&expired),
            Err(IdentityError::Expired(_))
        ));
        let long = mint(
            &key,
            &svc(),
            &MintOptions {
                expires_in_secs: 3600,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(matches!(
            verifier.verify(&long),
            Err(IdentityError::TooLong(..))
        ));
        let wrong_aud = mint(
            &key,
            &svc(),
            &MintOptions {
                audience: "other".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&wrong_aud),
            Err(IdentityError::WrongAudience("other".into()))
        );
        // A valid signature over a modified payload is not a valid signature.
        let token = mint(&key, &svc(), &MintOptions::default()).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let admin = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap())
                .unwrap()
                .replace("orders-svc", "admin"),
        );
        parts[1] = &admin;
        assert_eq!(
            verifier.verify(&parts.join(".")),
            Err(IdentityError::Forged)
        );
        assert!(matches!(
            verifier.verify("a.b"),
            Err(IdentityError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_never_verify_or_panic(token in "[A-Za-z0-9_.-]{0,300}") {
            let verifier = verifier_for(&key());
            prop_assert!(verifier.verify(&token).is_err());
        }
    }
}
