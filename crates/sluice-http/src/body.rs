//! Request bodies read under a size limit, with `Content-Encoding: gzip` undone under the same
//! limit so a small compressed body cannot expand without bound (a decompression bomb).

use std::io::Read;

use axum::body::Body;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use axum::http::HeaderMap;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::error::{ApiError, ApiResult};

/// How long a client may take to send a request body.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads the whole body: at most `limit` bytes on the wire and, once decompressed, at most
/// `limit` bytes again, within a minute (a stalled client does not hold its task forever).
pub(crate) async fn read(headers: &HeaderMap, body: Body, limit: usize) -> ApiResult<Bytes> {
    tokio::time::timeout(READ_TIMEOUT, read_unbounded_in_time(headers, body, limit))
        .await
        .map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                408,
                format!(
                    "the request body did not arrive within {} s",
                    READ_TIMEOUT.as_secs()
                ),
            )
        })?
}

async fn read_unbounded_in_time(headers: &HeaderMap, body: Body, limit: usize) -> ApiResult<Bytes> {
    let encoding = encoding(headers)?;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let mut raw = BytesMut::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if raw.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        raw.extend_from_slice(&chunk);
    }
    match encoding {
        Encoding::Identity => Ok(raw.freeze()),
        // Inflating megabytes is CPU work: off the async threads.
        Encoding::Gzip if raw.len() > 64 << 10 => {
            tokio::task::spawn_blocking(move || gunzip(&raw, limit).map(Bytes::from))
                .await
                .map_err(|e| ApiError::bad_request(format!("decompressing the body: {e}")))?
        }
        Encoding::Gzip => gunzip(&raw, limit).map(Bytes::from),
    }
}

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// As is.
    Identity,
    /// `gzip`.
    Gzip,
}

/// The body's `Content-Encoding`; anything but identity and gzip is a 415.
pub(crate) fn encoding(headers: &HeaderMap) -> ApiResult<Encoding> {
    let Some(value) = headers.get(CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    match value.to_str().map(|v| v.trim().to_ascii_lowercase()) {
        Ok(v) if v.is_empty() || v == "identity" => Ok(Encoding::Identity),
        Ok(v) if v == "gzip" || v == "x-gzip" => Ok(Encoding::Gzip),
        _ => Err(ApiError::unsupported_media(format!(
            "Content-Encoding {value:?} is not supported; send gzip or no encoding"
        ))),
    }
}

/// Undoes gzip, refusing output beyond `limit`.
pub(crate) fn gunzip(compressed: &[u8], limit: usize) -> ApiResult<Vec<u8>> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("the gzip body does not decompress: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::too_large(format!(
            "the body decompresses to more than {limit} bytes"
        )));
    }
    Ok(out)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::too_large(format!(
        "the request body exceeds the limit of {limit} bytes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn a_bomb_is_refused_without_inflating_it() {
        let bomb = gzip(&vec![0u8; 50 << 20]);
        assert!(bomb.len() < 100 << 10);
        let err = gunzip(&bomb, 1 << 20).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn gzip_round_trips_and_garbage_is_a_400() {
        assert_eq!(gunzip(&gzip(b"hello"), 5).unwrap(), b"hello");
        let err = gunzip(b"not gzip at all", 100).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn declared_and_streamed_sizes_are_both_checked() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, "11".parse().unwrap());
        let err = read(&headers, Body::from("hello world"), 10)
            .await
            .unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        let err = read(&HeaderMap::new(), Body::from("hello world"), 10)
            .await
            .unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        let ok = read(&HeaderMap::new(), Body::from("hello"), 10)
            .await
            .unwrap();
        assert_eq!(&ok[..], b"hello");
    }

    #[test]
    fn unknown_encodings_are_415() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, "br".parse().unwrap());
        let err = encoding(&headers).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
