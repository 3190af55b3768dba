//! Path and query extractors that refuse with the proxy's JSON errors: axum's own answer a
//! malformed path or query in plain text, which REST Proxy clients cannot parse.

use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path as AxumPath, Query as AxumQuery};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Path parameters; a segment of the wrong type (`/partitions/x`) is a 404, as a path that
/// matches no resource is (as Confluent's proxy answers).
pub(crate) struct Path<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        AxumPath::<T>::from_request_parts(parts, state)
            .await
            .map(|AxumPath(v)| Path(v))
            .map_err(|rejection| match rejection {
                PathRejection::FailedToDeserializePathParams(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ParseError { .. }
                            | ErrorKind::ParseErrorAtIndex { .. }
                            | ErrorKind::ParseErrorAtKey { .. }
                            | ErrorKind::InvalidUtf8InPathParam { .. }
                    ) =>
                {
                    ApiError::no_route()
                }
                // A route and its extractor that disagree: a bug here, not the caller's.
                other => ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    500,
                    other.body_text(),
                ),
            })
    }
}

/// Query parameters; a malformed one is a 400 naming it.
pub(crate) struct Query<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        AxumQuery::<T>::from_request_parts(parts, state)
            .await
            .map(|AxumQuery(v)| Query(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}
