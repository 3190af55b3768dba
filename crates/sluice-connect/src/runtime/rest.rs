//! Kafka Connect's REST API, so kcctl, Kafka UI's Connect pages and curl scripts work
//! unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::state::{self, ConnectorConfig, TargetState};
use super::worker::Inner;
use crate::plugin::{self, Plugin};

type Shared = State<Arc<Inner>>;

/// An error as Connect's REST API writes it.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({ "error_code": self.0.as_u16(), "message": self.1 })),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn not_found(name: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("Connector {name} not found"))
}

pub(super) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/connectors", get(list).post(create))
        .route("/connectors/{name}", get(info).delete(delete))
        .route("/connectors/{name}/config", get(config).put(put_config))
        .route("/connectors/{name}/status", get(status))
        .route("/connectors/{name}/tasks", get(tasks))
        .route("/connectors/{name}/tasks/{task}/status", get(task_status))
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(restart_task),
        )
        .route("/connectors/{name}/restart", post(restart))
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/stop", put(stop))
        .route("/connectors/{name}/offsets", get(offsets))
        .route("/connector-plugins", get(plugins))
        .route("/connector-plugins/{plugin}/config/validate", put(validate))
        .route_layer(axum::middleware::from_fn_with_state(
            inner.metrics.requests.clone(),
            sluice_metrics::http::track,
        ))
        .with_state(inner)
}

async fn root() -> Json<Value> {
    Json(json!({
        "version": concat!(env!("CARGO_PKG_VERSION"), "-sluice"),
        "commit": "sluice",
        "kafka_cluster_id": null,
    }))
}

fn connector(inner: &Inner, name: &str) -> ApiResult<ConnectorConfig> {
    inner
        .configs
        .read()
        .connectors
        .get(name)
        .cloned()
        .ok_or_else(|| not_found(name))
}

fn plugin_of(inner: &Inner, config: &BTreeMap<String, String>) -> ApiResult<Arc<dyn Plugin>> {
    let class = config
        .get("connector.class")
        .map(String::as_str)
        .unwrap_or("");
    plugin::find(&inner.plugins, class).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "Failed to find any class that implements Connector and which name matches {class}"
            ),
        )
    })
}

fn info_json(inner: &Inner, name: &str, c: &ConnectorConfig) -> Value {
    let kind = plugin_of(inner, &c.config)
        .map(|p| p.kind().name())
        .unwrap_or("unknown");
    json!({
        "name": name,
        "config": c.config,
        "tasks": (0..c.tasks.len()).map(|i| json!({"connector": name, "task": i})).collect::<Vec<_>>(),
        "type": kind,
    })
}

fn status_json(inner: &Inner, name: &str, c: &ConnectorConfig) -> Value {
    let statuses = inner.statuses.read();
    let unassigned = || json!({"state": "UNASSIGNED", "worker_id": inner.worker_id});
    let connector = statuses
        .get(&state::connector_status_key(name))
        .map(|s| json!({"state": s.state, "worker_id": s.worker_id, "trace": s.trace}))
        .unwrap_or_else(unassigned);
    let tasks: Vec<Value> = (0..c.tasks.len() as u32)
        .map(|n| {
            let mut v = statuses
                .get(&state::task_status_key(name, n))
                .map(|s| json!({"state": s.state, "worker_id": s.worker_id, "trace": s.trace}))
                .unwrap_or_else(unassigned);
            v["id"] = json!(n);
            if v["trace"].is_null() {
                if let Some(m) = v.as_object_mut() {
                    m.remove("trace");
                }
            }
            v
        })
        .collect();
    let mut connector = connector;
    if connector["trace"].is_null() {
        if let Some(m) = connector.as_object_mut() {
            m.remove("trace");
        }
    }
    let kind = plugin_of(inner, &c.config)
        .map(|p| p.kind().name())
        .unwrap_or("unknown");
    json!({"name": name, "connector": connector, "tasks": tasks, "type": kind})
}

