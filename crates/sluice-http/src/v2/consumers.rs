//! v2 consumer instances: a consumer group member per instance living in this proxy process,
//! created, subscribed, read, committed and deleted over HTTP. Instances idle longer than the
//! configured timeout are closed, and only the API key that created one may use it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use parking_lot::Mutex;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use serde_json::{json, Value as Json};
use sluice_metrics::Gauge;

use crate::auth::Principal;
use crate::codec::Format;
use crate::error::{ApiError, ApiResult};
use crate::kafka::client_config;
use crate::server::{App, Shared};

/// Longest a records request may wait, whatever it asks for.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Most records in one records answer.
const MAX_RECORDS: usize = 10_000;
/// How long blocking consumer calls (commit, seek, committed) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The open instances.
pub(crate) struct Instances {
    max: usize,
    idle: Duration,
    gauge: Arc<Gauge>,
    open: Arc<Mutex<HashMap<InstanceKey, Arc<Instance>>>>,
}

/// (group, instance name).
type InstanceKey = (String, String);

struct Instance {
    owner: String,
    format: Format,
    consumer: Arc<StreamConsumer>,
    last_used: Mutex<Instant>,
    /// One request at a time per instance, as a Kafka consumer is not shared.
    busy: tokio::sync::Mutex<()>,
}

impl Instances {
    pub(crate) fn new(max: usize, idle: Duration, gauge: Arc<Gauge>) -> Self {
        Instances {
            max,
            idle,
            gauge,
            open: Arc::default(),
        }
    }

    /// Closes instances idle too long, every few seconds, until aborted.
    pub(crate) fn spawn_reaper(&self) -> tokio::task::JoinHandle<()> {
        let open = Arc::clone(&self.open);
        let gauge = Arc::clone(&self.gauge);
        let idle = self.idle;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(
                (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(10)),
            );
            loop {
                tick.tick().await;
                let expired: Vec<Arc<Instance>> = {
                    let mut open = open.lock();
                    let keys: Vec<_> = open
                        .iter()
                        .filter(|(_, i)| i.last_used.lock().elapsed() > idle)
                        .map(|(k, _)| k.clone())
                        .collect();
                    keys.iter().filter_map(|k| open.remove(k)).collect()
                };
                for instance in expired {
                    gauge.add(-1);
                    close(instance).await;
                }
            }
        })
    }

    /// Closes every instance (shutdown).
    pub(crate) async fn close_all(&self) {
        let all: Vec<Arc<Instance>> = self.open.lock().drain().map(|(_, i)| i).collect();
        for instance in all {
            self.gauge.add(-1);
            close(instance).await;
        }
    }

    fn get(&self, principal: &Principal, group: &str, name: &str) -> ApiResult<Arc<Instance>> {
        let open = self.open.lock();
        let instance = open
            .get(&(group.to_owned(), name.to_owned()))
            .filter(|i| i.owner == principal.name)
            .ok_or_else(ApiError::consumer_not_found)?;
        *instance.last_used.lock() = Instant::now();
        Ok(Arc::clone(instance))
    }
}

/// Leaves the group off the async threads (librdkafka blocks while it does).
async fn close(instance: Arc<Instance>) {
    let _ = tokio::task::spawn_blocking(move || {
        instance.consumer.unsubscribe();
        drop(instance);
    })
    .await;
}

#[derive(Deserialize, Default)]
struct CreateRequest {
    name: Option<String>,
    id: Option<String>,
    format: Option<String>,
    #[serde(rename = "auto.offset.reset")]
    auto_offset_reset: Option<String>,
    #[serde(rename = "auto.commit.enable")]
    auto_commit_enable: Option<String>,
    #[serde(rename = "fetch.min.bytes")]
    fetch_min_bytes: Option<Json>,
    #[serde(rename = "consumer.request.timeout.ms")]
    request_timeout_ms: Option<Json>,
}

