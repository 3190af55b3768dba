//! The HTTP API (axum): `GET /v1/ca.pem`, `POST /v1/certificates`, `GET /v1/acls/drift`,
//! `GET /healthz`.

pub mod types;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::identity::IdentityError;
use crate::KssState;
use types::{CertificateRequest, CertificateResponse, ErrorResponse};

/// Largest request body accepted (a CSR is a few KiB).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The KSS routes over `state`.
pub fn router(state: Arc<KssState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/v1/ca.pem", get(ca_pem))
        .route("/v1/certificates", post(issue))
        .route("/v1/acls/drift", get(drift))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorResponse { error: message })).into_response()
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

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn issue(
    State(state): State<Arc<KssState>>,
    headers: HeaderMap,
    body: Result<Json<CertificateRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let service = match bearer(&headers).and_then(|t| state.verifier.verify(t)) {
        Ok(service) => service,
        Err(e) => {
            tracing::warn!(target: "audit", event = "refused", reason = %e, "certificate refused");
            let status = match e {
                IdentityError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            return error(status, e.to_string());
        }
    };
    let Json(request) = match body {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(target: "audit", event = "refused", service = %service, reason = %e, "certificate refused");
            return error(
                StatusCode::BAD_REQUEST,
                format!("{e}; send JSON {{\"csr\": \"-----BEGIN CERTIFICATE REQUEST-----...\"}}"),
            );
        }
    };
    if state.is_disabled(&service) {
        let reason = format!("service {service} is disabled; it gets no new certificates");
        tracing::warn!(target: "audit", event = "refused", service = %service, reason = %reason, "certificate refused");
        return error(StatusCode::FORBIDDEN, reason);
    }
    let lifetime = request.lifetime_secs.map(Duration::from_secs);
    match state.ca.issue(&request.csr, &service, lifetime) {
        Ok(issued) => {
            tracing::info!(
                target: "audit",
                event = "issued",
                service = %service,
                serial = %issued.serial,
                not_after = unix(issued.not_after),
                "certificate issued"
            );
            Json(CertificateResponse {
                service: service.to_string(),
                certificate: issued.certificate_pem,
                ca: state.trust_pem.clone(),
                serial: issued.serial,
                not_before: unix(issued.not_before),
                not_after: unix(issued.not_after),
            })
            .into_response()
        }
        Err(e) => {
            tracing::warn!(target: "audit", event = "refused", service = %service, reason = %e, "certificate refused");
            let status = match e {
                crate::ca::CaError::BadCsr(_) => StatusCode::BAD_REQUEST,
                crate::ca::CaError::Reserved(_) => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            error(status, e.to_string())
        }
    }
}

async fn drift(State(state): State<Arc<KssState>>) -> Response {
    let report = state.drift.read().clone();
    match report {
        Some(report) => Json(report).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "KSS manages no acl.yml; start it with --acl-file and --bootstrap".into(),
        ),
    }
}
