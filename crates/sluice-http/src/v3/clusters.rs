//! `GET /v3/clusters` and `GET /v3/clusters/{cluster}`: the one cluster behind the proxy.

use std::sync::Arc;

use axum::extract::State;

use crate::extract::Path;
use axum::Extension;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::server::Shared;

fn cluster(base: &str, id: &str) -> Value {
    let me = format!("{base}/v3/clusters/{id}");
    json!({
        "kind": "KafkaCluster",
        "metadata": {"self": me, "resource_name": format!("crn:///kafka={id}")},
        "cluster_id": id,
        "topics": {"related": format!("{me}/topics")},
    })
}

/// `GET /v3/clusters`.
pub(crate) async fn list(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
) -> ApiResult<Json<Value>> {
    let id = super::cluster_id(&app, &principal).await?;
    let base = app.config.advertised_url.as_deref().unwrap_or_default();
    Ok(Json(json!({
        "kind": "KafkaClusterList",
        "metadata": {"self": format!("{base}/v3/clusters"), "next": null},
        "data": [cluster(base, &id)],
    })))
}

/// `GET /v3/clusters/{cluster}`.
pub(crate) async fn one(
    State(app): State<Shared>,
    Extension(principal): Extension<Arc<Principal>>,
    Path(given): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = super::check_cluster(&app, &principal, &given).await?;
    let base = app.config.advertised_url.as_deref().unwrap_or_default();
    Ok(Json(cluster(base, &id)))
}