/// `POST /consumers/{group}`.
pub(crate) async fn create(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(group): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let bytes = crate::body::read(&headers, body, 64 << 10).await?;
    let request: CreateRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        CreateRequest::default()
    } else {
        super::parse_json(&bytes)?
    };
    let format = match request.format.as_deref() {
        None => Format::Binary,
        Some(f) => Format::from_v2_name(f)
            .ok_or_else(|| ApiError::invalid_consumer_config("Invalid format type."))?,
    };
    let name = request
        .id
        .or(request.name)
        .unwrap_or_else(|| format!("rest-consumer-{}", uuid::Uuid::now_v7()));
    if name.is_empty() || name.len() > 255 || name.contains('/') {
        return Err(ApiError::invalid_consumer_config(
            "the name must be 1-255 characters without '/'",
        ));
    }
    let mut props = app.kafka.settings(&principal);
    props.insert("group.id".into(), group.clone());
    props.insert("client.id".into(), format!("sluice-http-{name}"));
    props.insert("enable.auto.offset.store".into(), "true".into());
    if let Some(reset) = request.auto_offset_reset {
        if !["earliest", "latest", "smallest", "largest", "none"].contains(&reset.as_str()) {
            return Err(ApiError::invalid_consumer_config(format!(
                "auto.offset.reset {reset:?}"
            )));
        }
        props.insert("auto.offset.reset".into(), reset);
    }
    if let Some(commit) = request.auto_commit_enable {
        if !["true", "false"].contains(&commit.as_str()) {
            return Err(ApiError::invalid_consumer_config(format!(
                "auto.commit.enable {commit:?}"
            )));
        }
        props.insert("enable.auto.commit".into(), commit);
    }
    if let Some(min) = request.fetch_min_bytes {
        props.insert("fetch.min.bytes".into(), number(&min, "fetch.min.bytes")?);
    }
    let _ = request.request_timeout_ms;
    let consumer: StreamConsumer = client_config(&props)
        .create()
        .map_err(|e| ApiError::invalid_consumer_config(e.to_string()))?;
    let key = (group.clone(), name.clone());
    {
        let mut open = app.consumers.open.lock();
        if open.contains_key(&key) {
            return Err(ApiError::consumer_exists(&name));
        }
        if open.len() >= app.consumers.max {
            return Err(ApiError::unavailable(format!(
                "{} consumer instances are open, the most this proxy keeps; delete unused ones",
                open.len()
            )));
        }
        open.insert(
            key,
            Arc::new(Instance {
                owner: principal.name.clone(),
                format,
                consumer: Arc::new(consumer),
                last_used: Mutex::new(Instant::now()),
                busy: tokio::sync::Mutex::new(()),
            }),
        );
        app.consumers.gauge.add(1);
    }
    let base = app.config.advertised_url.as_deref().unwrap_or_default();
    Ok(super::reply(
        StatusCode::OK,
        &json!({
            "instance_id": name,
            "base_uri": format!("{base}/consumers/{group}/instances/{name}"),
        }),
    ))
}

fn number(v: &Json, what: &str) -> ApiResult<String> {
    match v {
        Json::Number(n) if n.as_u64().is_some() => Ok(n.to_string()),
        Json::String(s) if s.parse::<u64>().is_ok() => Ok(s.clone()),
        _ => Err(ApiError::invalid_consumer_config(format!(
            "{what} must be a non-negative integer"
        ))),
    }
}

