//! SaslAuthenticate (API key 36, v0-2) reaching the handlers: the connection consumes it while
//! an exchange is in progress (`net::sasl`), so one that gets here has no handshake before it
//! and is refused with ILLEGAL_SASL_STATE.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;

/// Refuses a SASL token outside an exchange.
pub async fn handle(
    _ctx: &RequestContext,
    _req: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(StrBytes::from_static_str(
            "SaslAuthenticate without a SaslHandshake before it on a SASL listener",
        )))
}
