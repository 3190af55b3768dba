//! The Prometheus endpoint of a platform component: `GET /metrics` in the text exposition
//! format, on an address of its own so that scraping never competes with client traffic.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::task::JoinHandle;

/// What renders the metrics on each scrape.
pub(crate) type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves `render` on `listen` until the returned task is aborted.
pub(crate) async fn serve(listen: SocketAddr, render: Render) -> anyhow::Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for metrics on {listen}"))?;
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let render = Arc::clone(&render);
            async move {
                // Rendering reads every partition's size: off the async threads.
                let text = tokio::task::spawn_blocking(move || render())
                    .await
                    .unwrap_or_else(|e| format!("# rendering the metrics failed: {e}\n"));
                ([(CONTENT_TYPE, sluice_metrics::CONTENT_TYPE)], text).into_response()
            }
        }),
    );
    tracing::info!(%listen, "metrics endpoint listening");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!(error = %e, "the metrics endpoint stopped");
        }
    }))
}
