//! PushTelemetry (API key 72, v0; KIP-714): a client pushing metrics although its subscription
//! requests none. The payload is checked against the announced limits and dropped.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{PushTelemetryRequest, PushTelemetryResponse};

use super::get_telemetry_subscriptions::{SUBSCRIPTION_ID, TELEMETRY_MAX_BYTES};
use super::RequestContext;

/// Accepts and discards a metrics push.
pub async fn handle(_ctx: &RequestContext, req: PushTelemetryRequest) -> PushTelemetryResponse {
    let error = if req.client_instance_id.is_nil() {
        Some(ResponseError::InvalidRequest)
    } else if req.subscription_id != SUBSCRIPTION_ID {
        Some(ResponseError::UnknownSubscriptionId)
    } else if req.metrics.len() > TELEMETRY_MAX_BYTES as usize {
        Some(ResponseError::TelemetryTooLarge)
    } else {
        None
    };
    PushTelemetryResponse::default().with_error_code(error.map_or(0, |e| e.code()))
}
