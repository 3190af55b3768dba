//! The HTTP server: shared state, routes, middleware (CORS, metrics, authentication) and the
//! handle that stops it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use sluice_sdk::{RegistryClient, RetryPolicy};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::Authenticator;
use crate::codec::Schemas;
use crate::config::HttpConfig;
use crate::cors::{self, Cors};
use crate::error::ApiError;
use crate::kafka::Kafka;
use crate::metrics::HttpMetrics;
use crate::v2::consumers::Instances;
use crate::{v2, v3};

/// State every handler shares.
pub(crate) struct App {
    pub(crate) config: HttpConfig,
    pub(crate) auth: Authenticator,
    pub(crate) kafka: Kafka,
    pub(crate) schemas: Schemas,
    pub(crate) consumers: Instances,
    pub(crate) metrics: Arc<HttpMetrics>,
    /// The cluster id, read once from Kafka.
    pub(crate) cluster_id: tokio::sync::OnceCell<String>,
}

/// Shared state as handlers take it.
pub(crate) type Shared = Arc<App>;

/// Why the proxy did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address is taken or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
}

/// A running proxy.
pub struct HttpHandle {
    local_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
    app: Shared,
}

impl HttpHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Prometheus text exposition of the proxy's metrics.
    pub fn render_metrics(&self) -> String {
        self.app.metrics.render()
    }

    /// A closure rendering the metrics, for an endpoint that outlives borrows of the handle.
    pub fn metrics_renderer(&self) -> impl Fn() -> String + Send + Sync + 'static {
        let metrics = Arc::clone(&self.app.metrics);
        move || metrics.render()
    }

    /// Stops taking requests, lets in-flight ones finish (a few seconds at most), closes the
    /// consumer instances and flushes the producers.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let mut server = self.server;
        if tokio::time::timeout(Duration::from_secs(10), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        self.app.consumers.close_all().await;
        let app = Arc::clone(&self.app);
        let _ = tokio::task::spawn_blocking(move || app.kafka.flush(Duration::from_secs(10))).await;
    }
}

/// Binds `config.listen` and serves until [`HttpHandle::shutdown`].
pub async fn start(config: HttpConfig) -> Result<HttpHandle, StartError> {
    let registry = RegistryClient::new(&config.registry_url, RetryPolicy::default())
        .map_err(|e| StartError::Config(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let metrics = Arc::new(HttpMetrics::new());
    let app = Arc::new(App {
        auth: Authenticator::new(&config.keys, &config.service_id),
        kafka: Kafka::new(config.kafka.clone(), config.delivery_timeout),
        schemas: Schemas::new(registry),
        consumers: Instances::new(
            config.max_consumers,
            config.consumer_idle_timeout,
            Arc::clone(&metrics.consumers),
        ),
        metrics,
        cluster_id: tokio::sync::OnceCell::new(),
        config: HttpConfig {
            advertised_url: Some(
                config
                    .advertised_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{local_addr}")),
            ),
            ..config
        },
    });
    let reaper = app.consumers.spawn_reaper();
    let router = router(Arc::clone(&app));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        reaper.abort();
        if let Err(e) = served {
            tracing::warn!(error = %e, "the HTTP server stopped");
        }
    });
    tracing::info!(%local_addr, "REST proxy listening");
    Ok(HttpHandle {
        local_addr,
        stop,
        server,
        app,
    })
}

fn router(app: Shared) -> Router {
    let consumer = "/consumers/{group}/instances/{instance}";
    let routes = Router::new()
        .route("/", get(|| async { axum::Json(serde_json::json!({})) }))
        .route("/topics", get(v2::metadata::list_topics))
        .route(
            "/topics/{topic}",
            get(v2::metadata::topic).post(v2::produce::to_topic),
        )
        .route("/topics/{topic}/partitions", get(v2::metadata::partitions))
        .route(
            "/topics/{topic}/partitions/{partition}",
            post(v2::produce::to_partition),
        )
        .route("/consumers/{group}", post(v2::consumers::create))
        .route(consumer, delete(v2::consumers::delete))
        .route(
            &format!("{consumer}/subscription"),
            post(v2::consumers::subscribe)
                .get(v2::consumers::subscription)
                .delete(v2::consumers::unsubscribe),
        )
        .route(&format!("{consumer}/records"), get(v2::consumers::records))
        .route(
            &format!("{consumer}/offsets"),
            post(v2::consumers::commit).get(v2::consumers::committed),
        )
        .route(
            &format!("{consumer}/positions/beginning"),
            post(v2::consumers::seek_beginning),
        )
        .route(
            &format!("{consumer}/positions/end"),
            post(v2::consumers::seek_end),
        )
        .route(
            &format!("{consumer}/positions"),
            post(v2::consumers::seek_to),
        )
        .route(
            &format!("{consumer}/assignments"),
            post(v2::consumers::assign).get(v2::consumers::assignments),
        )
        .route("/v3/clusters", get(v3::clusters::list))
        .route("/v3/clusters/{cluster}", get(v3::clusters::one))
        .route(
            "/v3/clusters/{cluster}/topics/{topic}/records",
            post(v3::produce::records),
        )
        .route(
            "/v3/clusters/{cluster}/topics/{topic}/records:batch",
            post(v3::produce::batch),
        )
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            authenticate,
        ))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&app.metrics.requests),
            sluice_metrics::http::track,
        ))
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(Arc::clone(&app));
    routes.layer(middleware::from_fn_with_state(
        Arc::new(Cors::new(&app.config.cors_origins)),
        cors::layer,
    ))
}

/// Resolves the caller and puts its [`crate::auth::Principal`] in the request's extensions.
async fn authenticate(State(app): State<Shared>, mut request: Request, next: Next) -> Response {
    match app.auth.authenticate(request.headers()) {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(e) => {
            let mut r = e.into_response();
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"sluice\""),
            );
            r
        }
    }
}