async fn list(State(inner): Shared, query: axum::extract::RawQuery) -> Json<Value> {
    // `?expand=status&expand=info`: repeated keys, which serde_urlencoded maps poorly.
    let expand: Vec<String> = query
        .0
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.strip_prefix("expand="))
        .map(str::to_owned)
        .collect();
    let connectors = inner.configs.read().connectors.clone();
    if expand.is_empty() {
        return Json(json!(connectors.keys().collect::<Vec<_>>()));
    }
    inner.statuses_caught_up().await;
    let mut out = serde_json::Map::new();
    for (name, c) in &connectors {
        let mut entry = serde_json::Map::new();
        if expand.iter().any(|e| e == "status") {
            entry.insert("status".into(), status_json(&inner, name, c));
        }
        if expand.iter().any(|e| e == "info") {
            entry.insert("info".into(), info_json(&inner, name, c));
        }
        out.insert(name.clone(), Value::Object(entry));
    }
    Json(Value::Object(out))
}

#[derive(Deserialize)]
struct CreateBody {
    name: Option<String>,
    config: Option<BTreeMap<String, Value>>,
}

fn string_map(config: BTreeMap<String, Value>) -> BTreeMap<String, String> {
    config
        .into_iter()
        .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect()
}

/// Validates `config` and writes it with its task configs.
async fn store(inner: &Inner, name: &str, config: BTreeMap<String, String>) -> ApiResult<()> {
    if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("invalid connector name {name:?}"),
        ));
    }
    let plugin = plugin_of(inner, &config)?;
    let problems = plugin.validate(&config);
    if !problems.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "Connector configuration is invalid and contains the following errors: {}",
                problems.summary()
            ),
        ));
    }
    let max_tasks = config
        .get("tasks.max")
        .and_then(|t| t.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    let tasks = plugin.task_configs(&config, max_tasks);
    inner
        .write_config(state::config_records(name, &config, &tasks))
        .await
        .map_err(internal)
}

async fn create(
    State(inner): Shared,
    Json(body): Json<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = body
        .name
        .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "connector name is required".into()))?;
    let mut config = string_map(body.config.ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "connector config is required".into(),
        )
    })?);
    config.insert("name".into(), name.clone());
    if inner.configs.read().connectors.contains_key(&name) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("Connector {name} already exists"),
        ));
    }
    store(&inner, &name, config).await?;
    let c = connector(&inner, &name)?;
    Ok((StatusCode::CREATED, Json(info_json(&inner, &name, &c))))
}

async fn info(State(inner): Shared, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let c = connector(&inner, &name)?;
    Ok(Json(info_json(&inner, &name, &c)))
}

async fn config(State(inner): Shared, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!(connector(&inner, &name)?.config)))
}

async fn put_config(
    State(inner): Shared,
    Path(name): Path<String>,
    Json(body): Json<BTreeMap<String, Value>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut config = string_map(body);
    config.insert("name".into(), name.clone());
    let existed = inner.configs.read().connectors.contains_key(&name);
    store(&inner, &name, config).await?;
    let c = connector(&inner, &name)?;
    let code = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((code, Json(info_json(&inner, &name, &c))))
}

async fn delete(State(inner): Shared, Path(name): Path<String>) -> ApiResult<StatusCode> {
    connector(&inner, &name)?;
    inner
        .write_config(state::delete_records(&name))
        .await
        .map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn status(State(inner): Shared, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let c = connector(&inner, &name)?;
    inner.statuses_caught_up().await;
    Ok(Json(status_json(&inner, &name, &c)))
}

async fn tasks(State(inner): Shared, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let c = connector(&inner, &name)?;
    Ok(Json(json!(c
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": {"connector": name, "task": i}, "config": t}))
        .collect::<Vec<_>>())))
}

async fn task_status(
    State(inner): Shared,
    Path((name, task)): Path<(String, u32)>,
) -> ApiResult<Json<Value>> {
    let c = connector(&inner, &name)?;
    inner.statuses_caught_up().await;
    let all = status_json(&inner, &name, &c);
    all["tasks"]
        .as_array()
        .and_then(|t| t.get(task as usize))
        .cloned()
        .map(Json)
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("Task {name}-{task} not found"),
            )
        })
}