/// `DELETE /consumers/{group}/instances/{instance}`.
pub(crate) async fn delete(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((group, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.consumers.get(&principal, &group, &name)?;
    let removed = app.consumers.open.lock().remove(&(group, name));
    if let Some(instance) = removed {
        app.consumers.gauge.add(-1);
        close(instance).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscription {
    topics: Option<Vec<String>>,
    topic_pattern: Option<String>,
}

/// `POST .../subscription`.
pub(crate) async fn subscribe(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((group, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let instance = app.consumers.get(&principal, &group, &name)?;
    let bytes = crate::body::read(&headers, body, 1 << 20).await?;
    let s: Subscription = super::parse_json(&bytes)?;
    let topics: Vec<String> = match (s.topics, s.topic_pattern) {
        (Some(t), None) if !t.is_empty() => t,
        (None, Some(p)) if !p.is_empty() => {
            // librdkafka takes a regex subscription as a topic starting with '^'.
            vec![if p.starts_with('^') {
                p
            } else {
                format!("^{p}")
            }]
        }
        _ => {
            return Err(ApiError::unprocessable(
                "give either a non-empty topics list or a topic_pattern",
            ))
        }
    };
    let _busy = instance.busy.lock().await;
    let manual = instance
        .consumer
        .subscription()
        .is_ok_and(|s| s.count() == 0)
        && instance.consumer.assignment().is_ok_and(|a| a.count() > 0);
    if manual {
        return Err(ApiError::illegal_state(
            "Subscription to topics, partitions and pattern are mutually exclusive.",
        ));
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    instance
        .consumer
        .subscribe(&names)
        .map_err(|e| ApiError::illegal_state(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET .../subscription`.
pub(crate) async fn subscription(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((group, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let instance = app.consumers.get(&principal, &group, &name)?;
    let list = instance
        .consumer
        .subscription()
        .map_err(|e| ApiError::kafka(e.to_string()))?;
    let elements = list.elements();
    let topics: Vec<&str> = elements.iter().map(|e| e.topic()).collect();
    Ok(super::reply(StatusCode::OK, &json!({ "topics": topics })))
}

/// `DELETE .../subscription`.
pub(crate) async fn unsubscribe(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((group, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let instance = app.consumers.get(&principal, &group, &name)?;
    let _busy = instance.busy.lock().await;
    instance.consumer.unsubscribe();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(crate) struct RecordsQuery {
    timeout: Option<i64>,
    max_bytes: Option<i64>,
}

/// `GET .../records`.
pub(crate) async fn records(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((group, name)): Path<(String, String)>,
    Query(query): Query<RecordsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let instance = app.consumers.get(&principal, &group, &name)?;
    check_accept(&headers, instance.format)?;
    let wait = match query.timeout {
        Some(ms) if ms >= 0 => Duration::from_millis(ms as u64).min(MAX_WAIT),
        _ => app.config.consumer_request_timeout,
    };
    let max_bytes = match query.max_bytes {
        Some(n) if n > 0 => (n as usize).min(app.config.consumer_max_bytes),
        _ => app.config.consumer_max_bytes,
    };
    let _busy = instance.busy.lock().await;
    let out = read(&app, &instance, wait, max_bytes).await?;
    *instance.last_used.lock() = Instant::now();
    let mut r = (StatusCode::OK, axum::Json(Json::Array(out))).into_response();
    let media = format!(
        "application/vnd.kafka.{}.v2+json",
        instance.format.v2_name()
    );
    if let Ok(v) = HeaderValue::from_str(&media) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    Ok(r)
}

/// Waits up to `wait` for a first record, then takes what is already there, up to
/// `max_bytes` of keys and values.
async fn read(
    app: &App,
    instance: &Instance,
    wait: Duration,
    max_bytes: usize,
) -> ApiResult<Vec<Json>> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while out.len() < MAX_RECORDS {
        let next = if out.is_empty() {
            tokio::time::timeout_at(deadline, instance.consumer.recv()).await
        } else {
            tokio::time::timeout(Duration::from_millis(1), instance.consumer.recv()).await
        };
        let Ok(message) = next else { break };
        let m = message.map_err(|e| ApiError::kafka(e.to_string()))?;
        let size = m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len);
        // A record this format cannot show is still returned, with the reason: failing the
        // whole answer would lose the records already taken from the consumer.
        let mut errors = Vec::new();
        let mut decode = async |bytes: Option<&[u8]>, side: &str| match bytes {
            Some(b) => app
                .schemas
                .decode(instance.format, b)
                .await
                .unwrap_or_else(|e| {
                    errors.push(format!("{side}: {}", e.message));
                    Json::Null
                }),
            None => Json::Null,
        };
        let key = decode(m.key(), "key").await;
        let value = decode(m.payload(), "value").await;
        let mut record = json!({
            "topic": m.topic(), "key": key, "value": value,
            "partition": m.partition(), "offset": m.offset(),
        });
        if !errors.is_empty() {
            record["error"] = Json::String(errors.join("; "));
        }
        out.push(record);
        bytes += size;
        if bytes >= max_bytes {
            break;
        }
    }
    Ok(out)
}

/// The `Accept` header must name the instance's format (or leave it open).
fn check_accept(headers: &HeaderMap, format: Format) -> ApiResult<()> {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let mut named_other = false;
    for media in accept.split(',') {
        let essence = media
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match super::media_format(&essence) {
            Some(f) if f == format => return Ok(()),
            Some(_) => named_other = true,
            None if essence == super::V2_JSON && format == Format::Binary => return Ok(()),
            None if essence == "*/*" || essence == "application/json" => return Ok(()),
            None => {}
        }
    }
    if named_other {
        return Err(ApiError::format_mismatch(
            "The requested embedded data format does not match the deserializer for this consumer instance",
        ));
    }
    Err(ApiError::not_acceptable(accept))
}

#[derive(Deserialize)]
struct OffsetsBody {
    offsets: Vec<PartitionOffset>,
}

#[derive(Deserialize)]
struct PartitionOffset {
    topic: String,
    partition: i32,
    offset: i64,
    #[serde(default)]
    metadata: Option<String>,
}

#[derive(Deserialize)]
struct PartitionsBody {
    partitions: Vec<TopicPartition>,
}

#[derive(Deserialize)]
struct TopicPartition {
    topic: String,
    partition: i32,
}

/// `POST .../offsets`: commits the given offsets (each the last record consumed, so `+1` is
/// committed, as Confluent does), or everything returned so far when the body is empty.
pub(crate) async fn commit(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((group, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let instance = app.consumers.get(&principal, &group, &name)?;
    let bytes = crate::body::read(&headers, body, 1 << 20).await?;
    let explicit = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let b: OffsetsBody = super::parse_json(&bytes)?;
        let mut tpl = TopicPartitionList::new();
        for o in b.offsets {
            let offset = o.offset.checked_add(1).filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::unprocessable(format!("offset {} cannot be committed", o.offset))
            })?;
            tpl.add_partition_offset(&o.topic, o.partition, Offset::Offset(offset))
                .map_err(|e| ApiError::unprocessable(e.to_string()))?;
            if let Some(meta) = o.metadata {
                if let Some(mut e) = tpl.find_partition(&o.topic, o.partition) {
                    e.set_metadata(meta);
                }
            }
        }
        Some(tpl)
    };
    let _busy = instance.busy.lock().await;
    let consumer = Arc::clone(&instance.consumer);
    tokio::task::spawn_blocking(move || match explicit {
        Some(tpl) => consumer.commit(&tpl, CommitMode::Sync),
        None => consumer.commit_consumer_state(CommitMode::Sync),
    })
    .await
    .map_err(|e| ApiError::kafka(e.to_string()))?
    .or_else(|e| match e.rdkafka_error_code() {
        // Nothing fetched yet: nothing to commit, as with Kafka's Java consumer.
        Some(rdkafka::error::RDKafkaErrorCode::NoOffset) => Ok(()),
        _ => Err(ApiError::kafka(format!("commit failed: {e}"))),
    })?;
    Ok(super::reply(StatusCode::OK, &json!([])))
}

/// `GET .../offsets` with `{"partitions": [...]}`: the committed offsets.
pub(crate) async fn committed(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((group, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let instance = app.consumers.get(&principal, &group, &name)?;
    let bytes = crate::body::read(&headers, body, 1 << 20).await?;
    let b: PartitionsBody = super::parse_json(&bytes)?;
    let tpl = partition_list(&b.partitions)?;
    let consumer = Arc::clone(&instance.consumer);
    let found = tokio::task::spawn_blocking(move || consumer.committed_offsets(tpl, CALL_TIMEOUT))
        .await
        .map_err(|e| ApiError::kafka(e.to_string()))?
        .map_err(|e| ApiError::kafka(format!("reading committed offsets: {e}")))?;
    let offsets: Vec<Json> = found
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(n) => n,
                _ => -1,
            };
            json!({"topic": e.topic(), "partition": e.partition(), "offset": offset, "metadata": e.metadata()})
        })
        .collect();
    Ok(super::reply(StatusCode::OK, &json!({ "offsets": offsets })))
}

fn partition_list(partitions: &[TopicPartition]) -> ApiResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition(&p.topic, p.partition);
    }
    Ok(tpl)
}

/// `POST .../assignments`: takes these partitions by hand (no group rebalancing).
pub(crate) async fn assign(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((group, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let instance = app.consumers.get(&principal, &group, &name)?;
    let bytes = crate::body::read(&headers, body, 1 << 20).await?;
    let b: PartitionsBody = super::parse_json(&bytes)?;
    let tpl = partition_list(&b.partitions)?;
    let _busy = instance.busy.lock().await;
    if instance
        .consumer
        .subscription()
        .is_ok_and(|s| s.count() > 0)
    {
        return Err(ApiError::illegal_state(
            "Subscription to topics, partitions and pattern are mutually exclusive.",
        ));
    }
    instance
        .consumer
        .assign(&tpl)
        .map_err(|e| ApiError::illegal_state(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET .../assignments`.
pub(crate) async fn assignments(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((group, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let instance = app.consumers.get(&principal, &group, &name)?;
    let list = instance
        .consumer
        .assignment()
        .map_err(|e| ApiError::kafka(e.to_string()))?;
    let partitions: Vec<Json> = list
        .elements()
        .iter()
        .map(|e| json!({"topic": e.topic(), "partition": e.partition()}))
        .collect();
    Ok(super::reply(
        StatusCode::OK,
        &json!({ "partitions": partitions }),
    ))
}

/// `POST .../positions`: the next offsets to read.
pub(crate) async fn seek_to(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((group, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let instance = app.consumers.get(&principal, &group, &name)?;
    let bytes = crate::body::read(&headers, body, 1 << 20).await?;
    let b: OffsetsBody = super::parse_json(&bytes)?;
    let targets = b
        .offsets
        .into_iter()
        .map(|o| {
            if o.offset < 0 {
                return Err(ApiError::unprocessable(format!(
                    "offset {} is negative",
                    o.offset
                )));
            }
            Ok((
                TopicPartition {
                    topic: o.topic,
                    partition: o.partition,
                },
                Offset::Offset(o.offset),
            ))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    seek_all(&instance, targets).await
}

/// `POST .../positions/beginning`.
pub(crate) async fn seek_beginning(
    state: State<Shared>,
    principal: Extension<Arc<Principal>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    seek(state, principal, path, headers, body, Offset::Beginning).await
}

/// `POST .../positions/end`.
pub(crate) async fn seek_end(
    state: State<Shared>,
    principal: Extension<Arc<Principal>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    seek(state, principal, path, headers, body, Offset::End).await
}

async fn seek(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path((group, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
    to: Offset,
) -> ApiResult<StatusCode> {
    let instance = app.consumers.get(&principal, &group, &name)?;
    let bytes = crate::body::read(&headers, body, 1 << 20).await?;
    let b: PartitionsBody = super::parse_json(&bytes)?;
    seek_all(
        &instance,
        b.partitions.into_iter().map(|p| (p, to)).collect(),
    )
    .await
}

/// Moves each partition's position (they must be assigned to the instance).
async fn seek_all(
    instance: &Instance,
    targets: Vec<(TopicPartition, Offset)>,
) -> ApiResult<StatusCode> {
    let _busy = instance.busy.lock().await;
    let consumer = Arc::clone(&instance.consumer);
    tokio::task::spawn_blocking(move || {
        let manual = consumer.subscription().is_ok_and(|s| s.count() == 0);
        if manual {
            // Partitions taken by hand: assign them again at the new positions, which holds
            // even before their first fetch (a seek then may find no fetcher to move).
            let tpl = consumer
                .assignment()
                .map_err(|e| ApiError::kafka(e.to_string()))?;
            for (p, to) in &targets {
                let mut found = tpl.find_partition(&p.topic, p.partition).ok_or_else(|| {
                    ApiError::illegal_state(format!(
                        "{}-{} is not assigned to this consumer",
                        p.topic, p.partition
                    ))
                })?;
                found
                    .set_offset(*to)
                    .map_err(|e| ApiError::unprocessable(e.to_string()))?;
            }
            return consumer
                .assign(&tpl)
                .map_err(|e| ApiError::illegal_state(e.to_string()));
        }
        for (p, to) in &targets {
            consumer
                .seek(&p.topic, p.partition, *to, CALL_TIMEOUT)
                .map_err(|e| {
                    ApiError::illegal_state(format!(
                        "cannot seek {}-{} (is it assigned to this consumer?): {e}",
                        p.topic, p.partition
                    ))
                })?;
        }
        Ok::<(), ApiError>(())
    })
    .await
    .map_err(|e| ApiError::kafka(e.to_string()))??;
    Ok(StatusCode::NO_CONTENT)
}
