//! `POST /v3/clusters/{cluster}/topics/{topic}/records`: one or more concatenated JSON records
//! in the body, read as they arrive (a chunked body may stay open and stream), each answered in
//! order with its own delivery report or error object, each followed by `\r\n`. Records are
//! handed to Kafka in the order they were read; reports follow as Kafka acknowledges them.
//!
//! `POST .../records:batch`: `{"entries": [...]}` with an `id` each, answered with 207 and
//! `successes`/`failures`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;

use crate::extract::Path;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value as Json};

use crate::auth::Principal;
use crate::codec::Format;
use crate::error::{ApiError, ApiResult};
use crate::kafka::{self, Outgoing, TopicProducer};
use crate::produce::{check_partition, topic_subject, SchemaSource, Side};
use crate::server::Shared;
use crate::{body, provenance};

use super::split::Splitter;

/// Reports buffered ahead of the client reading them; beyond it reading the body pauses.
const IN_FLIGHT: usize = 4_096;
/// A stream whose body sends nothing for this long is closed.
const STREAM_IDLE: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    /// The entry's id in a `records:batch` request (read there, before the record).
    #[serde(default, rename = "id")]
    _id: Option<serde::de::IgnoredAny>,
    partition_id: Option<i32>,
    #[serde(default)]
    headers: Vec<RecordHeader>,
    key: Option<Data>,
    value: Option<Data>,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordHeader {
    name: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Data {
    #[serde(rename = "type")]
    kind: Option<String>,
    subject: Option<String>,
    subject_name_strategy: Option<String>,
    schema_id: Option<u32>,
    schema_version: Option<i32>,
    schema: Option<String>,
    /// Raw JSON text, parsed only by the formats that need it; `null` is a tombstone.
    data: Option<Box<RawValue>>,
}

/// What one request's records share.
struct Context {
    app: Shared,
    principal: Arc<Principal>,
    producer: Arc<TopicProducer>,
    cluster_id: String,
    topic: String,
    partitions: i32,
    /// Sides already resolved in this request, by their schema fields.
    sides: Mutex<HashMap<String, Side>>,
}

/// A record handed to Kafka (or refused), its report still to come.
type Pending = BoxFuture<'static, Json>;

/// `POST .../records`.
pub(crate) async fn records(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((cluster, topic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match start(&app, principal, &cluster, &topic, &headers).await {
        Ok(cx) => stream(cx, &headers, body)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Err(e) => e.into_response(),
    }
}

/// `POST .../records:batch`.
pub(crate) async fn batch(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((cluster, topic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let cx = Arc::new(start(&app, principal, &cluster, &topic, &headers).await?);
    let bytes = body::read(&headers, body, app.config.max_body_bytes).await?;
    let batch_error = |m: &str| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, 42208, m);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(batch_error("Request body is empty. Data is required."));
    }
    #[derive(Deserialize)]
    struct Batch {
        entries: Option<Vec<Box<RawValue>>>,
    }
    #[derive(Deserialize)]
    struct EntryId {
        id: Option<Json>,
    }
    let batch: Batch = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("Error processing JSON: {e}")))?;
    let entries = batch
        .entries
        .ok_or_else(|| batch_error("Request body is empty. Data is required."))?;
    if entries.is_empty() {
        return Err(batch_error("Empty batch."));
    }
    if entries.len() > app.config.max_batch_entries {
        return Err(batch_error(&format!(
            "Too many entries in batch: at most {}.",
            app.config.max_batch_entries
        )));
    }
    let mut ids = Vec::with_capacity(entries.len());
    let mut seen = HashSet::new();
    for e in &entries {
        let id = serde_json::from_str::<EntryId>(e.get())
            .ok()
            .and_then(|e| match e.id {
                Some(Json::String(id)) if (1..=80).contains(&id.len()) => Some(id),
                _ => None,
            })
            .ok_or_else(|| batch_error("Batch entry identifier is not a valid string."))?;
        if !seen.insert(id.clone()) {
            return Err(batch_error("Batch entry IDs are not distinct."));
        }
        ids.push(id);
    }
    let mut pending = Vec::with_capacity(entries.len());
    for e in entries {
        pending.push(prepare(&cx, e).await);
    }
    let mut successes = Vec::new();
    let mut failures = Vec::new();
    for (id, p) in ids.into_iter().zip(pending) {
        let mut report = p.await;
        let ok = report.get("error_code").and_then(Json::as_u64) == Some(200);
        if let Some(o) = report.as_object_mut() {
            if ok {
                o.remove("error_code");
            }
            o.insert("id".into(), Json::String(id));
        }
        if ok {
            successes.push(report);
        } else {
            failures.push(report);
        }
    }
    Ok((
        StatusCode::MULTI_STATUS,
        axum::Json(json!({"successes": successes, "failures": failures})),
    )
        .into_response())
}

/// Checks done before any record: content type, cluster, topic.
async fn start(
    app: &Shared,
    principal: Arc<Principal>,
    cluster: &str,
    topic: &str,
    headers: &HeaderMap,
) -> ApiResult<Context> {
    let json_body = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_body {
        return Err(ApiError::unsupported_media(
            "HTTP 415 Unsupported Media Type",
        ));
    }
    body::encoding(headers)?;
    let cluster_id = super::check_cluster(app, &principal, cluster).await?;
    let producer = app.kafka.producer(&principal)?;
    let partitions = producer.partitions(topic).await.map_err(|e| {
        if e.code == 40401 {
            ApiError::new(
                StatusCode::NOT_FOUND,
                404,
                "This server does not host this topic-partition.",
            )
        } else {
            e
        }
    })?;
    Ok(Context {
        app: Arc::clone(app),
        principal,
        producer,
        cluster_id,
        topic: topic.to_owned(),
        partitions,
        sides: Mutex::default(),
    })
}

/// Reads records as the body arrives and streams their reports back.
async fn stream(cx: Context, headers: &HeaderMap, body: Body) -> ApiResult<Response> {
    let limit = cx.app.config.max_body_bytes;
    let mut chunks: futures::stream::BoxStream<'static, Result<Bytes, String>> =
        match body::encoding(headers)? {
            // A compressed body is not a stream of records: take it whole, bounded.
            body::Encoding::Gzip => {
                let whole = body::read(headers, body, limit).await?;
                futures::stream::iter([Ok(whole)]).boxed()
            }
            body::Encoding::Identity => body
                .into_data_stream()
                .map(|c| c.map_err(|e| e.to_string()))
                .boxed(),
        };
    // An empty body is refused before the stream starts.
    let mut splitter = Splitter::default();
    while splitter.is_blank() {
        match next_chunk(&mut chunks).await {
            Ok(Some(c)) => splitter.push(&c),
            Ok(None) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    42206,
                    "Payload error. Request body is empty. Data is required.",
                ))
            }
            Err(e) => return Err(e),
        }
        // Bounded before the stream starts too: whitespace alone may not grow without end.
        if splitter.pending() > limit {
            return Err(ApiError::too_large(format!(
                "the body exceeds {limit} bytes"
            )));
        }
    }
    let cx = Arc::new(cx);
    let (tx, rx) = tokio::sync::mpsc::channel::<Pending>(IN_FLIGHT);
    tokio::spawn(async move {
        let end = |e: ApiError| futures::future::ready(error_report(&e)).boxed();
        loop {
            match splitter.records(limit) {
                Ok(records) => {
                    for r in records {
                        if tx.send(prepare(&cx, r).await).await.is_err() {
                            return; // the client went away
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(end(e)).await;
                    return;
                }
            }
            match next_chunk(&mut chunks).await {
                Ok(Some(c)) => splitter.push(&c),
                Ok(None) if splitter.is_blank() => return,
                Ok(None) => {
                    let e = ApiError::bad_request(
                        "Error processing JSON: the body ends inside a record",
                    );
                    let _ = tx.send(end(e)).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(end(e)).await;
                    return;
                }
            }
        }
    });
    let reports = futures::stream::unfold(rx, |mut rx| async move {
        let pending = rx.recv().await?;
        let mut line = serde_json::to_vec(&pending.await).unwrap_or_default();
        line.extend_from_slice(b"\r\n");
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(line)), rx))
    });
    let mut response = Response::new(Body::from_stream(reports));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// The next chunk of the body; a stream idle for [`STREAM_IDLE`] ends with 408.
