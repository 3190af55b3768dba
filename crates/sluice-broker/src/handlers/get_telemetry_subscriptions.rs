//! GetTelemetrySubscriptions (API key 71, v0; KIP-714). Clients 3.7+ ask for a metrics
//! subscription at start-up; Sluice collects no client metrics, so every client gets an
//! instance id and an empty subscription (no requested metrics), which tells it not to push.

use kafka_protocol::messages::{
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse,
};

use super::RequestContext;

/// How often a client would push, were metrics requested (Kafka's default, 5 minutes).
const PUSH_INTERVAL_MS: i32 = 300_000;
/// Largest metrics payload accepted by PushTelemetry.
pub const TELEMETRY_MAX_BYTES: i32 = 1024 * 1024;
/// The id of the (empty) subscription every client gets.
pub const SUBSCRIPTION_ID: i32 = 0;

/// Answers with an empty subscription, assigning an instance id to new clients.
pub async fn handle(
    _ctx: &RequestContext,
    req: GetTelemetrySubscriptionsRequest,
) -> GetTelemetrySubscriptionsResponse {
    let instance = if req.client_instance_id.is_nil() {
        uuid::Uuid::new_v4()
    } else {
        req.client_instance_id
    };
    GetTelemetrySubscriptionsResponse::default()
        .with_client_instance_id(instance)
        .with_subscription_id(SUBSCRIPTION_ID)
        .with_push_interval_ms(PUSH_INTERVAL_MS)
        .with_telemetry_max_bytes(TELEMETRY_MAX_BYTES)
        .with_delta_temporality(true)
}
