//! SASL authentication of one connection on a SASL_PLAINTEXT or SASL_SSL listener, the way
//! Kafka's broker does it before (and, with KIP-368, between) ordinary requests:
//!
//! - until authenticated, only ApiVersions (before the handshake, a few times at most),
//!   SaslHandshake and SaslAuthenticate are accepted, and frames are limited to 512 KiB
//!   (`sasl.server.max.receive.size`); anything else closes the connection;
//! - SaslHandshake v1 is followed by SaslAuthenticate requests; after a v0 handshake the
//!   tokens come as bare size-prefixed frames, answered the same way;
//! - a failed exchange is answered with SASL_AUTHENTICATION_FAILED and the connection closed;
//! - with `connections.max.reauth.ms`, the session ends at its deadline: the client must
//!   re-authenticate (handshake + authenticate again, same mechanism and principal) before
//!   sending anything else, or the connection is closed.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use sluice_sasl::{Mechanism, ServerSession};

use super::frame;
use crate::auth::sasl::{Authenticated, Progress, SaslServer};
use crate::auth::KafkaPrincipal;
use crate::handlers::response::Response;

/// Largest frame accepted before authentication (Kafka's `sasl.server.max.receive.size`).
pub const MAX_RECEIVE_BEFORE_AUTH: usize = 512 * 1024;
/// ApiVersions requests accepted before the handshake (a client may retry at a lower
/// version); more would let an unauthenticated connection stay open indefinitely.
const MAX_VERSIONS_BEFORE_AUTH: u8 = 3;

/// What to do with a frame.
#[derive(Debug)]
pub enum Verdict {
    /// An ordinary request of an authenticated client: dispatch it as `principal`.
    Dispatch(Arc<KafkaPrincipal>),
    /// Answered here. `close`: the exchange failed; end the connection after the answer.
    Answer {
        /// The encoded response (header included, no size prefix).
        response: Response,
        /// Close the connection once the answer is written.
        close: bool,
    },
    /// Close the connection without an answer, for this reason.
    Close(String),
}

/// Where the exchange stands.
#[derive(Debug)]
enum Exchange {
    /// Waiting for SaslHandshake.
    Idle,
    /// Handshake done; waiting for tokens (bare frames after a v0 handshake).
    Tokens { session: ServerSession, bare: bool },
}

/// The authentication state of one connection.
#[derive(Debug)]
pub struct SaslConnection {
    exchange: Exchange,
    /// The authenticated principal and mechanism, once there is one.
    authenticated: Option<(Arc<KafkaPrincipal>, Mechanism)>,
    /// When the session ends (KIP-368).
    session_end: Option<Instant>,
    /// ApiVersions requests answered before the first authentication.
    versions_before_auth: u8,
}

impl Default for SaslConnection {
    fn default() -> Self {
        Self::new()
    }
}

impl SaslConnection {
    /// A connection that has not authenticated yet.
    pub fn new() -> Self {
        SaslConnection {
            exchange: Exchange::Idle,
            authenticated: None,
            session_end: None,
            versions_before_auth: 0,
        }
    }

    /// Largest frame to accept next: small until the client has authenticated.
    pub fn max_frame(&self, configured: usize) -> usize {
        if self.authenticated.is_some() {
            configured
        } else {
            configured.min(MAX_RECEIVE_BEFORE_AUTH)
        }
    }

    /// Decides what happens to `frame` (a whole frame without its size prefix).
    pub fn on_frame(&mut self, server: &SaslServer, frame: &Bytes) -> Verdict {
        if let Exchange::Tokens { bare: true, .. } = self.exchange {
            return self.bare_token(server, frame);
        }
        let key = match frame::peek_fixed_header(frame) {
            Ok((key, _, _)) => key,
            Err(e) => return Verdict::Close(e.to_string()),
        };
        let api = ApiKey::try_from(key).ok();
        let expired = self.session_end.is_some_and(|end| Instant::now() >= end);
        match (api, &self.exchange, &self.authenticated) {
            (Some(ApiKey::SaslHandshake), _, _) => self.handshake(server, frame),
            (Some(ApiKey::SaslAuthenticate), Exchange::Tokens { .. }, _) => {
                self.authenticate(server, frame)
            }
            (Some(ApiKey::ApiVersions), _, Some((principal, _))) => {
                Verdict::Dispatch(principal.clone())
            }
            (Some(ApiKey::ApiVersions), Exchange::Idle, None)
                if self.versions_before_auth < MAX_VERSIONS_BEFORE_AUTH =>
            {
                self.versions_before_auth += 1;
                Verdict::Dispatch(crate::auth::principal::anonymous_shared())
            }
            (_, _, Some((principal, _))) if !expired => Verdict::Dispatch(principal.clone()),
            (_, _, Some(_)) => Verdict::Close(
                "the SASL session expired (connections.max.reauth.ms) and the client did not re-authenticate"
                    .into(),
            ),
            (_, _, None) => Verdict::Close(format!(
                "{} request before SASL authentication",
                api.map_or_else(|| format!("API key {key}"), |a| format!("{a:?}"))
            )),
        }
    }

