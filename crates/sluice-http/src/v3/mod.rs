//! Confluent REST Proxy API v3: clusters, and produce (one record, a stream of records with a
//! delivery report each, or a batch).

pub(crate) mod clusters;
pub(crate) mod produce;
mod split;

use crate::error::{ApiError, ApiResult};
use crate::server::App;

/// The cluster's id, read from Kafka once.
pub(crate) async fn cluster_id(app: &App, principal: &crate::auth::Principal) -> ApiResult<String> {
    app.cluster_id
        .get_or_try_init(|| async {
            let producer = app.kafka.producer(principal)?;
            producer.cluster_id().await
        })
        .await
        .cloned()
}

/// 404 unless `given` is this cluster's id.
pub(crate) async fn check_cluster(
    app: &App,
    principal: &crate::auth::Principal,
    given: &str,
) -> ApiResult<String> {
    let id = cluster_id(app, principal).await?;
    if id != given {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            404,
            format!("Cluster {given} cannot be found."),
        ));
    }
    Ok(id)
}