async fn restart_task(
    State(inner): Shared,
    Path((name, task)): Path<(String, u32)>,
) -> ApiResult<StatusCode> {
    let c = connector(&inner, &name)?;
    if task as usize >= c.tasks.len() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("Task {name}-{task} not found"),
        ));
    }
    inner.restart_tasks(&name, Some(&[task])).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestartQuery {
    #[serde(default)]
    include_tasks: Option<bool>,
    #[serde(default)]
    only_failed: Option<bool>,
}

async fn restart(
    State(inner): Shared,
    Path(name): Path<String>,
    Query(q): Query<RestartQuery>,
) -> ApiResult<Response> {
    let c = connector(&inner, &name)?;
    let include_tasks = q.include_tasks.unwrap_or(false);
    let only_failed = q.only_failed.unwrap_or(false);
    if include_tasks {
        inner.statuses_caught_up().await;
        let failed: Vec<u32> = (0..c.tasks.len() as u32)
            .filter(|n| {
                inner
                    .statuses
                    .read()
                    .get(&state::task_status_key(&name, *n))
                    .is_some_and(|s| s.state == "FAILED")
            })
            .collect();
        let only: Option<&[u32]> = only_failed.then_some(&failed);
        inner.restart_tasks(&name, only).await;
    } else {
        inner.poke();
    }
    if q.include_tasks.is_none() && q.only_failed.is_none() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(status_json(&inner, &name, &c))).into_response())
}

async fn set_target(inner: &Inner, name: &str, target: TargetState) -> ApiResult<()> {
    connector(inner, name)?;
    inner
        .write_config(vec![state::target_record(name, target)])
        .await
        .map_err(internal)
}

async fn pause(State(inner): Shared, Path(name): Path<String>) -> ApiResult<StatusCode> {
    set_target(&inner, &name, TargetState::Paused).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn resume(State(inner): Shared, Path(name): Path<String>) -> ApiResult<StatusCode> {
    set_target(&inner, &name, TargetState::Started).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn stop(State(inner): Shared, Path(name): Path<String>) -> ApiResult<StatusCode> {
    set_target(&inner, &name, TargetState::Stopped).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn offsets(State(inner): Shared, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    connector(&inner, &name)?;
    let offsets: Vec<Value> = inner
        .offsets
        .of(&name)
        .into_iter()
        .map(|(partition, offset)| json!({"partition": partition, "offset": offset}))
        .collect();
    Ok(Json(json!({ "offsets": offsets })))
}

async fn plugins(State(inner): Shared) -> Json<Value> {
    Json(json!(inner
        .plugins
        .iter()
        .map(|p| json!({"class": p.class(), "type": p.kind().name(), "version": env!("CARGO_PKG_VERSION")}))
        .collect::<Vec<_>>()))
}

async fn validate(
    State(inner): Shared,
    Path(plugin): Path<String>,
    Json(body): Json<BTreeMap<String, Value>>,
) -> ApiResult<Json<Value>> {
    let config = string_map(body);
    let p = plugin::find(&inner.plugins, &plugin).ok_or_else(|| {
        ApiError(StatusCode::NOT_FOUND, format!("Failed to find any class that implements Connector and which name matches {plugin}"))
    })?;
    let mut problems = p.validate(&config);
    if let Some(class) = config.get("connector.class") {
        if plugin::find(&inner.plugins, class).is_none_or(|c| c.class() != p.class()) {
            problems.add("connector.class", format!("{class} is not {}", p.class()));
        }
    }
    Ok(Json(problems.validation_response(
        p.class(),
        &p.definitions(),
        &config,
    )))
}
