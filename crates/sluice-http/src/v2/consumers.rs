//! v2 consumer instances: a consumer group member per instance living in this proxy process,
//! created, subscribed, read, committed and deleted over HTTP. Instances idle longer than the
//! configured timeout are closed, and only the API key that created one may use it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use parking_lot::Mutex;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use sluice_metrics::Gauge;

use crate::auth::Principal;
use crate::codec::Format;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
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
    /// How long a records request waits when it does not say (`consumer.request.timeout.ms`).
    wait: Duration,
    consumer: Arc<StreamConsumer>,
    /// Where a partition taken by hand starts without a committed offset
    /// (`auto.offset.reset`).
    reset: Offset,
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

    /// Refuses a new instance whose name is taken or that would pass a limit (all instances,
    /// or this key's share of them).
    fn admit(&self, key: &InstanceKey, owner: &str) -> ApiResult<()> {
        let open = self.open.lock();
        if open.contains_key(key) {
            return Err(ApiError::consumer_exists(&key.1));
        }
        if open.len() >= self.max {
            return Err(ApiError::unavailable(format!(
                "{} consumer instances are open, the most this proxy keeps; delete unused ones",
                open.len()
            )));
        }
        let mine = open.values().filter(|i| i.owner == owner).count();
        if mine >= self.max_per_key() {
            return Err(ApiError::unavailable(format!(
                "this API key has {mine} consumer instances open, its most; delete unused ones"
            )));
        }
        Ok(())
    }

    /// Most instances one key may hold: a tenth of all, at least one.
    fn max_per_key(&self) -> usize {
        (self.max / 10).max(1)
    }

    /// Adds a created instance, unless its name was taken meanwhile.
    fn insert(&self, key: InstanceKey, instance: Arc<Instance>) -> ApiResult<()> {
        let mut open = self.open.lock();
        if open.contains_key(&key) {
            return Err(ApiError::consumer_exists(&key.1));
        }
        open.insert(key, instance);
        self.gauge.add(1);
        Ok(())
    }

    /// Takes `principal`'s instance out of the table (owner checked under the same lock).
    fn remove(&self, principal: &Principal, key: &InstanceKey) -> ApiResult<Arc<Instance>> {
        let mut open = self.open.lock();
        match open.get(key) {
            Some(i) if i.owner == principal.name => {}
            _ => return Err(ApiError::consumer_not_found()),
        }
        let instance = open.remove(key).ok_or_else(ApiError::consumer_not_found)?;
        self.gauge.add(-1);
        Ok(instance)
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

/// Leaves the group off the async threads: dropping a librdkafka consumer blocks until it has
/// left. The request using the instance finishes first (its lock), and the drop waits, on a
/// blocking thread, for the last short-lived handle of a request to go.
async fn close(instance: Arc<Instance>) {
    drop(instance.busy.lock().await);
    let _ = tokio::task::spawn_blocking(move || {
        instance.consumer.unsubscribe();
        drop_when_last(instance);
    })
    .await;
}

/// Drops `value` once this is its last handle (within a minute), on the calling thread.
fn drop_when_last<T>(mut value: Arc<T>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match Arc::try_unwrap(value) {
            Ok(last) => return drop(last),
            Err(shared) => value = shared,
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The consumer instance a request's path names, resolved for its caller: the handlers'
/// common first step (404/40403 for an unknown instance or another key's).
pub(crate) struct Target(Arc<Instance>);

impl FromRequestParts<Shared> for Target {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> ApiResult<Self> {
        let Path((group, name)) = Path::<(String, String)>::from_request_parts(parts, app)
            .await
            .map_err(|_| ApiError::consumer_not_found())?;
        let principal = parts
            .extensions
            .get::<Arc<Principal>>()
            .ok_or_else(|| ApiError::unauthenticated("no caller"))?;
        app.consumers.get(principal, &group, &name).map(Target)
    }
}

/// A JSON request body of at most 1 MiB; `None` when it is empty.
pub(crate) struct MaybeJson<T>(Option<T>);

impl<T: DeserializeOwned> FromRequest<Shared> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &Shared) -> ApiResult<Self> {
        let (parts, body) = request.into_parts();
        let bytes = crate::body::read(&parts.headers, body, 1 << 20).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJson(None));
        }
        super::parse_json(&bytes).map(|v| MaybeJson(Some(v)))
    }
}

/// A JSON request body that must be there.
pub(crate) struct JsonBody<T>(T);

