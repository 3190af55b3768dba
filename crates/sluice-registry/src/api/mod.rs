//! Confluent's REST API over axum: one module per resource group, Confluent's error bodies and
//! content types, and forwarding of writes to the leader.

pub mod compatibility;
pub mod config;
pub mod mode;
pub mod negotiation;
pub mod schemas;
pub mod subjects;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::RegistryError;
use crate::formats::limits::MAX_BODY_BYTES;
use crate::leader::Forwarder;
use crate::registry::Registry;

/// Content type of every response.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// What every handler shares.
pub struct AppState {
    /// The registry.
    pub registry: Registry,
    /// Where writes go when this instance is not the leader.
    pub forwarder: Forwarder,
}

/// Shared handler state.
pub type Shared = Arc<AppState>;

/// Query parameters of a request.
pub type Query = axum::extract::Query<HashMap<String, String>>;

/// Whether boolean query parameter `name` is true (case-insensitively, as Python sends `True`).
pub fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A JSON response with the registry content type.
pub fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => raw(StatusCode::OK, Bytes::from(body)),
        Err(e) => RegistryError::Store(e.to_string()).into_response(),
    }
}

/// A pre-serialized JSON response.
pub fn raw(status: StatusCode, body: Bytes) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

/// Reads a request body of at most [`MAX_BODY_BYTES`] (the limit comes from the
/// [`DefaultBodyLimit`] layer [`router`] and [`with_body_limit`] install); a larger one is a
/// 413 with Confluent's error body, not axum's plain-text one.
pub async fn read_body(req: Request) -> Result<Bytes, RegistryError> {
    Bytes::from_request(req, &()).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            RegistryError::PayloadTooLarge(MAX_BODY_BYTES)
        } else {
            RegistryError::BadRequest(e.body_text())
        }
    })
}

/// A JSON request body whatever its declared content type, read with [`read_body`]. Like
/// Confluent (rest-utils), malformed JSON and JSON of the wrong shape are both 400.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = RegistryError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| RegistryError::BadRequest(e.to_string()))
    }
}

/// Sets the request body limit for everything `router` routes, middleware included.
pub fn with_body_limit(router: Router) -> Router {
    router.layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error_code: u32,
    message: &'a str,
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code) = self.codes();
        let message = self.to_string();
        let body = serde_json::to_vec(&ErrorBody {
            error_code: code,
            message: &message,
        })
        .unwrap_or_default();
        raw(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Bytes::from(body),
        )
    }
}

/// The full route table, with the request body limit.
pub fn router(state: Shared) -> Router {
    let routes = Router::new()
        .route("/", get(|| async { json(&serde_json::json!({})) }))
        .route("/subjects", get(subjects::list))
        .route(
            "/subjects/{subject}",
            post(subjects::lookup).delete(subjects::delete_subject),
        )
        .route(
            "/subjects/{subject}/versions",
            get(subjects::list_versions).post(subjects::register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(subjects::get_version).delete(subjects::delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(subjects::get_version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(subjects::referenced_by),
        )
        .route("/schemas", get(schemas::list))
        .route("/schemas/types", get(schemas::types))
        .route("/schemas/ids/{id}", get(schemas::by_id))
        .route("/schemas/ids/{id}/schema", get(schemas::by_id_schema))
        .route("/schemas/ids/{id}/subjects", get(schemas::by_id_subjects))
        .route("/schemas/ids/{id}/versions", get(schemas::by_id_versions))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility::against_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility::against_version),
        )
        .route("/config", get(config::get_global).put(config::put_global))
        .route(
            "/config/{subject}",
            get(config::get_subject)
                .put(config::put_subject)
                .delete(config::delete_subject),
        )
        .route("/mode", get(mode::get_global).put(mode::put_global))
        .route(
            "/mode/{subject}",
            get(mode::get_subject)
                .put(mode::put_subject)
                .delete(mode::delete_subject),
        )
        .fallback(|| async { RegistryError::NoSuchPath })
        .with_state(state);
    with_body_limit(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_case_insensitively() {
        let mut q = HashMap::new();
        q.insert("deleted".to_string(), "True".to_string());
        q.insert("permanent".to_string(), "no".to_string());
        assert!(flag(&q, "deleted"));
        assert!(!flag(&q, "permanent"));
        assert!(!flag(&q, "absent"));
    }
}
