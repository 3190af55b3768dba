//! Named listeners (Kafka `listeners`): the PLAINTEXT one from `BrokerConfig::listen` plus the
//! configured extra ones, each bound to its own socket with its own advertised address and,
//! for SSL listeners, its TLS configuration and the principal mapping rules.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::tls::{TlsAcceptorSource, TlsError};
use crate::auth::principal::MappingRuleError;
use crate::auth::PrincipalMapper;
use crate::config::{BrokerConfig, ListenerConfig};

/// Name of the listener built from `BrokerConfig::listen`.
pub const DEFAULT_LISTENER: &str = "PLAINTEXT";

/// What a connection needs to know about the listener it arrived on.
#[derive(Debug)]
pub struct Listener {
    /// Listener name (`PLAINTEXT`, `SSL`, ...).
    pub name: String,
    /// The bound address.
    pub local_addr: SocketAddr,
    /// Host and port advertised to clients of this listener (Metadata, FindCoordinator).
    pub advertised: (String, u16),
    /// TLS acceptors for SSL listeners; `None` for plaintext.
    pub tls: Option<TlsAcceptorSource>,
    /// Clients must authenticate with SASL before anything else (SASL_PLAINTEXT, SASL_SSL).
    pub sasl: bool,
    /// Turns certificate subjects into principal names.
    pub mapper: Arc<PrincipalMapper>,
}

impl crate::request::ListenerInfo for Listener {
    fn name(&self) -> &str {
        &self.name
    }

    fn advertised(&self) -> &(String, u16) {
        &self.advertised
    }
}

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr} (listener {name}): {source}; is another broker running there?"
    )]
    Bind {
        /// Listener name.
        name: String,
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS files could not be loaded.
    #[error("listener {name}: {source}")]
    Tls {
        /// Listener name.
        name: String,
        /// What failed.
        #[source]
        source: TlsError,
    },
    /// The PLAINTEXT listener is off and no other listener is configured.
    #[error("no listener: the PLAINTEXT listener is turned off (plaintext = false) and no other listener is configured; set ssl_listen, sasl_listen or sasl_ssl_listen, or turn plaintext back on")]
    NoListener,
    /// `ssl.principal.mapping.rules` is invalid.
    #[error(transparent)]
    MappingRules(#[from] MappingRuleError),
}

/// Binds every listener of `config`: the default PLAINTEXT one first, unless it is turned off.
pub async fn bind_all(
    config: &BrokerConfig,
) -> Result<Vec<(TcpListener, Arc<Listener>)>, ListenerError> {
    let mapper = Arc::new(match &config.ssl_principal_mapping_rules {
        Some(rules) => PrincipalMapper::parse(rules)?,
        None => PrincipalMapper::default(),
    });
    let default = ListenerConfig {
        name: DEFAULT_LISTENER.to_owned(),
        listen: config.listen,
        advertised: config.advertised.clone(),
        tls: None,
        sasl: false,
    };
    let plaintext = config.plaintext.then_some(&default);
    if plaintext.is_none() && config.listeners.is_empty() {
        return Err(ListenerError::NoListener);
    }
    let mut bound = Vec::with_capacity(1 + config.listeners.len());
    for spec in plaintext.into_iter().chain(&config.listeners) {
        bound.push(bind(spec, mapper.clone()).await?);
    }
    Ok(bound)
}

async fn bind(
    spec: &ListenerConfig,
    mapper: Arc<PrincipalMapper>,
) -> Result<(TcpListener, Arc<Listener>), ListenerError> {
    let bind_error = |source| ListenerError::Bind {
        name: spec.name.clone(),
        addr: spec.listen,
        source,
    };
    let tls = spec
        .tls
        .clone()
        .map(TlsAcceptorSource::new)
        .transpose()
        .map_err(|source| ListenerError::Tls {
            name: spec.name.clone(),
            source,
        })?;
    let socket = TcpListener::bind(spec.listen).await.map_err(bind_error)?;
    let local_addr = socket.local_addr().map_err(bind_error)?;
    // With port 0 (tests) clients must be told the port actually bound.
    let advertised = spec
        .advertised
        .clone()
        .unwrap_or_else(|| (local_addr.ip().to_string(), local_addr.port()));
    let listener = Listener {
        name: spec.name.clone(),
        local_addr,
        advertised,
        tls,
        sasl: spec.sasl,
        mapper,
    };
    Ok((socket, Arc::new(listener)))
}
