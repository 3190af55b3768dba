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
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use bytes::{Buf, Bytes, BytesMut};
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

/// Reports buffered ahead of the client reading them; beyond it reading the body pauses.
const IN_FLIGHT: usize = 4_096;

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
    let mut buf = BytesMut::new();
    while buf.iter().all(u8::is_ascii_whitespace) {
        match chunks.next().await {
            Some(Ok(c)) => {
                if buf.len() + c.len() > limit {
                    return Err(ApiError::too_large(format!(
                        "a record exceeds {limit} bytes"
                    )));
                }
                buf.extend_from_slice(&c);
            }
            Some(Err(e)) => return Err(ApiError::bad_request(format!("reading the body: {e}"))),
            None => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    42206,
                    "Payload error. Request body is empty. Data is required.",
                ))
            }
        }
    }
    let cx = Arc::new(cx);
    let (tx, rx) = tokio::sync::mpsc::channel::<Pending>(IN_FLIGHT);
    tokio::spawn(async move {
        let mut buf = buf;
        loop {
            let (values, fatal) = split_values(&mut buf, limit);
            for v in values {
                if tx.send(prepare(&cx, v).await).await.is_err() {
                    return; // the client went away
                }
            }
            if let Some(report) = fatal {
                let _ = tx.send(futures::future::ready(report).boxed()).await;
                return;
            }
            match chunks.next().await {
                Some(Ok(c)) => buf.extend_from_slice(&c),
                Some(Err(e)) => {
                    let report =
                        error_report(&ApiError::bad_request(format!("reading the body: {e}")));
                    let _ = tx.send(futures::future::ready(report).boxed()).await;
                    return;
                }
                None => {
                    if !buf.iter().all(u8::is_ascii_whitespace) {
                        let report = error_report(&ApiError::bad_request(
                            "Error processing JSON: the body ends inside a record",
                        ));
                        let _ = tx.send(futures::future::ready(report).boxed()).await;
                    }
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

/// Takes the complete JSON values off the front of `buf`; a malformed value, or one growing
/// past `limit`, ends the stream with an error report.
fn split_values(buf: &mut BytesMut, limit: usize) -> (Vec<Box<RawValue>>, Option<Json>) {
    let mut values = Vec::new();
    let mut consumed = 0;
    let mut fatal = None;
    {
        let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<Box<RawValue>>();
        loop {
            match it.next() {
                Some(Ok(v)) => {
                    values.push(v);
                    consumed = it.byte_offset();
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => {
                    fatal = Some(error_report(&ApiError::bad_request(format!(
                        "Error processing JSON: {e}"
                    ))));
                    break;
                }
                None => {
                    consumed = it.byte_offset();
                    break;
                }
            }
        }
    }
    buf.advance(consumed);
    if fatal.is_none() && buf.len() > limit {
        fatal = Some(error_report(&ApiError::too_large(format!(
            "a record exceeds {limit} bytes"
        ))));
    }
    (values, fatal)
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
                        let code = if f.authorization {
                            403
                        } else if f.message.contains("too large")
                            || f.message.contains("MessageSizeTooLarge")
                        {
                            413
                        } else if f.retriable {
                            50003
                        } else {
                            50002
                        };
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
    // v3 reports bad data as 400 where v2 uses its 422xx codes.
    let code = if e.status == StatusCode::UNPROCESSABLE_ENTITY {
        400
    } else {
        e.code
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
        .map_err(|f| ApiError::kafka(f.message))?;
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
    fn values_are_split_as_they_complete() {
        let mut buf = BytesMut::from(&b"{\"a\":1} {\"b\":2}\r\n{\"c\""[..]);
        let (values, fatal) = split_values(&mut buf, 1 << 20);
        let parsed = |v: Vec<Box<RawValue>>| -> Vec<Json> {
            v.iter()
                .map(|r| serde_json::from_str(r.get()).unwrap())
                .collect()
        };
        assert_eq!(parsed(values), vec![json!({"a":1}), json!({"b":2})]);
        assert!(fatal.is_none());
        buf.extend_from_slice(b":3}");
        let (values, _) = split_values(&mut buf, 1 << 20);
        assert_eq!(parsed(values), vec![json!({"c":3})]);
        assert!(buf.iter().all(u8::is_ascii_whitespace));
    }

    #[test]
    fn garbage_and_oversized_records_end_the_stream() {
        let mut buf = BytesMut::from(&b"{\"a\":1} nonsense"[..]);
        let (values, fatal) = split_values(&mut buf, 1 << 20);
        assert_eq!(values.len(), 1);
        assert_eq!(fatal.unwrap()["error_code"], 400);
        let mut buf = BytesMut::from(&b"{\"a\":\"0123456789"[..]);
        let (_, fatal) = split_values(&mut buf, 8);
        assert_eq!(fatal.unwrap()["error_code"], 41301);
    }

    proptest::proptest! {
        /// However the body is cut into chunks, the same records come out, in order.
        #[test]
        fn chunking_never_changes_the_records(
            n in 1usize..20,
            cuts in proptest::collection::vec(0usize..2000, 0..30),
        ) {
            let records: Vec<Json> = (0..n)
                .map(|i| json!({"value": {"type": "STRING", "data": format!("r{i} \"{{}}\"")}}))
                .collect();
            let body: Vec<u8> = records
                .iter()
                .flat_map(|r| {
                    let mut b = serde_json::to_vec_pretty(r).unwrap();
                    b.extend_from_slice(b"\r\n");
                    b
                })
                .collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.push(body.len());
            let (mut buf, mut got, mut from) = (BytesMut::new(), Vec::new(), 0);
            for cut in cuts {
                buf.extend_from_slice(&body[from..cut]);
                from = cut;
                let (values, fatal) = split_values(&mut buf, 1 << 20);
                proptest::prop_assert!(fatal.is_none());
                got.extend(values.iter().map(|v| serde_json::from_str::<Json>(v.get()).unwrap()));
            }
            proptest::prop_assert_eq!(got, records);
        }
    }

    #[test]
    fn times_round_trip() {
        let ms = parse_time("2021-02-05T19:14:42.123Z").unwrap();
        assert_eq!(ms, 1_612_552_482_123);
        assert_eq!(iso8601(ms), "2021-02-05T19:14:42.123Z");
        assert!(parse_time("yesterday").is_err());
    }
}
