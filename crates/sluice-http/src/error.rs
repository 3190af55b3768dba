//! Errors as REST Proxy clients expect them: an HTTP status plus a JSON body
//! `{"error_code": N, "message": "..."}`, where `N` is one of Confluent's numeric codes (the
//! status followed by two digits, e.g. 40401 for an unknown topic).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A request the proxy refuses or could not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} ({code}): {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Confluent's numeric error code.
    pub code: u32,
    /// What went wrong, for a person.
    pub message: String,
    /// Seconds a rate-limited client should wait (`Retry-After`).
    pub retry_after: Option<u64>,
}

/// The result of a handler.
pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the body is not what the endpoint takes (malformed JSON, wrong field types).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 400, message)
    }

    /// 401: no or unknown credentials.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 40101, message)
    }

    /// 403: Kafka refused the principal (ACLs).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, 40301, message)
    }

    /// 404 / 40401.
    pub fn topic_not_found(topic: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40401,
            format!("Topic {topic} not found."),
        )
    }

    /// 404 / 40402.
    pub fn partition_not_found(topic: &str, partition: i32) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40402,
            format!("Partition {partition} of topic {topic} not found."),
        )
    }

    /// 404 / 40403.
    pub fn consumer_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, 40403, "Consumer instance not found.")
    }

    /// 404 for a path the proxy does not serve.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found")
    }

    /// 405 for a method the path does not take.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            405,
            "HTTP 405 Method Not Allowed",
        )
    }

    /// 406 / 40601: the `Accept` format differs from the consumer's.
    pub fn format_mismatch(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, 40601, message)
    }

    /// 406 for an `Accept` header naming nothing this endpoint produces.
    pub fn not_acceptable(accept: &str) -> Self {
        Self::new(
            StatusCode::NOT_ACCEPTABLE,
            406,
            format!("HTTP 406 Not Acceptable: cannot produce {accept}"),
        )
    }

    /// 409 / 40902.
    pub fn consumer_exists(name: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            40902,
            format!("Consumer with specified consumer ID ({name}) already exists in the specified consumer group."),
        )
    }

    /// 409 / 40903: the consumer is not in a state that allows the request.
    pub fn illegal_state(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            40903,
            format!("Illegal state: {}", message.into()),
        )
    }

    /// 413: the body (or one record) exceeds a limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, 41301, message)
    }

    /// 415: a content type or encoding the endpoint does not take.
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, 415, message)
    }

    /// 422 / 42201: keys of a schema format without `key_schema` or `key_schema_id`.
    pub fn key_schema_missing() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            "Request includes keys and uses a format that requires schemas, but does not include the key_schema or key_schema_id fields",
        )
    }

    /// 422 / 42202: values of a schema format without `value_schema` or `value_schema_id`.
    pub fn value_schema_missing() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
            "Request includes values and uses a format that requires schemas, but does not include the value_schema or value_schema_id fields",
        )
    }

    /// 422 / 42203: a value does not convert to (or validate against) its schema.
    pub fn schema_mismatch(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42203,
            format!("Conversion of JSON to Object failed: {}", message.into()),
        )
    }

    /// 422 / 42204: bad consumer settings.
    pub fn invalid_consumer_config(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42204,
            format!("Invalid consumer configuration: {}", message.into()),
        )
    }

    /// 422 / 42205: the schema itself does not parse or the registry refused it.
    pub fn invalid_schema(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42205,
            format!("Invalid schema: {}", message.into()),
        )
    }

    /// 422 / 42206: the body is well-formed JSON but not a valid request.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, 42206, message)
    }

    /// 429: the caller's rate limit is spent; retry after `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            42901,
            "Request rate limit exceeded; retry later.",
        );
        e.retry_after = Some(seconds.max(1));
        e
    }

    /// 500 / 50002: Kafka failed the request.
    pub fn kafka(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, 50002, message)
    }

    /// 500 / 50003: Kafka failed the request in a way a retry may fix.
    pub fn kafka_retriable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, 50003, message)
    }

    /// 503: the proxy is at a capacity limit (consumer instances) or shutting down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, 50301, message)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({ "error_code": self.code, "message": self.message })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(seconds));
        }
        response
    }
}
