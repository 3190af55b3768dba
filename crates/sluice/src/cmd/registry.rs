//! `sluice registry`: the Confluent-compatible schema registry, alone or as a `sluice up`
//! component.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use sluice_registry::{RegistryConfig, RegistryHandle};

use crate::platform::{self, BoxFuture, Component, Starter};

/// Arguments of `sluice registry`.
#[derive(Debug, clap::Args)]
pub(crate) struct RegistryArgs {
    /// HTTP address to serve the REST API on.
    #[arg(long, env = "SLUICE_REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Kafka bootstrap servers of the cluster that stores the registry's state.
    #[arg(
        long,
        short = 'b',
        env = "SLUICE_BOOTSTRAP_SERVER",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap_server: String,
    /// Topic holding the state (created with 1 partition and cleanup.policy=compact).
    #[arg(long, default_value = "_schemas")]
    topic: String,
    /// Replication factor used if the topic has to be created.
    #[arg(long, default_value_t = 1)]
    replication_factor: i32,
    /// URL (http://host:port) of the registry instance that performs writes; this instance
    /// forwards writes there. Leave unset on the leader itself.
    #[arg(long, env = "SLUICE_REGISTRY_LEADER_URL")]
    leader_url: Option<String>,
    /// Consumer group through which instances elect the one writer (Kafka group protocol).
    #[arg(long, default_value = "schema-registry")]
    group: String,
    /// URL other instances forward writes to when this one leads [default: the --listen address
    /// as an http:// URL].
    #[arg(long)]
    advertised_url: Option<String>,
    /// Do not take part in leader election: this instance writes directly (only safe when it is
    /// the sole instance).
    #[arg(long)]
    no_leader_election: bool,
    /// Address of the registry's Prometheus endpoint, `GET /metrics` [default: none].
    #[arg(long, env = "SLUICE_REGISTRY_METRICS_LISTEN", value_name = "HOST:PORT")]
    metrics_listen: Option<SocketAddr>,
}

/// Runs the registry until SIGINT/SIGTERM.
pub(crate) async fn run(args: RegistryArgs) -> anyhow::Result<()> {
    let mut config = RegistryConfig::new(args.listen, args.bootstrap_server);
    config.topic = args.topic;
    config.replication_factor = args.replication_factor;
    config.leader_url = args.leader_url;
    if !args.no_leader_election {
        config.election = Some(sluice_registry::ElectionConfig {
            group: args.group,
            advertised_url: args.advertised_url,
        });
    }
    platform::run(
        "sluice registry",
        vec![starter(config, args.metrics_listen)],
    )
    .await
}

/// A running registry as a platform component.
struct RegistryComponent {
    handle: RegistryHandle,
    bootstrap: String,
    metrics: Option<platform::metrics::Endpoint>,
}

/// Returns the step that starts a registry with `config`, and its Prometheus endpoint on
/// `metrics_listen` if given.
pub(crate) fn starter(config: RegistryConfig, metrics_listen: Option<SocketAddr>) -> Starter {
    Box::pin(async move {
        let bootstrap = config.bootstrap.clone();
        let listen = config.listen;
        let handle = sluice_registry::start(config).await.with_context(|| {
            format!("could not start the schema registry (listen {listen}, Kafka {bootstrap})")
        })?;
        let metrics =
            platform::metrics::serve_if(metrics_listen, Arc::new(handle.metrics_renderer()))
                .await?;
        Ok(Box::new(RegistryComponent {
            handle,
            bootstrap,
            metrics,
        }) as Box<dyn Component>)
    })
}

impl Component for RegistryComponent {
    fn name(&self) -> &'static str {
        "registry"
    }

    fn describe(&self) -> String {
        format!(
            "schema registry listening on http://{} (state in Kafka at {})",
            self.handle.local_addr(),
            self.bootstrap
        )
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<anyhow::Result<()>> {
        Box::pin(async move {
            platform::metrics::stop_if(self.metrics).await;
            self.handle
                .shutdown()
                .await
                .context("the schema registry did not stop cleanly")
        })
    }
}
