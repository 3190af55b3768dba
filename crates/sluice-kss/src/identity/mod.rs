//! Who is asking: identity tokens verified into a [`ServiceId`].
//!
//! Verification is pluggable ([`IdentityVerifier`]); the default ([`jwt::Ed25519JwtVerifier`])
//! checks Ed25519-signed JWTs against configured public keys.

pub mod jwt;
pub mod keys;
pub mod replay;

use crate::service::ServiceId;

/// The audience every KSS token must name.
pub const AUDIENCE: &str = "sluice-kss";

/// Why a token was refused; each message says which check failed (returned as HTTP 401, but
/// [`IdentityError::Unavailable`] as 503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No token was sent.
    #[error("missing identity token: send `Authorization: Bearer <token>`")]
    Missing,
    /// The token is not a well-formed JWT of the expected kind.
    #[error("malformed identity token: {0}")]
    Malformed(String),
    /// The signature does not verify with any trusted key.
    #[error("forged identity token: its signature does not verify with any trusted issuer key")]
    Forged,
    /// `exp` has passed.
    #[error("expired identity token: it expired {0} s ago; mint a fresh one")]
    Expired(u64),
    /// `exp` is further ahead than allowed.
    #[error("identity token lives too long: exp is {0} s ahead, at most {1} s is accepted")]
    TooLong(u64, u64),
    /// `aud` does not name KSS.
    #[error("wrong audience: the token is for {0:?}, not {AUDIENCE:?}")]
    WrongAudience(String),
    /// The `jti` was already used.
    #[error("replayed identity token: jti {0:?} was already used; mint a new token per request")]
    Replayed(String),
    /// `sub` is not a valid service id.
    #[error("invalid subject in identity token: {0}")]
    BadSubject(String),
    /// `iat` or `nbf` is further in the future than the tolerated clock skew.
    #[error("identity token not yet valid: its {claim} is {ahead} s in the future (at most {} s of clock skew is tolerated); check the issuer's clock", jwt::MAX_CLOCK_SKEW_SECS)]
    NotYetValid {
        /// `iat` or `nbf`.
        claim: &'static str,
        /// Seconds ahead of KSS's clock.
        ahead: u64,
    },
    /// The token may be fine but KSS cannot accept it now (e.g. the replay cache cannot be
    /// written); retrying later may help.
    #[error("KSS cannot verify identity tokens right now: {0}")]
    Unavailable(String),
}

/// Turns a bearer token into the service it authenticates.
pub trait IdentityVerifier: Send + Sync {
    /// Verifies `token` and returns its service id, remembering whatever is needed to refuse a
    /// replay of the same token.
    fn verify(&self, token: &str) -> Result<ServiceId, IdentityError>;
}