async fn next_chunk(
    chunks: &mut futures::stream::BoxStream<'static, Result<Bytes, String>>,
) -> ApiResult<Option<Bytes>> {
    match tokio::time::timeout(STREAM_IDLE, chunks.next()).await {
        Ok(Some(Ok(c))) => Ok(Some(c)),
        Ok(Some(Err(e))) => Err(ApiError::bad_request(format!("reading the body: {e}"))),
        Ok(None) => Ok(None),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            408,
            format!(
                "no bytes for {} s: the stream is closed; open a new one",
                STREAM_IDLE.as_secs()
            ),
        )),
    }
}

/// One record: checked, encoded and handed to Kafka; the future yields its report.
async fn prepare(cx: &Arc<Context>, value: Box<RawValue>) -> Pending {
    match enqueue(cx, value).await {
        Ok((future, meta)) => {
            let cx = Arc::clone(cx);
            async move {
                let result = kafka::delivered(future).await;
                let ok = usize::from(result.is_ok());
                cx.app.metrics.records(&cx.topic, ok, 1 - ok);
                match result {
                    Ok(d) => {
                        let mut report = json!({
                            "error_code": 200,
                            "cluster_id": cx.cluster_id,
                            "topic_name": cx.topic,
                            "partition_id": d.partition,
                            "offset": d.offset,
                            "timestamp": d.timestamp.map(iso8601),
                        });
                        for (side, m) in [("key", meta.0), ("value", meta.1)] {
                            if let Some(m) = m {
                                report[side] = m;
                            }
                        }
                        report
                    }
                    Err(f) => {
                        let code = f.code(true);
                        json!({"error_code": code, "message": f.message})
                    }
                }
            }
            .boxed()
        }
        Err(e) => {
            cx.app.metrics.records(&cx.topic, 0, 1);
            futures::future::ready(error_report(&e)).boxed()
        }
    }
}

