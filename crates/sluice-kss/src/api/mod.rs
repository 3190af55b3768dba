//! The HTTP API (axum): `GET /v1/ca.pem`, `POST /v1/certificates`, `GET /v1/acls/drift`,
//! `GET /healthz`.
//!
//! Every refusal is a status and a JSON `{"error": "..."}` saying what to change: 400 for a body
//! that is not what the endpoint takes, 413 for one over [`MAX_BODY_BYTES`], 401 for the token,
//! 403 for a service that may not have what it asks for, 404/405 for an unknown endpoint.

pub mod types;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;

use crate::ca::CaError;
use crate::identity::IdentityError;
use crate::metrics::Refused;
use crate::service::ServiceId;
use crate::KssState;
use types::{CertificateRequest, CertificateResponse, ErrorResponse};

/// Largest request body accepted: a CSR is a few KiB (an RSA-4096 one under 4 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A body over [`MAX_BODY_BYTES`] is still read, and discarded, up to this size, so a client
/// that is still sending it gets the 413 rather than a connection reset mid-request.
const DRAIN_BYTES: usize = 1024 * 1024;

/// The KSS routes over `state`.
pub fn router(state: Arc<KssState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/v1/ca.pem", get(ca_pem))
        .route("/v1/certificates", post(issue))
        .route("/v1/acls/drift", get(drift))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint; KSS serves GET /v1/ca.pem, POST /v1/certificates, GET /v1/acls/drift and GET /healthz".into(),
            )
        })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed; POST /v1/certificates, GET everything else".into(),
            )
        })
        .with_state(state)
}

/// A refusal: its status and what to change.
struct Refusal {
    status: StatusCode,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorResponse {
                error: self.message,
            }),
        )
            .into_response()
    }
}

fn error(status: StatusCode, message: String) -> Refusal {
    Refusal { status, message }
}

async fn ca_pem(State(state): State<Arc<KssState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        state.trust_pem.clone(),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Result<&str, IdentityError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(IdentityError::Missing)?
        .to_str()
        .map_err(|_| IdentityError::Malformed("the Authorization header is not text".into()))?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(IdentityError::Missing)
}

/// The service the request's token authenticates (its `jti` is used up), or the refusal.
fn authenticate(state: &KssState, headers: &HeaderMap, what: &str) -> Result<ServiceId, Refusal> {
    bearer(headers)
        .and_then(|t| state.verifier.verify(t))
        .map_err(|e| {
            tracing::warn!(target: "audit", event = "refused", reason = %e, "{what} refused");
            let status = match e {
                IdentityError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            error(status, e.to_string())
        })
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Reads `body`, keeping at most [`MAX_BODY_BYTES`] in memory.
async fn read_body(headers: &HeaderMap, mut body: Body) -> Result<Vec<u8>, Refusal> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {MAX_BODY_BYTES} bytes; a CSR request is a few KiB"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > DRAIN_BYTES as u64) {
        return Err(too_large());
    }
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total = total.saturating_add(data.len());
        if total <= MAX_BODY_BYTES {
            kept.extend_from_slice(&data);
        } else if total > DRAIN_BYTES {
            break;
        }
    }
    if total > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(kept)
}

/// The certificate request in `body`. Read before the token is checked, so a malformed or
/// oversized request does not use up a token.
async fn certificate_request(
    headers: &HeaderMap,
    body: Body,
) -> Result<CertificateRequest, Refusal> {
    let body = read_body(headers, body).await?;
    serde_json::from_slice(&body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid request ({e}); send JSON {{\"csr\": \"-----BEGIN CERTIFICATE REQUEST-----...\", \"lifetime_secs\": 3600}} (lifetime_secs optional)"
            ),
        )
    })
}

async fn issue(
    State(state): State<Arc<KssState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let counted = |why: Refused| {
        let metrics = Arc::clone(&state.metrics);
        move |r: Refusal| {
            metrics.refused(why);
            r
        }
    };
    let request = certificate_request(&headers, body)
        .await
        .map_err(counted(Refused::BadRequest))?;
    let service = authenticate(&state, &headers, "certificate").map_err(|r| {
        let why = if r.status == StatusCode::SERVICE_UNAVAILABLE {
            Refused::Unavailable
        } else {
            Refused::Token
        };
        counted(why)(r)
    })?;
    let refuse = |status: StatusCode, reason: String, why: Refused| {
        tracing::warn!(target: "audit", event = "refused", service = %service, reason = %reason, "certificate refused");
        state.metrics.refused(why);
        error(status, reason)
    };
    if state.is_disabled(&service) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("service {service} is disabled; it gets no new certificates"),
            Refused::Disabled,
        ));
    }
    let lifetime = request.lifetime_secs.map(Duration::from_secs);
    match state.ca.issue(&request.csr, &service, lifetime) {
        Ok(issued) => {
            state.metrics.issued();
            tracing::info!(
                target: "audit",
                event = "issued",
                service = %service,
                serial = %issued.serial,
                not_after = unix(issued.not_after),
                "certificate issued"
            );
            Ok(Json(CertificateResponse {
                service: service.to_string(),
                certificate: issued.certificate_pem,
                ca: state.trust_pem.clone(),
                serial: issued.serial,
                not_before: unix(issued.not_before),
                not_after: unix(issued.not_after),
            })
            .into_response())
        }
        Err(e) => {
            let (status, why) = match e {
                CaError::BadCsr(_) => (StatusCode::BAD_REQUEST, Refused::BadCsr),
                CaError::Reserved(_) => (StatusCode::FORBIDDEN, Refused::Reserved),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, Refused::Internal),
            };
            Err(refuse(status, e.to_string(), why))
        }
    }
}

async fn drift(
    State(state): State<Arc<KssState>>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let service = authenticate(&state, &headers, "drift report")?;
    if !state.admin_services.contains(&service) {
        let reason = format!(
            "service {service} may not read the ACL drift report; only KSS's admin services (--admin-service) may"
        );
        tracing::warn!(target: "audit", event = "refused", service = %service, reason = %reason, "drift report refused");
        return Err(error(StatusCode::FORBIDDEN, reason));
    }
    let report = state.drift.read().clone();
    match report {
        Some(report) => Ok(Json(report).into_response()),
        None => Err(error(
            StatusCode::NOT_FOUND,
            "KSS manages no acl.yml; start it with --acl-file and --bootstrap".into(),
        )),
    }
}
