//! `GET /topics`, `GET /topics/{topic}` and `GET /topics/{topic}/partitions`: what the caller's
//! principal may see of the cluster.

use std::sync::Arc;

use axum::extract::State;

use crate::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Value as Json};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::kafka::TopicInfo;
use crate::server::Shared;

/// `GET /topics`.
pub(crate) async fn list_topics(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
) -> ApiResult<Response> {
    let topics = app.kafka.producer(&principal)?.topics().await?;
    let mut names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    Ok(super::reply(StatusCode::OK, &json!(names)))
}

/// `GET /topics/{topic}`.
pub(crate) async fn topic(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(topic): Path<String>,
) -> ApiResult<Response> {
    let t = find(&app, &principal, &topic).await?;
    Ok(super::reply(
        StatusCode::OK,
        &json!({"name": t.name, "configs": {}, "partitions": partitions_json(&t)}),
    ))
}

/// `GET /topics/{topic}/partitions`.
pub(crate) async fn partitions(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(topic): Path<String>,
) -> ApiResult<Response> {
    let t = find(&app, &principal, &topic).await?;
    Ok(super::reply(
        StatusCode::OK,
        &Json::Array(partitions_json(&t)),
    ))
}

async fn find(app: &Shared, principal: &Principal, topic: &str) -> ApiResult<TopicInfo> {
    app.kafka
        .producer(principal)?
        .topics()
        .await?
        .into_iter()
        .find(|t| t.name == topic)
        .ok_or_else(|| ApiError::topic_not_found(topic))
}

fn partitions_json(t: &TopicInfo) -> Vec<Json> {
    let mut parts: Vec<&(i32, i32, Vec<i32>, Vec<i32>)> = t.partitions.iter().collect();
    parts.sort_by_key(|p| p.0);
    parts
        .into_iter()
        .map(|(id, leader, replicas, isr)| {
            let replicas: Vec<Json> = replicas
                .iter()
                .map(|b| json!({"broker": b, "leader": b == leader, "in_sync": isr.contains(b)}))
                .collect();
            json!({"partition": id, "leader": leader, "replicas": replicas})
        })
        .collect()
}