/// A per-record error object.
fn error_report(e: &ApiError) -> Json {
    // v3 reports bad data as 400 where v2 uses its 422xx codes, and a spent rate limit as a
    // plain 429.
    let code = match e.status {
        StatusCode::UNPROCESSABLE_ENTITY => 400,
        StatusCode::TOO_MANY_REQUESTS => 429,
        _ => e.code,
    };
    json!({"error_code": code, "message": e.message})
}

type SideReport = Option<Json>;

async fn enqueue(
    cx: &Context,
    value: Box<RawValue>,
) -> ApiResult<(rdkafka::producer::DeliveryFuture, (SideReport, SideReport))> {
    let record: Record = serde_json::from_str(value.get())
        .map_err(|e| ApiError::bad_request(format!("Bad Request: {e}")))?;
    cx.principal.charge(1)?;
    if let Some(p) = record.partition_id {
        check_partition(&cx.topic, p, cx.partitions)?;
    }
    let timestamp = record.timestamp.as_deref().map(parse_time).transpose()?;
    let mut caller = Vec::with_capacity(record.headers.len());
    for h in record.headers {
        let value = h
            .value
            .map(|v| base64::engine::general_purpose::STANDARD.decode(v))
            .transpose()
            .map_err(|_| {
                ApiError::bad_request(format!("Bad Request: header {} is not base64", h.name))
            })?;
        caller.push((h.name, value));
    }
    let (key, key_report) = side(cx, record.key.as_ref(), true).await?;
    let (value, value_report) = side(cx, record.value.as_ref(), false).await?;
    let event_type = value.as_ref().and_then(|(s, _)| s.type_name());
    let outgoing = Outgoing {
        partition: record.partition_id,
        key: key.map(|(_, b)| b).unwrap_or_default(),
        value: value.map(|(_, b)| b).unwrap_or_default(),
        headers: provenance::stamp(
            &caller,
            &cx.principal.service_id,
            event_type.as_deref(),
            &provenance::received_now(),
        ),
        timestamp,
    };
    let deadline = std::time::Instant::now() + cx.app.config.delivery_timeout;
    let future = cx
        .producer
        .enqueue(&cx.topic, outgoing, deadline)
        .await
        .map_err(kafka::Failed::into_api_error)?;
    Ok((future, (key_report, value_report)))
}

