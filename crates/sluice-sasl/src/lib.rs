//! SASL as Kafka speaks it: the PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER
//! mechanisms, server and client side, without any I/O.
//!
//! The broker drives a [`ServerSession`] with the bytes of each SaslAuthenticate request; the
//! admin client drives a [`ScramClient`]. Credentials come from a [`Credentials`] source the
//! caller implements (the broker's credential store), tokens are checked by a
//! [`TokenValidator`] ([`JwtValidator`] for JWKS files and PEM keys).
//!
//! SCRAM credentials are kept the way Kafka keeps them (RFC 5802): a salt, an iteration count,
//! `StoredKey` and `ServerKey` — enough to verify a client, never enough to impersonate one.
//! PLAIN is verified against those same credentials, so one `sluice user add` serves every
//! password mechanism and no password is stored anywhere.

mod jwt;
mod oauthbearer;
mod pem;
mod plain;
mod scram;

use std::time::SystemTime;

pub use jwt::{JwtError, JwtValidator, JwtValidatorConfig};
pub use oauthbearer::client_initial_response as oauthbearer_client_response;
pub use scram::{
    random_salt, salted_password, ScramClient, ScramClientError, ScramCredential, ScramMechanism,
    MAX_ITERATIONS,
};

/// The SASL mechanisms Sluice implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616): user name and password in one message; use it over TLS.
    Plain,
    /// `SCRAM-SHA-256` (RFC 5802/7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `OAUTHBEARER` (RFC 7628) with JWT bearer tokens (KIP-255).
    OAuthBearer,
}

impl Mechanism {
    /// Every mechanism, in the order the broker lists them by default.
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
        Mechanism::OAuthBearer,
    ];

    /// The IANA name clients send in SaslHandshake.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism of an IANA name (exact, upper case, as Kafka compares it).
    pub fn parse(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The SCRAM hash of a SCRAM mechanism.
    pub fn scram(self) -> Option<ScramMechanism> {
        match self {
            Mechanism::ScramSha256 => Some(ScramMechanism::Sha256),
            Mechanism::ScramSha512 => Some(ScramMechanism::Sha512),
            Mechanism::Plain | Mechanism::OAuthBearer => None,
        }
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a server session finds SCRAM credentials (the broker's credential store).
pub trait Credentials {
    /// The credential of `user` for `mechanism`, if the user has one.
    fn scram(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
}

/// What a valid bearer token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    /// The principal name (the `sub` claim, or the configured claim).
    pub principal: String,
    /// When the token stops being valid (`exp`).
    pub expires_at: SystemTime,
}

/// Checks OAUTHBEARER tokens.
pub trait TokenValidator: Send + Sync {
    /// The identity of a valid token, or why it is not valid.
    fn validate(&self, token: &str, now: SystemTime) -> Result<TokenIdentity, JwtError>;
}

/// Why authentication failed. The text is safe to send to the client: it says what was
/// wrong with the exchange, not which part of a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// Unknown user, wrong password or wrong proof (one error for all, so a client cannot
    /// tell which user names exist).
    #[error("authentication failed: invalid credentials with SASL mechanism {0}")]
    InvalidCredentials(Mechanism),
    /// The bearer token was refused.
    #[error("authentication failed: invalid token: {0}")]
    InvalidToken(String),
    /// A message did not follow the mechanism's grammar.
    #[error("authentication failed: malformed {mechanism} message: {reason}")]
    Malformed {
        /// The mechanism.
        mechanism: Mechanism,
        /// What was wrong.
        reason: &'static str,
    },
    /// A message arrived after the exchange had ended.
    #[error("authentication failed: unexpected {0} message after the exchange completed")]
    Unexpected(Mechanism),
    /// OAUTHBEARER is enabled but no token validator is configured.
    #[error("authentication failed: OAUTHBEARER has no token validator configured")]
    NoValidator,
}

/// The outcome of one step of a server session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes back and wait for the client's next message.
    Challenge(Vec<u8>),
    /// Authenticated: send `response` (possibly empty) as the final message.
    Done {
        /// The server's last message (SCRAM's server-final, empty otherwise).
        response: Vec<u8>,
        /// Who the client is (the user name or the token's subject).
        principal: String,
        /// When the credential expires (OAUTHBEARER tokens), for re-authentication (KIP-368).
        expires_at: Option<SystemTime>,
    },
}

/// The server side of one authentication exchange.
#[derive(Debug)]
pub struct ServerSession {
    mechanism: Mechanism,
    state: State,
}

#[derive(Debug)]
enum State {
    Start,
    Scram(Box<scram::ServerState>),
    Finished,
}

/// What a server session may consult.
pub struct Sources<'a> {
    /// SCRAM credentials (SCRAM and PLAIN).
    pub credentials: &'a dyn Credentials,
    /// Token validation (OAUTHBEARER), if configured.
    pub tokens: Option<&'a dyn TokenValidator>,
    /// The current time (token expiry).
    pub now: SystemTime,
}

impl ServerSession {
    /// A new exchange for `mechanism`.
    pub fn new(mechanism: Mechanism) -> Self {
        ServerSession {
            mechanism,
            state: State::Start,
        }
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Consumes the client's next message. After an error the session is finished.
    pub fn step(&mut self, input: &[u8], sources: &Sources<'_>) -> Result<Step, SaslError> {
        let state = std::mem::replace(&mut self.state, State::Finished);
        let (next, step) = match (state, self.mechanism) {
            (State::Finished, mechanism) => return Err(SaslError::Unexpected(mechanism)),
            (State::Start, Mechanism::Plain) => (
                State::Finished,
                plain::authenticate(input, sources.credentials)?,
            ),
            (State::Start, Mechanism::OAuthBearer) => {
                let tokens = sources.tokens.ok_or(SaslError::NoValidator)?;
                (
                    State::Finished,
                    oauthbearer::authenticate(input, tokens, sources.now)?,
                )
            }
            (State::Start, mechanism) => {
                let scram = mechanism.scram().ok_or(SaslError::Unexpected(mechanism))?;
                let (state, challenge) =
                    scram::ServerState::first(scram, input, sources.credentials)?;
                (State::Scram(Box::new(state)), Step::Challenge(challenge))
            }
            (State::Scram(state), _) => (State::Finished, state.last(input)?),
        };
        self.state = next;
        Ok(step)
    }
}
