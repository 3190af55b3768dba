//! The broker's SASL server: which mechanisms are enabled, where credentials and trusted
//! token keys come from, and how long a session lasts (KIP-368). The per-connection exchange
//! that uses it lives with the connection (`net::sasl`).

use std::time::{Duration, Instant, SystemTime};

use sluice_sasl::{JwtValidator, Mechanism, ServerSession, Sources, Step};

use super::credentials::{CredentialError, ScramStore};
use crate::config::SaslConfig;

/// Why the SASL server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SaslSetupError {
    /// The credentials file could not be loaded.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// A token key file could not be read or holds no usable key.
    #[error("OAUTHBEARER key file {path}: {reason}")]
    TokenKeys {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// OAUTHBEARER is enabled without any key to check tokens with.
    #[error("OAUTHBEARER is enabled but no token key is configured; give sasl_oauthbearer_jwks or sasl_oauthbearer_public_key")]
    NoTokenKeys,
}

/// A finished authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The principal name (user name or token subject).
    pub principal: String,
    /// The server's final message.
    pub response: Vec<u8>,
    /// When the session ends (`connections.max.reauth.ms`, or the token's expiry if sooner).
    pub session_end: Option<Instant>,
}

/// What a step of an exchange produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Send this challenge and wait for the client.
    Challenge(Vec<u8>),
    /// The client is authenticated.
    Done(Authenticated),
}

/// Broker-wide SASL state.
#[derive(Debug)]
pub struct SaslServer {
    enabled: Vec<Mechanism>,
    /// SCRAM credentials (also what PLAIN checks and the admin APIs manage).
    pub credentials: ScramStore,
    tokens: Option<JwtValidator>,
    max_reauth: Option<Duration>,
}

impl SaslServer {
    /// Loads credentials from `data_dir` and the token keys `config` names.
    pub fn open(config: &SaslConfig, data_dir: &std::path::Path) -> Result<Self, SaslSetupError> {
        let has_keys = config.oauthbearer_jwks.is_some() || config.oauthbearer_public_key.is_some();
        // Without an explicit list: the password mechanisms, and OAUTHBEARER when keys are
        // given. An explicit list is taken as it is.
        let enabled = config.enabled_mechanisms.clone().unwrap_or_else(|| {
            let mut default = vec![
                Mechanism::Plain,
                Mechanism::ScramSha256,
                Mechanism::ScramSha512,
            ];
            if has_keys {
                default.push(Mechanism::OAuthBearer);
            }
            default
        });
        if has_keys && !enabled.contains(&Mechanism::OAuthBearer) {
            tracing::warn!("OAUTHBEARER token keys are configured but OAUTHBEARER is not in sasl_enabled_mechanisms; bearer tokens are refused");
        }
        let tokens = if enabled.contains(&Mechanism::OAuthBearer) {
            Some(load_token_keys(config)?)
        } else {
            None
        };
        Ok(SaslServer {
            enabled,
            credentials: ScramStore::open(data_dir)?,
            tokens,
            max_reauth: config.max_reauth.filter(|d| !d.is_zero()),
        })
    }

    /// A server with in-memory credentials, the given mechanisms and session limit (tests).
    pub fn in_memory(enabled: Vec<Mechanism>, max_reauth: Option<Duration>) -> Self {
        SaslServer {
            enabled,
            credentials: ScramStore::in_memory(),
            tokens: None,
            max_reauth,
        }
    }

    /// The enabled mechanism named `name`, if any.
    pub fn mechanism(&self, name: &str) -> Option<Mechanism> {
        Mechanism::parse(name).filter(|m| self.enabled.contains(m))
    }

    /// Names of the enabled mechanisms, for SaslHandshake responses.
    pub fn enabled_names(&self) -> Vec<&'static str> {
        self.enabled.iter().map(|m| m.name()).collect()
    }

    /// Runs one step of `session` with the client's `input`.
    pub fn step(
        &self,
        session: &mut ServerSession,
        input: &[u8],
    ) -> Result<Progress, sluice_sasl::SaslError> {
        let now = SystemTime::now();
        let sources = Sources {
            credentials: &self.credentials,
            tokens: self
                .tokens
                .as_ref()
                .map(|t| t as &dyn sluice_sasl::TokenValidator),
            now,
        };
        Ok(match session.step(input, &sources)? {
            Step::Challenge(challenge) => Progress::Challenge(challenge),
            Step::Done {
                response,
                principal,
                expires_at,
            } => Progress::Done(Authenticated {
                principal,
                response,
                session_end: self.session_end(expires_at, now),
            }),
        })
    }

    /// KIP-368: with `connections.max.reauth.ms` set, a session lasts at most that long, and
    /// no longer than its token. Without it sessions never end (as in Kafka).
    fn session_end(&self, token_expiry: Option<SystemTime>, now: SystemTime) -> Option<Instant> {
        let max = self.max_reauth?;
        let token_left = token_expiry.map(|at| at.duration_since(now).unwrap_or_default());
        let lifetime = token_left.map_or(max, |left| left.min(max));
        // A lifetime beyond what an Instant can hold is as good as none.
        Instant::now().checked_add(lifetime)
    }
}

fn load_token_keys(config: &SaslConfig) -> Result<JwtValidator, SaslSetupError> {
    let mut validator = JwtValidator::new(config.oauthbearer.clone());
    // Each configured file must add at least one usable key.
    let mut add =
        |path: &std::path::Path,
         none_found: &str,
         add_keys: fn(&mut JwtValidator, &[u8]) -> Result<usize, sluice_sasl::JwtError>| {
            let error = |reason: String| SaslSetupError::TokenKeys {
                path: path.to_owned(),
                reason,
            };
            let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
            match add_keys(&mut validator, &bytes) {
                Ok(0) => Err(error(none_found.to_owned())),
                Ok(_) => Ok(()),
                Err(e) => Err(error(e.to_string())),
            }
        };
    if let Some(path) = &config.oauthbearer_jwks {
        add(
            path,
            "no signature key of a supported type (RSA, EC P-256/P-384, Ed25519)",
            |v, bytes| v.add_jwks(bytes),
        )?;
    }
    if let Some(path) = &config.oauthbearer_public_key {
        add(path, "no PEM PUBLIC KEY block", |v, bytes| {
            v.add_pem(&String::from_utf8_lossy(bytes))
        })?;
    }
    if validator.key_count() == 0 {
        return Err(SaslSetupError::NoTokenKeys);
    }
    Ok(validator)
}
