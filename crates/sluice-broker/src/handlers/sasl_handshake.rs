//! SaslHandshake (API key 17, v0-1) reaching the handlers: on a SASL listener the connection
//! answers it during authentication (`net::sasl`), so a handshake that gets here arrived on a
//! listener without SASL, and is refused with ILLEGAL_SASL_STATE as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

use super::RequestContext;

/// Refuses a SASL handshake outside a SASL listener's authentication.
pub async fn handle(_ctx: &RequestContext, _req: SaslHandshakeRequest) -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())
}
