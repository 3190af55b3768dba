//! KSS, the Kafka Security Service: a certificate authority that issues short-lived client
//! certificates whose subject is the caller's authenticated service id, identity-token
//! verification, and ACLs kept as code in an `acl.yml` that is applied to the cluster and watched
//! for drift. Served over HTTPS by default.

pub mod acl;
pub mod api;
pub mod ca;
pub mod files;
pub mod identity;
pub mod metrics;
pub mod service;
mod tls;

pub use tls::KssTls;

use std::collections::BTreeSet;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use sluice_admin::AdminConfig;

use ca::{CaError, CertificateAuthority, LifetimePolicy};
use identity::IdentityVerifier;
use service::{ReservedServices, ServiceId};

/// Name of the token replay cache file in the state directory.
pub const REPLAY_CACHE_FILE: &str = "token-replay-cache";

/// Everything `start` needs.
#[derive(Debug, Clone)]
pub struct KssConfig {
    /// Listen address of the API.
    pub listen: SocketAddr,
    /// HTTPS (default: a certificate issued from the KSS CA) or, for development, plain HTTP.
    pub tls: KssTls,
    /// Directory of the CA (`ca.pem`, `ca.key`); created with a new CA when empty.
    pub ca_dir: PathBuf,
    /// Lifetime of issued certificates.
    pub lifetime: LifetimePolicy,
    /// Files with trusted token-issuer public keys (PEM `PUBLIC KEY`, or a private key).
    pub trusted_keys: Vec<PathBuf>,
    /// A development issuer key, created if missing and trusted (what `sluice kss token` uses).
    pub dev_issuer_key: Option<PathBuf>,
    /// Extra CA certificates handed to clients with their certificate (e.g. the CA that signed
    /// the brokers' server certificates).
    pub trust_bundle: Option<PathBuf>,
    /// Services refused new certificates (in addition to `disabled: true` in the acl.yml).
    pub disabled_services: Vec<ServiceId>,
    /// Service ids never issued a certificate, e.g. the cluster's super users: service ids or
    /// principals (`User:CN=admin`, `User:admin`), see [`ReservedServices::new`].
    pub reserved_services: Vec<String>,
    /// Services whose tokens may read `GET /v1/acls/drift`; empty: nobody.
    pub admin_services: Vec<ServiceId>,
    /// Directory of KSS's own state (the token replay cache, mode 0600); `None`: the CA
    /// directory.
    pub state_dir: Option<PathBuf>,
    /// The acl.yml to apply and watch.
    pub acl_file: Option<PathBuf>,
    /// How to reach the cluster's admin APIs (needed with `acl_file`).
    pub admin: Option<AdminConfig>,
    /// How often the acl.yml is checked for changes and the cluster for drift.
    pub sync_interval: Duration,
    /// Remove bindings of principals the file does not manage too.
    pub prune_unmanaged: bool,
}

/// Why KSS could not start.
#[derive(Debug, thiserror::Error)]
pub enum KssError {
    /// The CA could not be loaded or created.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// A key file is unusable.
    #[error(transparent)]
    Key(#[from] identity::keys::KeyFileError),
    /// The configuration is inconsistent.
    #[error("{0}")]
    Config(String),
    /// The listen address is unusable.
    #[error("cannot listen on {addr}: {source}; choose another --listen address")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// State shared by the HTTP handlers and the ACL sync task.
pub struct KssState {
    /// The CA (shared with the HTTPS certificate resolver).
    pub ca: Arc<CertificateAuthority>,
    /// Identity verification.
    pub verifier: Box<dyn IdentityVerifier>,
    /// PEM handed to clients as `ca.pem`: the KSS CA plus the trust bundle.
    pub trust_pem: String,
    /// Services disabled by configuration.
    configured_disabled: BTreeSet<ServiceId>,
    /// Services disabled by the acl.yml currently applied.
    file_disabled: RwLock<BTreeSet<ServiceId>>,
    /// Last drift report; `None` when no acl.yml is managed.
    pub drift: RwLock<Option<acl::DriftReport>>,
    /// Services allowed to read the drift report.
    pub admin_services: BTreeSet<ServiceId>,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::KssMetrics>,
}

impl KssState {
    /// True when `service` must not get new certificates.
    pub fn is_disabled(&self, service: &ServiceId) -> bool {
        self.configured_disabled.contains(service) || self.file_disabled.read().contains(service)
    }
}

/// A running KSS.
pub struct KssHandle {
    local_addr: SocketAddr,
    metrics: Arc<metrics::KssMetrics>,
    https: bool,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    sync: Option<tokio::task::JoinHandle<()>>,
}

impl KssHandle {
    /// A closure rendering KSS's Prometheus metrics, for an endpoint of its own.
    pub fn metrics_renderer(&self) -> impl Fn() -> String + Send + Sync + 'static {
        let metrics = Arc::clone(&self.metrics);
        move || metrics.render()
    }

    /// The address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The API's base URL, `https://…` (or `http://…` when started with
    /// [`KssTls::InsecureHttp`]).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Stops serving (in-flight requests finish) and stops the ACL sync task.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        if let Some(sync) = self.sync {
            let _ = sync.await;
        }
        self.server
            .await
            .map_err(|e| std::io::Error::other(format!("the KSS server task failed: {e}")))?
    }
}