impl<T: DeserializeOwned> FromRequest<Shared> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &Shared) -> ApiResult<Self> {
        match MaybeJson::from_request(request, app).await? {
            MaybeJson(Some(v)) => Ok(JsonBody(v)),
            MaybeJson(None) => Err(ApiError::unprocessable("the request needs a JSON body")),
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct CreateRequest {
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
    MaybeJson(request): MaybeJson<CreateRequest>,
) -> ApiResult<Response> {
    let request = request.unwrap_or_default();
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
    // librdkafka's default, `latest`, unless the request says otherwise.
    let mut reset = Offset::End;
    if let Some(policy) = request.auto_offset_reset {
        reset = match policy.as_str() {
            "earliest" | "smallest" => Offset::Beginning,
            "latest" | "largest" => Offset::End,
            "none" => Offset::Invalid,
            _ => {
                return Err(ApiError::invalid_consumer_config(format!(
                    "auto.offset.reset {policy:?}"
                )))
            }
        };
        props.insert("auto.offset.reset".into(), policy);
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
    let wait = match &request.request_timeout_ms {
        Some(ms) => Duration::from_millis(
            number(ms, "consumer.request.timeout.ms")?
                .parse()
                .unwrap_or(u64::MAX),
        )
        .min(MAX_WAIT),
        None => app.config.consumer_request_timeout,
    };
    // librdkafka prefetches up to 64 MiB per consumer by default; a thousand instances must not
    // hold 64 GB.
    props
        .entry("queued.max.messages.kbytes".into())
        .or_insert_with(|| "8192".into());
    let key = (group.clone(), name.clone());
    app.consumers.admit(&key, &principal.name)?;
    let consumer: StreamConsumer = client_config(&props)
        .create()
        .map_err(|e| ApiError::invalid_consumer_config(e.to_string()))?;
    let instance = Arc::new(Instance {
        owner: principal.name.clone(),
        format,
        wait,
        consumer: Arc::new(consumer),
        reset,
        last_used: Mutex::new(Instant::now()),
        busy: tokio::sync::Mutex::new(()),
    });
    if let Err(e) = app.consumers.insert(key, Arc::clone(&instance)) {
        // Lost a race for the name: this consumer never joined; drop it off the async threads.
        let _ = tokio::task::spawn_blocking(move || drop_when_last(instance)).await;
        return Err(e);
    }
    let base = app.config.advertised_url.as_deref().unwrap_or_default();
    Ok(super::reply(
        StatusCode::OK,
        &json!({
            "instance_id": name,
            "base_uri": format!(
                "{base}/consumers/{}/instances/{}",
                sluice_sdk::registry::encode_path(&group),
                sluice_sdk::registry::encode_path(&name)
            ),
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
    Path(key): Path<InstanceKey>,
) -> ApiResult<StatusCode> {
    let instance = app.consumers.remove(&principal, &key)?;
    close(instance).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Subscription {
    topics: Option<Vec<String>>,
    topic_pattern: Option<String>,
}

/// `POST .../subscription`.
pub(crate) async fn subscribe(
    Target(instance): Target,
    JsonBody(s): JsonBody<Subscription>,
) -> ApiResult<StatusCode> {
    let topics: Vec<String> = match (s.topics, s.topic_pattern) {
        (Some(t), None) if !t.is_empty() => t,
        (None, Some(p)) if !p.is_empty() => {
            // librdkafka takes a regex subscription as a topic starting with '^'; Kafka's
            // patterns match whole names.
            vec![format!(
                "^({})$",
                p.trim_start_matches('^').trim_end_matches('$')
            )]
        }
        _ => {
            return Err(ApiError::unprocessable(
                "give either a non-empty topics list or a topic_pattern",
            ))
        }
    };
    let _busy = instance.busy.lock().await;
    if is_manual(&instance.consumer) {
        return Err(exclusive());
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    instance
        .consumer
        .subscribe(&names)
        .map_err(|e| ApiError::illegal_state(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET .../subscription`.
pub(crate) async fn subscription(Target(instance): Target) -> ApiResult<Response> {
    let list = instance
        .consumer
        .subscription()
        .map_err(|e| ApiError::kafka(e.to_string()))?;
    let elements = list.elements();
    let topics: Vec<&str> = elements.iter().map(|e| e.topic()).collect();
    Ok(super::reply(StatusCode::OK, &json!({ "topics": topics })))
}

/// `DELETE .../subscription`.
pub(crate) async fn unsubscribe(Target(instance): Target) -> ApiResult<StatusCode> {
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
    Target(instance): Target,
    Query(query): Query<RecordsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_accept(&headers, instance.format)?;
    let wait = match query.timeout {
        Some(ms) if ms >= 0 => Duration::from_millis(ms as u64).min(MAX_WAIT),
        _ => instance.wait,
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
        let m = match message {
            Ok(m) => m,
            // The records taken so far are returned (their offsets are stored already); the
            // error comes with the next request.
            Err(_) if !out.is_empty() => break,
            Err(e) => return Err(ApiError::kafka(e.to_string())),
        };
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
pub(crate) struct OffsetsBody {
    offsets: Vec<PartitionOffset>,
}

#[derive(Deserialize)]
pub(crate) struct PartitionOffset {
    topic: String,
    partition: i32,
    offset: i64,
    #[serde(default)]
    metadata: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct PartitionsBody {
    partitions: Vec<TopicPartition>,
}

#[derive(Deserialize)]
pub(crate) struct TopicPartition {
    topic: String,
    partition: i32,
}

/// `POST .../offsets`: commits the given offsets (each the last record consumed, so `+1` is
/// committed, as Confluent does), or everything returned so far when the body is empty.
pub(crate) async fn commit(
    Target(instance): Target,
    MaybeJson(body): MaybeJson<OffsetsBody>,
) -> ApiResult<Response> {
    let explicit = if let Some(b) = body {
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
    } else {
        None
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
    Target(instance): Target,
    JsonBody(b): JsonBody<PartitionsBody>,
) -> ApiResult<Response> {
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
    Target(instance): Target,
    JsonBody(b): JsonBody<PartitionsBody>,
) -> ApiResult<StatusCode> {
    let tpl = partition_list(&b.partitions)?;
    let _busy = instance.busy.lock().await;
    if is_subscribed(&instance.consumer) {
        return Err(exclusive());
    }
    let consumer = Arc::clone(&instance.consumer);
    let reset = instance.reset;
    tokio::task::spawn_blocking(move || {
        let start = starting_offsets(&consumer, tpl, reset)?;
        consumer
            .assign(&start)
            .map_err(|e| ApiError::illegal_state(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::kafka(e.to_string()))??;
    Ok(StatusCode::NO_CONTENT)
}

/// Where partitions taken by hand start: the group's committed offset, else the reset policy.
/// Resolved here rather than left to librdkafka: its committed-offset lookup for a new
/// assignment could answer after a later `positions` request and move the partition back to
/// the committed offset (a flaky test showed it).
fn starting_offsets(
    consumer: &StreamConsumer,
    partitions: TopicPartitionList,
    reset: Offset,
) -> ApiResult<TopicPartitionList> {
    let committed = consumer
        .committed_offsets(partitions, CALL_TIMEOUT)
        .map_err(|e| ApiError::kafka(e.to_string()))?;
    let mut start = TopicPartitionList::new();
    for e in committed.elements() {
        let offset = match e.offset() {
            Offset::Offset(n) => Offset::Offset(n),
            _ => reset,
        };
        start
            .add_partition_offset(e.topic(), e.partition(), offset)
            .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    }
    Ok(start)
}

/// Whether the consumer follows a subscription (the group assigns its partitions).
fn is_subscribed(consumer: &StreamConsumer) -> bool {
    consumer.subscription().is_ok_and(|s| s.count() > 0)
}

/// Whether the consumer holds partitions it took by hand.
fn is_manual(consumer: &StreamConsumer) -> bool {
    !is_subscribed(consumer) && consumer.assignment().is_ok_and(|a| a.count() > 0)
}

fn exclusive() -> ApiError {
    ApiError::illegal_state(
        "Subscription to topics, partitions and pattern are mutually exclusive.",
    )
}

/// `GET .../assignments`.
pub(crate) async fn assignments(Target(instance): Target) -> ApiResult<Response> {
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
    Target(instance): Target,
    JsonBody(b): JsonBody<OffsetsBody>,
) -> ApiResult<StatusCode> {
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
    Target(instance): Target,
    JsonBody(b): JsonBody<PartitionsBody>,
) -> ApiResult<StatusCode> {
    seek_all(
        &instance,
        b.partitions
            .into_iter()
            .map(|p| (p, Offset::Beginning))
            .collect(),
    )
    .await
}

/// `POST .../positions/end`.
pub(crate) async fn seek_end(
    Target(instance): Target,
    JsonBody(b): JsonBody<PartitionsBody>,
) -> ApiResult<StatusCode> {
    seek_all(
        &instance,
        b.partitions.into_iter().map(|p| (p, Offset::End)).collect(),
    )
    .await
}

/// Moves one partition's position. A partition assigned a moment ago may not have a fetcher
/// yet (librdkafka answers "Erroneous state"), so the seek is retried until it takes or the
/// call timeout passes; a partition not assigned at all fails at once.
fn seek_when_ready(consumer: &StreamConsumer, p: &TopicPartition, to: Offset) -> ApiResult<()> {
    let assigned = consumer
        .assignment()
        .map_err(|e| ApiError::kafka(e.to_string()))?
        .find_partition(&p.topic, p.partition)
        .is_some();
    if !assigned {
        return Err(ApiError::illegal_state(format!(
            "{}-{} is not assigned to this consumer",
            p.topic, p.partition
        )));
    }
    let deadline = Instant::now() + CALL_TIMEOUT;
    loop {
        match consumer.seek(&p.topic, p.partition, to, CALL_TIMEOUT) {
            Ok(()) => return Ok(()),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                return Err(ApiError::illegal_state(format!(
                    "cannot seek {}-{}: {e}",
                    p.topic, p.partition
                )))
            }
        }
    }
}

/// Moves each partition's position (they must be assigned to the instance).
async fn seek_all(
    instance: &Instance,
    targets: Vec<(TopicPartition, Offset)>,
) -> ApiResult<StatusCode> {
    let _busy = instance.busy.lock().await;
    let consumer = Arc::clone(&instance.consumer);
    tokio::task::spawn_blocking(move || {
        for (p, to) in &targets {
            seek_when_ready(&consumer, p, *to)?;
        }
        Ok::<(), ApiError>(())
    })
    .await
    .map_err(|e| ApiError::kafka(e.to_string()))??;
    Ok(StatusCode::NO_CONTENT)
}
