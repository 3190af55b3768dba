//! `sluice connect`: a Kafka Connect worker (REST API on :8083, state in Kafka topics) with
//! Sluice's connectors, against any Kafka cluster, alone or as a `sluice up` component; and
//! `sluice connect status`, which asks any Connect cluster's REST API how its connectors are.

mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use sluice_connect::{KafkaSettings, Worker, WorkerConfig};

use crate::platform::{self, BoxFuture, Component, Starter};

/// Default REST address (Kafka Connect's port).
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8083";

/// Settings `sluice connect` and `sluice up` share.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConnectSettings {
    /// The Connect cluster's name: workers with the same group share connectors (group.id).
    #[arg(
        long,
        env = "SLUICE_CONNECT_GROUP_ID",
        default_value = "connect-cluster"
    )]
    connect_group_id: String,
    /// Topic of connector configurations (config.storage.topic).
    #[arg(long, default_value = "connect-configs")]
    connect_config_topic: String,
    /// Topic of source offsets (offset.storage.topic).
    #[arg(long, default_value = "connect-offsets")]
    connect_offset_topic: String,
    /// Topic of connector and task states (status.storage.topic).
    #[arg(long, default_value = "connect-status")]
    connect_status_topic: String,
    /// Replication factor of those three topics [default: the broker's].
    #[arg(long)]
    connect_replication_factor: Option<i16>,
    /// URL other workers and tools reach this worker at [default: http://LISTEN].
    #[arg(long, env = "SLUICE_CONNECT_ADVERTISED_URL")]
    connect_advertised_url: Option<String>,
    /// Address of the worker's Prometheus endpoint, `GET /metrics` [default: none].
    #[arg(long, env = "SLUICE_CONNECT_METRICS_LISTEN", value_name = "HOST:PORT")]
    connect_metrics_listen: Option<SocketAddr>,
    /// librdkafka setting for the worker's Kafka connections, KEY=VALUE (repeatable).
    #[arg(long = "connect-kafka", value_name = "KEY=VALUE", value_parser = crate::kafka::parse_key_value)]
    connect_kafka: Vec<(String, String)>,
}

impl ConnectSettings {
    /// The metrics address, if any.
    pub(crate) fn metrics_listen(&self) -> Option<SocketAddr> {
        self.connect_metrics_listen
    }

    /// The worker's configuration for a cluster at `bootstrap`.
    pub(crate) fn config(&self, listen: SocketAddr, bootstrap: &str) -> WorkerConfig {
        WorkerConfig {
            kafka: KafkaSettings {
                bootstrap: bootstrap.to_owned(),
                properties: self.connect_kafka.clone(),
            },
            group_id: self.connect_group_id.clone(),
            config_topic: self.connect_config_topic.clone(),
            offset_topic: self.connect_offset_topic.clone(),
            status_topic: self.connect_status_topic.clone(),
            replication_factor: self.connect_replication_factor,
            listen,
            advertised_url: self.connect_advertised_url.clone(),
        }
    }
}

/// Arguments of `sluice connect`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ConnectArgs {
    #[command(subcommand)]
    command: Option<ConnectCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Subcommands of `sluice connect` (none: run a worker).
#[derive(Debug, clap::Subcommand)]
enum ConnectCommand {
    /// Show the connectors and tasks of a Connect cluster (Sluice's or Apache Kafka's).
    Status(status::StatusArgs),
}

/// Arguments of the worker.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// HTTP address of the Connect REST API.
    #[arg(long, env = "SLUICE_CONNECT_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Kafka bootstrap servers.
    #[arg(
        long,
        short = 'b',
        env = "SLUICE_BOOTSTRAP_SERVER",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap_server: String,
    #[command(flatten)]
    settings: ConnectSettings,
}

impl ConnectArgs {
    /// True for `sluice connect status` (a terminal tool, quiet by default).
    pub(crate) fn is_status(&self) -> bool {
        matches!(self.command, Some(ConnectCommand::Status(_)))
    }
}

/// Runs the worker until SIGINT/SIGTERM, or a subcommand.
pub(crate) async fn run(args: ConnectArgs) -> anyhow::Result<()> {
    if let Some(ConnectCommand::Status(status)) = args.command {
        return status::run(status).await;
    }
    let serve = args.serve;
    let config = serve.settings.config(serve.listen, &serve.bootstrap_server);
    platform::run(
        "sluice connect",
        vec![starter(config, serve.settings.metrics_listen())],
    )
    .await
}

/// A running worker as a platform component.
struct ConnectComponent {
    worker: Worker,
    bootstrap: String,
    metrics: Option<platform::metrics::Endpoint>,
}

/// Returns the step that starts a worker with `config`.
pub(crate) fn starter(config: WorkerConfig, metrics_listen: Option<SocketAddr>) -> Starter {
    Box::pin(async move {
        let bootstrap = config.kafka.bootstrap.clone();
        let listen = config.listen;
        let worker = Worker::start(config)
            .await
            .with_context(|| format!("could not start the Connect worker on {listen}"))?;
        let render = worker.metrics();
        let metrics =
            platform::metrics::serve_if(metrics_listen, Arc::new(move || render.render())).await?;
        Ok(Box::new(ConnectComponent {
            worker,
            bootstrap,
            metrics,
        }) as Box<dyn Component>)
    })
}

impl Component for ConnectComponent {
    fn name(&self) -> &'static str {
        "connect"
    }

    fn describe(&self) -> String {
        format!(
            "Connect worker listening on http://{} (Kafka at {})",
            self.worker.local_addr(),
            self.bootstrap
        )
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<anyhow::Result<()>> {
        Box::pin(async move {
            platform::metrics::stop_if(self.metrics).await;
            self.worker.shutdown().await;
            Ok(())
        })
    }
}
