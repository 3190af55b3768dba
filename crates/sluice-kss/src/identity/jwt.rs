//! Ed25519-signed JWTs (`alg` EdDSA): minting for development and verification with a replay
//! cache.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use parking_lot::Mutex;
use ring::rand::SecureRandom;
use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

use super::replay::{ReplayCache, ReplayError};
use super::{IdentityError, IdentityVerifier, AUDIENCE};
use crate::service::ServiceId;

/// Longest token lifetime accepted: `exp` at most this far ahead.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// How long after `exp` a token is still accepted (the issuer's clock may run fast).
const LEEWAY_SECS: u64 = 30;
/// How far in the future `iat` and `nbf` may be (the issuer's clock may run fast); a token from
/// further ahead is refused rather than accepted early, and so is one whose `exp` is.
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;
/// Longest token accepted, bytes.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest `jti` accepted, bytes.
const MAX_JTI_BYTES: usize = 256;

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
}

/// Only the subject, for [`unverified_subject`].
#[derive(Deserialize)]
struct Subject {
    sub: String,
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
    /// Seconds from now of `iat` (0: now; positive mints a token from the future, for tests).
    pub issued_at_offset_secs: i64,
    /// Seconds from now of `nbf`; `None` leaves the claim out.
    pub not_before_offset_secs: Option<i64>,
}