    fn handshake(&mut self, server: &SaslServer, frame: &Bytes) -> Verdict {
        let (header, req) = match decode::<SaslHandshakeRequest>(frame) {
            Ok(decoded) => decoded,
            Err(reason) => return Verdict::Close(reason),
        };
        let version = header.request_api_version;
        let enabled = server
            .enabled_names()
            .into_iter()
            .map(StrBytes::from_static_str)
            .collect();
        let response = SaslHandshakeResponse::default().with_mechanisms(enabled);
        let mechanism = server.mechanism(req.mechanism.as_str());
        let refusal = match (mechanism, &self.authenticated) {
            (None, _) => Some(ResponseError::UnsupportedSaslMechanism),
            // Re-authentication keeps the mechanism, and needs SaslAuthenticate (v1).
            (Some(m), Some((_, previous))) if m != *previous || version == 0 => {
                Some(ResponseError::IllegalSaslState)
            }
            (Some(_), None) if !matches!(self.exchange, Exchange::Idle) => {
                Some(ResponseError::IllegalSaslState)
            }
            _ => None,
        };
        match (refusal, mechanism) {
            (None, Some(mechanism)) => {
                self.exchange = Exchange::Tokens {
                    session: ServerSession::new(mechanism),
                    bare: version == 0,
                };
                answer(&header, ApiKey::SaslHandshake, &response, false)
            }
            (refusal, _) => {
                let error = refusal.unwrap_or(ResponseError::UnsupportedSaslMechanism);
                let response = response.with_error_code(error.code());
                answer(&header, ApiKey::SaslHandshake, &response, true)
            }
        }
    }

    fn authenticate(&mut self, server: &SaslServer, frame: &Bytes) -> Verdict {
        let (header, req) = match decode::<SaslAuthenticateRequest>(frame) {
            Ok(decoded) => decoded,
            Err(reason) => return Verdict::Close(reason),
        };
        let response = SaslAuthenticateResponse::default();
        match self.step(server, &req.auth_bytes) {
            Ok(Progress::Challenge(challenge)) => {
                let response = response.with_auth_bytes(Bytes::from(challenge));
                answer(&header, ApiKey::SaslAuthenticate, &response, false)
            }
            Ok(Progress::Done(done)) => {
                let lifetime_ms = done.session_end.map_or(0, |end| {
                    let left = end.saturating_duration_since(Instant::now()).as_millis();
                    i64::try_from(left).unwrap_or(i64::MAX).max(1)
                });
                let response = response
                    .with_auth_bytes(Bytes::from(done.response))
                    .with_session_lifetime_ms(lifetime_ms);
                answer(&header, ApiKey::SaslAuthenticate, &response, false)
            }
            Err(message) => {
                let response = response
                    .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                    .with_error_message(Some(StrBytes::from_string(message)));
                answer(&header, ApiKey::SaslAuthenticate, &response, true)
            }
        }
    }

    /// A token after a v0 handshake: bare bytes in, bare bytes out. A failure closes the
    /// connection (v0 has no way to carry an error).
    fn bare_token(&mut self, server: &SaslServer, frame: &Bytes) -> Verdict {
        match self.step(server, frame) {
            Ok(Progress::Challenge(bytes)) => Verdict::Answer {
                response: Response::from_bytes(bytes),
                close: false,
            },
            Ok(Progress::Done(done)) => Verdict::Answer {
                response: Response::from_bytes(done.response),
                close: false,
            },
            Err(message) => Verdict::Close(message),
        }
    }

    /// Feeds `input` to the exchange in progress; on success records the session.
    fn step(&mut self, server: &SaslServer, input: &[u8]) -> Result<Progress, String> {
        let Exchange::Tokens { session, .. } = &mut self.exchange else {
            return Err("no SASL exchange in progress".into());
        };
        let mechanism = session.mechanism();
        let progress = server.step(session, input);
        if !matches!(progress, Ok(Progress::Challenge(_))) {
            self.exchange = Exchange::Idle;
        }
        let progress = progress.map_err(|e| e.to_string())?;
        if let Progress::Done(done) = &progress {
            self.complete(mechanism, done)?;
        }
        Ok(progress)
    }

    fn complete(&mut self, mechanism: Mechanism, done: &Authenticated) -> Result<(), String> {
        let principal = KafkaPrincipal::user(&done.principal);
        if let Some((previous, _)) = &self.authenticated {
            // KIP-368: re-authentication may not change who the connection is.
            if **previous != principal {
                return Err(format!(
                    "re-authentication as {principal} on a connection of {previous} is not allowed"
                ));
            }
        }
        self.authenticated = Some((Arc::new(principal), mechanism));
        self.session_end = done.session_end;
        Ok(())
    }
}

/// Decodes the header and body of a SASL request.
fn decode<R: Decodable>(frame: &Bytes) -> Result<(RequestHeader, R), String> {
    let mut body = frame.clone();
    let (api, header) = frame::decode_header(&mut body).map_err(|e| e.to_string())?;
    let version = header.request_api_version;
    let supported = crate::handlers::supported_versions(api);
    if !supported.is_some_and(|(min, max)| (min..=max).contains(&version)) {
        return Err(format!("unsupported version {version} of {api:?}"));
    }
    let req = R::decode(&mut body, version)
        .map_err(|e| format!("malformed {api:?} v{version} request: {e}"))?;
    Ok((header, req))
}

fn answer<R>(header: &RequestHeader, api: ApiKey, response: &R, close: bool) -> Verdict
where
    R: kafka_protocol::protocol::Encodable
        + kafka_protocol::protocol::HeaderVersion
        + kafka_protocol::protocol::Message,
{
    match crate::handlers::encode_response_to(header, api, response) {
        Ok(bytes) => Verdict::Answer {
            response: Response::from_bytes(bytes),
            close,
        },
        Err(e) => Verdict::Close(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
