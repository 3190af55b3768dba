//! `POST /topics/{topic}` and `POST /topics/{topic}/partitions/{partition}`: a batch of records
//! in one format, each answered with its partition and offset or its error.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;

use crate::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::auth::Principal;
use crate::codec::Format;
use crate::error::{ApiError, ApiResult};
use crate::kafka::{FailureKind, Outgoing};
use crate::produce::{check_partition, topic_subject, SchemaSource, Side};
use crate::server::{App, Shared};
use crate::{body, provenance};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default)]
    records: Vec<Record>,
    key_schema: Option<String>,
    key_schema_id: Option<u32>,
    value_schema: Option<String>,
    value_schema_id: Option<u32>,
}

/// Keys and values stay raw JSON text: written as sent for `json`, parsed only for the
/// formats that need it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    key: Option<Box<RawValue>>,
    value: Option<Box<RawValue>>,
    partition: Option<i32>,
}

/// `POST /topics/{topic}`.
pub(crate) async fn to_topic(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    produce(&app, &principal, &topic, None, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /topics/{topic}/partitions/{partition}`.
pub(crate) async fn to_partition(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((topic, partition)): Path<(String, i32)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    produce(&app, &principal, &topic, Some(partition), &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn produce(
    app: &App,
    principal: &Principal,
    topic: &str,
    path_partition: Option<i32>,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let format = super::content_format(headers)?;
    let bytes = body::read(headers, body, app.config.max_body_bytes).await?;
    let request: Request = super::parse_json(&bytes)?;
    if request.records.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            422,
            "records may not be empty",
        ));
    }
    principal.charge(request.records.len())?;
    let producer = app.kafka.producer(principal)?;
    let partitions = producer.partitions(topic).await?;
    for r in &request.records {
        if let Some(p) = r.partition.or(path_partition) {
            check_partition(topic, p, partitions)?;
        }
    }
    let has_keys = request.records.iter().any(|r| r.key.is_some());
    let key = side(
        app,
        format,
        topic,
        true,
        has_keys,
        request.key_schema,
        request.key_schema_id,
    )
    .await?;
    let value = side(
        app,
        format,
        topic,
        false,
        true,
        request.value_schema,
        request.value_schema_id,
    )
    .await?;
    let event_type = value.type_name();
    let received = provenance::received_now();
    let mut outgoing = Vec::with_capacity(request.records.len());
    for r in &request.records {
        outgoing.push(Outgoing {
            partition: r.partition.or(path_partition),
            key: key.encode(r.key.as_deref())?,
            value: value.encode(r.value.as_deref())?,
            headers: provenance::stamp(
                &[],
                &principal.service_id,
                event_type.as_deref(),
                &received,
            ),
            timestamp: None,
        });
    }
    let results = producer
        .send(topic, outgoing, app.config.delivery_timeout)
        .await;
    let delivered = results.iter().filter(|r| r.is_ok()).count();
    app.metrics
        .records(topic, delivered, results.len() - delivered);
    let forbidden = results.iter().any(|r| {
        r.as_ref()
            .is_err_and(|f| f.kind == FailureKind::Authorization)
    });
    let offsets = results
        .into_iter()
        .map(|r| match r {
            Ok(d) => Offset {
                partition: Some(d.partition),
                offset: Some(d.offset),
                error_code: None,
                error: None,
            },
            Err(f) => Offset {
                partition: None,
                offset: None,
                error_code: Some(f.code(false)),
                error: Some(f.message),
            },
        })
        .collect();
    let status = if forbidden {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let answer = Answer {
        key_schema_id: key.schema_id(),
        value_schema_id: value.schema_id(),
        offsets,
    };
    let mut r = (status, axum::Json(answer)).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(super::V2_JSON),
    );
    Ok(r)
}

/// The answer, serialized straight from these types (a hundred small JSON maps per request
/// would cost more than the records' encoding).
#[derive(Serialize)]
struct Answer {
    key_schema_id: Option<u32>,
    value_schema_id: Option<u32>,
    offsets: Vec<Offset>,
}

#[derive(Serialize)]
struct Offset {
    partition: Option<i32>,
    offset: Option<i64>,
    error_code: Option<u32>,
    error: Option<String>,
}

/// How keys or values of the request are written: schema formats need a schema (42201/42202)
/// when there is something to write.
async fn side(
    app: &App,
    format: Format,
    topic: &str,
    is_key: bool,
    needed: bool,
    text: Option<String>,
    id: Option<u32>,
) -> ApiResult<Side> {
    if format.schema_type().is_none() {
        return Ok(Side::plain(format));
    }
    let source = match (id, text) {
        (Some(id), _) => SchemaSource::Id(id),
        (None, Some(text)) => SchemaSource::Inline(text),
        (None, None) if !needed => return Ok(Side::plain(Format::Binary)),
        (None, None) if is_key => return Err(ApiError::key_schema_missing()),
        (None, None) => return Err(ApiError::value_schema_missing()),
    };
    Side::with_schema(app, format, &topic_subject(topic, is_key), source).await
}
