//! Confluent REST Proxy API v2: produce, consumer instances and topic metadata.

pub(crate) mod consumers;
pub(crate) mod metadata;
pub(crate) mod produce;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::codec::Format;
use crate::error::{ApiError, ApiResult};

/// The media type of v2 answers.
pub(crate) const V2_JSON: &str = "application/vnd.kafka.v2+json";

/// A v2 answer: JSON with the v2 media type.
pub(crate) fn reply(status: axum::http::StatusCode, body: &serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(V2_JSON));
    r
}

/// The embedded format a v2 media type names (`application/vnd.kafka.<format>.v2+json`).
pub(crate) fn media_format(media: &str) -> Option<Format> {
    let essence = media.split(';').next()?.trim().to_ascii_lowercase();
    let name = essence
        .strip_prefix("application/vnd.kafka.")?
        .strip_suffix(".v2+json")?;
    Format::from_v2_name(name)
}

/// The format of a produce request's body; anything else is a 415.
pub(crate) fn content_format(headers: &HeaderMap) -> ApiResult<Format> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(media_format)
        .ok_or_else(|| ApiError::unsupported_media("HTTP 415 Unsupported Media Type"))
}

/// A JSON request body into `T`: malformed JSON is a 400, the wrong shape a 422.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::unprocessable(e.to_string()),
        _ => ApiError::bad_request(format!("the body is not JSON: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            media_format("application/vnd.kafka.json.v2+json"),
            Some(Format::Json)
        );
        assert_eq!(
            media_format("Application/Vnd.Kafka.Avro.V2+Json; charset=utf-8"),
            Some(Format::Avro)
        );
        assert_eq!(media_format("application/json"), None);
        assert_eq!(media_format("application/vnd.kafka.v2+json"), None);
        assert_eq!(media_format("application/vnd.kafka.string.v2+json"), None);
    }
}