fn build_verifier(config: &KssConfig) -> Result<Box<dyn IdentityVerifier>, KssError> {
    let state_dir = config.state_dir.as_ref().unwrap_or(&config.ca_dir);
    create_private_dir(state_dir)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let replay = identity::replay::ReplayCache::open(&state_dir.join(REPLAY_CACHE_FILE), now)
        .map_err(|e| KssError::Config(format!("{e}; give a writable --state-dir")))?;
    let mut keys = Vec::new();
    if let Some(path) = &config.dev_issuer_key {
        identity::keys::load_issuer_key(path, true)?;
        keys.extend(identity::keys::load_public_keys(path)?);
    }
    for path in &config.trusted_keys {
        keys.extend(identity::keys::load_public_keys(path)?);
    }
    if keys.is_empty() {
        return Err(KssError::Config(
            "no token issuer key is trusted: give --trusted-key FILE (or --dev-issuer-key FILE for development)".into(),
        ));
    }
    Ok(Box::new(
        identity::jwt::Ed25519JwtVerifier::with_replay_cache(keys, replay),
    ))
}

/// Creates `dir` (mode 0700 when new).
fn create_private_dir(dir: &std::path::Path) -> Result<(), KssError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| {
        KssError::Config(format!(
            "cannot create the KSS state directory {}: {e}",
            dir.display()
        ))
    })
}

/// Loads the CA and keys, applies the acl.yml (if any) in the background, and serves the API.
pub async fn start(config: KssConfig) -> Result<KssHandle, KssError> {
    let reserved = ReservedServices::new(&config.reserved_services);
    let ca = Arc::new(
        CertificateAuthority::load_or_create(&config.ca_dir, config.lifetime)?
            .with_reserved(reserved.clone()),
    );
    let tls = tls::server_config(&config.tls, &ca, config.listen)?;
    let verifier = build_verifier(&config)?;
    let mut trust_pem = ca.ca_pem().to_owned();
    if let Some(bundle) = &config.trust_bundle {
        let extra = std::fs::read_to_string(bundle).map_err(|e| {
            KssError::Config(format!(
                "cannot read the trust bundle {}: {e}",
                bundle.display()
            ))
        })?;
        if !trust_pem.ends_with('\n') {
            trust_pem.push('\n');
        }
        trust_pem.push_str(&extra);
    }
    let watch_target = match (&config.acl_file, &config.admin) {
        (Some(file), Some(admin)) => Some((file.clone(), admin.clone())),
        (Some(_), None) => {
            return Err(KssError::Config(
                "an acl file needs the cluster to apply it to: give --bootstrap (and its -X TLS settings)".into(),
            ))
        }
        _ => None,
    };
    // An invalid acl.yml stops the start (with file and line) rather than serving without the
    // services it disables; later edits are re-read by the drift task.
    let file_disabled = match &watch_target {
        Some((file, _)) => acl::AclFile::load(file)
            .map_err(|e| KssError::Config(e.to_string()))?
            .disabled_services(),
        None => BTreeSet::new(),
    };
    let metrics = Arc::new(metrics::KssMetrics::new(metrics::not_after(ca.ca_pem())));
    let state = Arc::new(KssState {
        ca,
        verifier,
        trust_pem,
        configured_disabled: config.disabled_services.iter().cloned().collect(),
        file_disabled: RwLock::new(file_disabled),
        drift: RwLock::new(watch_target.as_ref().map(|_| acl::DriftReport::default())),
        admin_services: config.admin_services.iter().cloned().collect(),
        metrics,
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| KssError::Listen {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| KssError::Listen {
        addr: config.listen,
        source,
    })?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sync = watch_target.map(|(file, admin)| {
        tokio::spawn(acl::drift::run(
            state.clone(),
            file,
            admin,
            config.sync_interval,
            config.prune_unmanaged,
            stopped.clone(),
        ))
    });
    let mut server_stop = stopped;
    let app = api::router(Arc::clone(&state)).route_layer(axum::middleware::from_fn_with_state(
        Arc::clone(&state.metrics.requests),
        sluice_metrics::http::track,
    ));
    let stopped = async move {
        let _ = server_stop.wait_for(|s| *s).await;
    };
    let https = tls.is_some();
    let server = match tls {
        Some(tls) => {
            let listener =
                tls::TlsListener::new(listener, tls).map_err(|source| KssError::Listen {
                    addr: config.listen,
                    source,
                })?;
            tokio::spawn(
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .into_future(),
            )
        }
        None => {
            tracing::warn!("KSS serves plain HTTP (--insecure-http): tokens and certificates travel in clear and clients cannot authenticate KSS; use this for development only");
            tokio::spawn(
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .into_future(),
            )
        }
    };
    tracing::info!(
        %local_addr,
        https,
        ca_dir = %config.ca_dir.display(),
        reserved = ?reserved.names().collect::<Vec<_>>(),
        "KSS listening"
    );
    Ok(KssHandle {
        metrics: Arc::clone(&state.metrics),
        https,
        local_addr,
        stop,
        server,
        sync,
    })
}
