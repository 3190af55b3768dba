//! ApiVersions: what this broker implements, generated from the dispatch table.

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use super::{DispatchError, RequestContext, SUPPORTED_APIS};

/// The advertised APIs with their version ranges.
fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

/// Answers ApiVersions.
pub async fn handle(_ctx: &RequestContext, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_api_keys(api_keys())
        .with_finalized_features_epoch(-1)
}

/// For an ApiVersions request at a version this broker does not support, the response clients
/// expect: UNSUPPORTED_VERSION with the full API list, encoded as v0 so any client can read it
/// and retry with a version it finds there. `None` for every other request.
pub fn unsupported_version_response(
    api_key: i16,
    version: i16,
    correlation_id: i32,
) -> Option<Result<BytesMut, DispatchError>> {
    if api_key != ApiKey::ApiVersions as i16 {
        return None;
    }
    let (min, max) = super::supported_versions(ApiKey::ApiVersions)?;
    if (min..=max).contains(&version) {
        return None;
    }
    let response = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys());
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::new();
    let encoded = header
        .encode(&mut buf, 0)
        .and_then(|()| response.encode(&mut buf, 0));
    Some(encoded.map(|()| buf).map_err(|e| DispatchError::Encode {
        api: ApiKey::ApiVersions,
        version: 0,
        reason: e.to_string(),
    }))
}
