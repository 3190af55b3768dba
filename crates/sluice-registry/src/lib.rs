//! Confluent-compatible schema registry: Confluent's REST API served by axum, state kept in a
//! compacted `_schemas` topic of any Kafka cluster (reached only through the Kafka protocol),
//! and AVRO, PROTOBUF and JSON Schema formats with their compatibility rules.

pub mod api;
pub mod error;
pub mod formats;
pub mod http_client;
pub mod leader;
pub mod registry;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::info;

pub use error::RegistryError;

/// How to run a registry instance.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// HTTP listen address, e.g. `127.0.0.1:8081`.
    pub listen: SocketAddr,
    /// Kafka bootstrap servers of the cluster holding the state.
    pub bootstrap: String,
    /// Topic holding the state (Confluent's default: `_schemas`).
    pub topic: String,
    /// Replication factor used when the topic has to be created.
    pub replication_factor: i32,
    /// `http://host:port` of the leader to forward writes to; `None` when this instance leads.
    pub leader_url: Option<String>,
    /// Elect the leader through this Kafka consumer group instead (ignored with `leader_url`).
    pub election: Option<ElectionConfig>,
}

/// Group-protocol leader election settings.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// Consumer group the instances join (Confluent's default: `schema-registry`).
    pub group: String,
    /// URL other instances forward writes to when this one leads; `None` uses the bound address.
    pub advertised_url: Option<String>,
}

impl RegistryConfig {
    /// A configuration with Confluent's defaults for the given addresses.
    pub fn new(listen: SocketAddr, bootstrap: impl Into<String>) -> Self {
        Self {
            listen,
            bootstrap: bootstrap.into(),
            topic: "_schemas".to_string(),
            replication_factor: 1,
            leader_url: None,
            election: None,
        }
    }
}

/// A running registry.
pub struct RegistryHandle {
    local_addr: SocketAddr,
    metrics: Arc<sluice_metrics::Registry>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
    app: api::Shared,
    election: Option<Arc<leader::election::Election>>,
}

/// How long start-up waits for the group to elect a leader before serving anyway (writes get
/// 50004 until one is known).
const ELECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

impl RegistryHandle {
    /// The address the HTTP server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A closure rendering the registry's Prometheus metrics, for an endpoint of its own.
    pub fn metrics_renderer(&self) -> impl Fn() -> String + Send + Sync + 'static {
        let metrics = Arc::clone(&self.metrics);
        move || metrics.render()
    }

    /// Stops serving (in-flight requests finish) and stops reading the topic.
    pub async fn shutdown(mut self) -> Result<(), RegistryError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = (&mut self.server)
            .await
            .map_err(|e| RegistryError::Store(format!("the HTTP server task failed: {e}")))?;
        let app = Arc::clone(&self.app);
        let election = self.election.take();
        tokio::task::spawn_blocking(move || {
            if let Some(e) = election {
                e.close();
            }
            app.registry.close()
        })
        .await
        .map_err(|e| RegistryError::Store(e.to_string()))?;
        served.map_err(|e| RegistryError::Store(format!("the HTTP server failed: {e}")))
    }
}

/// Loads the state from the topic and starts serving the REST API.
pub async fn start(config: RegistryConfig) -> Result<RegistryHandle, RegistryError> {
    let mut forwarder =
        leader::Forwarder::new(config.leader_url.as_deref()).map_err(RegistryError::BadRequest)?;
    let state = Arc::new(RwLock::new(store::state::State::default()));
    let log = store::log::SchemaLog::open(
        &config.bootstrap,
        &config.topic,
        config.replication_factor,
        Arc::clone(&state),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            RegistryError::Store(format!(
                "cannot listen on {}: {e}; choose a free address for the registry",
                config.listen
            ))
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| RegistryError::Store(e.to_string()))?;
    let mut election = None;
    if let (None, Some(e)) = (&config.leader_url, &config.election) {
        let url = e
            .advertised_url
            .clone()
            .unwrap_or_else(|| format!("http://{local_addr}"));
        let joined = Arc::new(leader::election::Election::join(
            &config.bootstrap,
            &config.topic,
            &e.group,
            &url,
        )?);
        joined.wait_for_leader(ELECTION_WAIT).await;
        election = Some(Arc::clone(&joined));
        forwarder = leader::Forwarder::Elected(joined);
    }
    let metrics = Arc::new(registry_metrics(&state));
    let requests = Arc::new(sluice_metrics::http::HttpRequests::new(
        &metrics,
        "sluice_registry_requests_total",
        "sluice_registry_request_duration_seconds",
    ));
    let app: api::Shared = Arc::new(api::AppState {
        registry: registry::Registry::new(state, log),
        forwarder,
    });
    // The body limit goes outside the forwarding middleware too, which reads bodies itself;
    // content negotiation outside both, so a forwarded answer gets the type this client asked
    // for.
    let router = api::with_body_limit(
        api::router(Arc::clone(&app))
            // Requests this instance answers itself (forwarded writes count at the leader).
            .route_layer(axum::middleware::from_fn_with_state(
                requests,
                sluice_metrics::http::track,
            ))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&app),
                leader::forward_writes,
            ))
            .layer(axum::middleware::from_fn(api::negotiation::negotiate)),
    );
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    info!(%local_addr, bootstrap = %config.bootstrap, topic = %config.topic, "schema registry listening");
    Ok(RegistryHandle {
        local_addr,
        metrics,
        shutdown: Some(tx),
        server,
        app,
        election,
    })
}

/// The registry's metrics: requests (added by the caller) and, read when scraped, how many
/// schemas and live subjects the state holds.
fn registry_metrics(state: &Arc<RwLock<store::state::State>>) -> sluice_metrics::Registry {
    let metrics = sluice_metrics::Registry::new();
    let state = Arc::clone(state);
    metrics.collect_with(move |out| {
        let (schemas, subjects) = {
            let s = state.read();
            let live = s.subjects.keys().filter(|k| s.subject_live(k)).count();
            (s.schemas.len(), live)
        };
        out.family(
            "sluice_registry_schemas",
            "Distinct schemas registered (ids).",
            "gauge",
        );
        out.sample("sluice_registry_schemas", &[], schemas as f64);
        out.family(
            "sluice_registry_subjects",
            "Subjects with at least one live version.",
            "gauge",
        );
        out.sample("sluice_registry_subjects", &[], subjects as f64);
    });
    metrics
}