impl Default for MintOptions {
    fn default() -> Self {
        MintOptions {
            audience: AUDIENCE.to_owned(),
            expires_in_secs: MAX_TOKEN_TTL.as_secs() as i64,
            issued_at_offset_secs: 0,
            not_before_offset_secs: None,
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
        iat: Some(now.saturating_add_signed(options.issued_at_offset_secs)),
        nbf: options
            .not_before_offset_secs
            .map(|offset| now.saturating_add_signed(offset)),
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

/// Decodes one token part: base64url JSON.
fn decode_part<T: for<'de> Deserialize<'de>>(part: &str, what: &str) -> Result<T, IdentityError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| IdentityError::Malformed(format!("the {what} is not base64url ({e})")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| IdentityError::Malformed(format!("the {what} is not the expected JSON ({e})")))
}

/// Splits a token into its three parts.
fn split(token: &str) -> Result<(&str, &str, &str), IdentityError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(IdentityError::Malformed(format!(
            "longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok((header, payload, signature)),
        _ => Err(IdentityError::Malformed(
            "a JWT has three dot-separated parts".into(),
        )),
    }
}

/// The service a token names, **without verifying it**: for a token's holder (the sidecar) to
/// know which certificate subject to expect back. Never an authentication.
pub fn unverified_subject(token: &str) -> Result<ServiceId, IdentityError> {
    let (_, payload, _) = split(token)?;
    let subject: Subject = decode_part(payload, "payload")?;
    ServiceId::parse(&subject.sub).map_err(IdentityError::BadSubject)
}

/// Verifies Ed25519 JWTs against trusted public keys and refuses replayed `jti`s.
pub struct Ed25519JwtVerifier {
    keys: Vec<[u8; 32]>,
    /// Token ids seen, kept until the token would be refused as expired anyway.
    replay: Mutex<ReplayCache>,
}

impl Ed25519JwtVerifier {
    /// A verifier trusting `keys` (raw 32-byte Ed25519 public keys) whose replay cache lives in
    /// memory only: a restart forgets it (use [`Ed25519JwtVerifier::with_replay_cache`]).
    pub fn new(keys: Vec<[u8; 32]>) -> Self {
        Self::with_replay_cache(keys, ReplayCache::in_memory())
    }

    /// A verifier trusting `keys` that remembers used tokens in `replay`.
    pub fn with_replay_cache(keys: Vec<[u8; 32]>, replay: ReplayCache) -> Self {
        Ed25519JwtVerifier {
            keys,
            replay: Mutex::new(replay),
        }
    }

    /// Checks everything but replay, at time `now` (unix seconds).
    fn check(&self, token: &str, now: u64) -> Result<(ServiceId, String, u64), IdentityError> {
        let (header, payload, signature) = split(token)?;
        let header: Header = decode_part(header, "header")?;
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
        let claims: Claims = decode_part(payload, "payload")?;
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
        for (claim, value) in [("iat", claims.iat), ("nbf", claims.nbf)] {
            if let Some(ahead) = value.and_then(|v| v.checked_sub(now)) {
                if ahead > MAX_CLOCK_SKEW_SECS {
                    return Err(IdentityError::NotYetValid { claim, ahead });
                }
            }
        }
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_BYTES {
            return Err(IdentityError::Malformed(format!(
                "the jti claim must be 1 to {MAX_JTI_BYTES} bytes; every token needs a unique jti"
            )));
        }
        let service = ServiceId::parse(&claims.sub).map_err(IdentityError::BadSubject)?;
        Ok((service, claims.jti, claims.exp))
    }

    /// Verifies at time `now` (unix seconds); [`IdentityVerifier::verify`] uses the clock.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<ServiceId, IdentityError> {
        let (service, jti, exp) = self.check(token, now)?;
        // After exp + leeway the expiry check refuses the token; until then it is remembered.
        let forget_after = exp.saturating_add(LEEWAY_SECS);
        match self.replay.lock().remember(&jti, forget_after, now) {
            Ok(()) => Ok(service),
            Err(ReplayError::Replayed) => Err(IdentityError::Replayed(jti)),
            Err(e @ ReplayError::Full) => Err(IdentityError::Unavailable(e.to_string())),
            Err(e @ ReplayError::Io { .. }) => {
                // Accepting a token that cannot be remembered would allow its replay.
                tracing::error!("{e}");
                Err(IdentityError::Unavailable(
                    "KSS cannot record the token as used; retry later".into(),
                ))
            }
        }
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

    /// A token with exactly `claims`, validly signed by `key`.
    fn signed(key: &Ed25519KeyPair, claims: &serde_json::Value) -> String {
        let header = Header {
            alg: "EdDSA".into(),
            typ: None,
        };
        let input = format!(
            "{}.{}",
            b64_json(&header).unwrap(),
            b64_json(claims).unwrap()
        );
        let signature = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).as_ref());
        format!("{input}.{signature}")
    }

    #[test]
    fn tokens_from_the_future_are_refused_beyond_the_clock_skew() {
        let key = key();
        let verifier = verifier_for(&key);
        let mint_with = |iat: i64, nbf: Option<i64>| {
            mint(
                &key,
                &svc(),
                &MintOptions {
                    issued_at_offset_secs: iat,
                    not_before_offset_secs: nbf,
                    ..Default::default()
                },
            )
            .unwrap()
        };
        let err = verifier.verify(&mint_with(600, None)).unwrap_err();
        assert!(
            matches!(err, IdentityError::NotYetValid { claim: "iat", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("not yet valid"), "{err}");
        let err = verifier.verify(&mint_with(0, Some(600))).unwrap_err();
        assert!(
            matches!(err, IdentityError::NotYetValid { claim: "nbf", .. }),
            "{err}"
        );
        assert!(
            verifier.verify(&mint_with(30, Some(30))).is_ok(),
            "within the skew"
        );
        assert!(verifier.verify(&mint_with(-60, Some(-60))).is_ok());
    }

    #[test]
    fn a_persisted_replay_cache_refuses_a_replay_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let key = key();
        let token = mint(&key, &svc(), &MintOptions::default()).unwrap();
        let public = || {
            let mut raw = [0u8; 32];
            raw.copy_from_slice(key.public_key().as_ref());
            vec![raw]
        };
        let first = Ed25519JwtVerifier::with_replay_cache(
            public(),
            ReplayCache::open(&path, unix_now()).unwrap(),
        );
        assert_eq!(first.verify(&token).unwrap(), svc());
        drop(first);
        let restarted = Ed25519JwtVerifier::with_replay_cache(
            public(),
            ReplayCache::open(&path, unix_now()).unwrap(),
        );
        assert!(matches!(
            restarted.verify(&token),
            Err(IdentityError::Replayed(_))
        ));
    }

    #[test]
    fn overlong_jtis_are_refused() {
        let key = key();
        let verifier = verifier_for(&key);
        let now = unix_now();
        let claims = serde_json::json!({"sub": "orders-svc", "aud": AUDIENCE, "exp": now + 60, "jti": "j".repeat(257)});
        assert!(matches!(
            verifier.verify(&signed(&key, &claims)),
            Err(IdentityError::Malformed(_))
        ));
    }

    #[test]
    fn the_unverified_subject_is_read_without_a_key() {
        let token = mint(&key(), &svc(), &MintOptions::default()).unwrap();
        assert_eq!(unverified_subject(&token).unwrap(), svc());
        assert!(unverified_subject("a.b").is_err());
        let bad = format!(
            "x.{}.y",
            URL_SAFE_NO_PAD.encode(br#"{"sub":"CN=admin,O=x"}"#)
        );
        assert!(matches!(
            unverified_subject(&bad),
            Err(IdentityError::BadSubject(_))
        ));
    }

    fn shared_key() -> &'static Ed25519KeyPair {
        static KEY: std::sync::OnceLock<Ed25519KeyPair> = std::sync::OnceLock::new();
        KEY.get_or_init(key)
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_never_verify_or_panic(token in "[A-Za-z0-9_.-]{0,300}") {
            let verifier = verifier_for(&key());
            prop_assert!(verifier.verify(&token).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_verify_or_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let token = String::from_utf8_lossy(&bytes);
            prop_assert!(verifier_for(shared_key()).verify(&token).is_err());
            let _ = unverified_subject(&token);
        }

        #[test]
        fn any_change_to_a_valid_token_is_refused(
            at in any::<prop::sample::Index>(),
            replacement in any::<u8>(),
        ) {
            let key = shared_key();
            let verifier = verifier_for(key);
            let token = mint(key, &svc(), &MintOptions::default()).unwrap();
            let mut bytes = token.clone().into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != replacement);
            bytes[i] = replacement;
            let mutated = String::from_utf8_lossy(&bytes);
            prop_assert!(verifier.verify(&mutated).is_err(), "{mutated}");
            // The original is still good: the refusal consumed nothing.
            prop_assert_eq!(verifier.verify(&token).unwrap(), svc());
        }

        #[test]
        fn signed_claims_of_any_value_never_panic_and_follow_the_rules(
            exp in any::<u64>(),
            iat in proptest::option::of(any::<u64>()),
            nbf in proptest::option::of(any::<u64>()),
            sub in "\\PC{0,80}",
            jti in "\\PC{0,300}",
        ) {
            let key = shared_key();
            let now = 1_700_000_000u64;
            let claims = serde_json::json!({"sub": sub, "aud": AUDIENCE, "exp": exp, "iat": iat, "nbf": nbf, "jti": jti});
            let result = verifier_for(key).verify_at(&signed(key, &claims), now);
            let future = |v: Option<u64>| v.is_some_and(|v| v > now + MAX_CLOCK_SKEW_SECS);
            let valid = exp.saturating_add(LEEWAY_SECS) >= now
                && exp <= now + MAX_TOKEN_TTL.as_secs() + LEEWAY_SECS
                && !future(iat)
                && !future(nbf)
                && !jti.is_empty()
                && jti.len() <= MAX_JTI_BYTES
                && ServiceId::parse(&sub).is_ok();
            prop_assert_eq!(result.is_ok(), valid, "{:?}", result);
        }
    }
}
