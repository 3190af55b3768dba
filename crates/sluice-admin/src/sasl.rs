//! Logging in to a SASL listener (`security.protocol=sasl_plaintext|sasl_ssl`) with PLAIN,
//! SCRAM-SHA-256 or SCRAM-SHA-512: SaslHandshake v1, then SaslAuthenticate v1 exchanges.

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use sluice_sasl::{Mechanism, ScramClient};

use crate::connection::AdminConnection;
use crate::error::check;
use crate::AdminError;

/// A user name and password for a SASL listener.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslLogin {
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    pub mechanism: Mechanism,
    /// `sasl.username`.
    pub username: String,
    /// `sasl.password`.
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

const HANDSHAKE_VERSION: i16 = 1;
const AUTHENTICATE_VERSION: i16 = 1;

/// Authenticates `conn` as `login`.
pub(crate) async fn login(conn: &mut AdminConnection, login: &SaslLogin) -> Result<(), AdminError> {
    let handshake = SaslHandshakeRequest::default()
        .with_mechanism(StrBytes::from_static_str(login.mechanism.name()));
    let response = conn.request(&handshake, HANDSHAKE_VERSION).await?;
    check(response.error_code, None, || {
        let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
        format!(
            "SASL handshake for {} (the broker offers {})",
            login.mechanism,
            offered.join(", ")
        )
    })?;
    match login.mechanism.scram() {
        None if login.mechanism == Mechanism::Plain => {
            let message = format!("\0{}\0{}", login.username, login.password);
            step(conn, message.into_bytes()).await.map(drop)
        }
        None => Err(AdminError::Config(format!(
            "sasl.mechanism {} is not supported by the admin client; use PLAIN or SCRAM",
            login.mechanism
        ))),
        Some(scram) => {
            let (mut client, first) = ScramClient::start(scram, &login.username, &login.password)
                .map_err(|e| AdminError::Config(e.to_string()))?;
            let server_first = step(conn, first).await?;
            let last = client
                .server_first(&server_first)
                .map_err(|e| AdminError::Protocol(format!("SCRAM: {e}")))?;
            let server_final = step(conn, last).await?;
            client
                .server_final(&server_final)
                .map_err(|e| AdminError::Protocol(format!("SCRAM: {e}")))
        }
    }
}

async fn step(conn: &mut AdminConnection, bytes: Vec<u8>) -> Result<Bytes, AdminError> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes));
    let response = conn.request(&request, AUTHENTICATE_VERSION).await?;
    check(response.error_code, response.error_message.as_ref(), || {
        "SASL authentication".to_owned()
    })?;
    Ok(response.auth_bytes)
}