/// Encodes one side; its report part is `{"type", "size"}` (plus `schema_id`).
#[allow(clippy::type_complexity)]
async fn side(
    cx: &Context,
    data: Option<&Data>,
    is_key: bool,
) -> ApiResult<(Option<(Side, Option<Vec<u8>>)>, SideReport)> {
    let Some(data) = data else {
        return Ok((None, None));
    };
    let resolved = resolve(cx, data, is_key).await?;
    let bytes = resolved.encode(data.data.as_deref())?;
    let mut report = json!({
        "type": resolved.format().v3_name(),
        "size": bytes.as_ref().map_or(0, Vec::len),
    });
    if let Some(id) = resolved.schema_id() {
        report["schema_id"] = json!(id);
    }
    Ok((Some((resolved, bytes)), Some(report)))
}

/// The side a record's `key` or `value` describes, resolved once per request.
async fn resolve(cx: &Context, data: &Data, is_key: bool) -> ApiResult<Side> {
    let cache_key = format!(
        "{is_key}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        data.kind,
        data.subject,
        data.subject_name_strategy,
        data.schema_id,
        data.schema_version,
        data.schema
    );
    if let Some(s) = cx.sides.lock().get(&cache_key) {
        return Ok(s.clone());
    }
    let bad = |m: &str| ApiError::bad_request(format!("Bad Request: {m}"));
    let has_schema_fields = data.subject.is_some()
        || data.subject_name_strategy.is_some()
        || data.schema_id.is_some()
        || data.schema_version.is_some()
        || data.schema.is_some();
    if data.subject.is_some() && data.subject_name_strategy.is_some() {
        return Err(bad("give subject or subject_name_strategy, not both"));
    }
    if let Some(strategy) = &data.subject_name_strategy {
        if strategy != "TOPIC_NAME" {
            return Err(bad(&format!(
                "subject_name_strategy {strategy} is not supported; name the subject instead"
            )));
        }
    }
    let subject = data
        .subject
        .clone()
        .unwrap_or_else(|| topic_subject(&cx.topic, is_key));
    let format = data
        .kind
        .as_deref()
        .map(|k| Format::from_v3_name(k).ok_or_else(|| bad(&format!("unknown type {k}"))))
        .transpose()?;
    let side = match format {
        Some(f) if f.schema_type().is_none() => {
            if has_schema_fields {
                return Err(bad(&format!("type {} takes no schema", f.v3_name())));
            }
            Side::plain(f)
        }
        Some(f) => {
            let text = match (&data.schema, data.schema_id, data.schema_version) {
                (Some(text), None, None) => text.clone(),
                _ => {
                    return Err(bad(&format!(
                        "type {} needs an inline schema and no schema_id or schema_version",
                        f.v3_name()
                    )))
                }
            };
            Side::with_schema(&cx.app, f, &subject, SchemaSource::Inline(text)).await?
        }
        None => {
            let id =
                match (data.schema_id, data.schema_version, &data.schema) {
                    (Some(id), None, None) => id,
                    (None, version, None) => {
                        let v = version.unwrap_or(-1);
                        let side = Side::with_any_version(&cx.app, &subject, v).await?;
                        cx.sides.lock().insert(cache_key, side.clone());
                        return Ok(side);
                    }
                    _ => return Err(bad(
                        "give at most one of schema_id, schema_version and schema (with a type)",
                    )),
                };
            Side::registered(&cx.app, id).await?
        }
    };
    let mut sides = cx.sides.lock();
    if sides.len() < 64 {
        sides.insert(cache_key, side.clone());
    }
    Ok(side)
}

fn parse_time(text: &str) -> ApiResult<i64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| ApiError::bad_request(format!("Bad Request: timestamp {text:?}: {e}")))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Milliseconds since the epoch as ISO-8601 (`2021-02-05T19:14:42.000Z`).
fn iso8601(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let ms = parse_time("2021-02-05T19:14:42.123Z").unwrap();
        assert_eq!(ms, 1_612_552_482_123);
        assert_eq!(iso8601(ms), "2021-02-05T19:14:42.123Z");
        assert!(parse_time("yesterday").is_err());
    }
}
