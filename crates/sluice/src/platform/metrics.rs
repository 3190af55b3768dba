//! The Prometheus endpoint of a platform component: `GET /metrics` in the text exposition
//! format, on an address of its own so that scraping never competes with client traffic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What renders the metrics on each scrape.
pub(crate) type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// A running endpoint.
pub(crate) struct Endpoint {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Endpoint {
    /// Stops serving: idle scrape connections close at once; one still being answered gets a
    /// few seconds.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Serves `render` on `listen` when an address is given (the endpoint is off by default).
pub(crate) async fn serve_if(
    listen: Option<SocketAddr>,
    render: Render,
) -> anyhow::Result<Option<Endpoint>> {
    match listen {
        Some(listen) => Ok(Some(serve(listen, render).await?)),
        None => Ok(None),
    }
}

/// Stops an endpoint, if one runs.
pub(crate) async fn stop_if(endpoint: Option<Endpoint>) {
    if let Some(e) = endpoint {
        e.stop().await;
    }
}

/// Serves `render` on `listen` until stopped.
pub(crate) async fn serve(listen: SocketAddr, render: Render) -> anyhow::Result<Endpoint> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!("cannot listen for metrics on {listen}; is another process using it? Choose another address with --metrics-listen")
        })?;
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let render = Arc::clone(&render);
            async move {
                // Rendering reads every partition's size: off the async threads.
                match tokio::task::spawn_blocking(move || render()).await {
                    Ok(text) => {
                        ([(CONTENT_TYPE, sluice_metrics::CONTENT_TYPE)], text).into_response()
                    }
                    Err(e) => {
                        // A 500, not an empty 200: Prometheus then marks the target down
                        // instead of every series stale.
                        tracing::warn!(error = %e, "rendering the metrics failed");
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "rendering the metrics failed\n",
                        )
                            .into_response()
                    }
                }
            }
        }),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    tracing::info!(%listen, "metrics endpoint listening");
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(Endpoint { stop, task })
}
