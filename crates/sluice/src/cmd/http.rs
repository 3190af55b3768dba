//! `sluice http`: HTTP ingestion (Confluent REST Proxy API v2/v3) in front of any Kafka
//! cluster, alone or as a `sluice up` component.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use sluice_http::{HttpConfig, HttpHandle, KeysFile};

use crate::platform::{self, BoxFuture, Component, Starter};

/// Default HTTP address (Confluent REST Proxy's port).
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8082";

/// Settings `sluice http` and `sluice up` share.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct HttpSettings {
    /// File of API keys (`[[keys]]` with key, secret_sha256, service_id, records_per_second,
    /// and the Kafka login each key acts as); without it every caller uses the proxy's own
    /// Kafka identity.
    #[arg(long, env = "SLUICE_HTTP_KEYS_FILE", value_name = "FILE")]
    http_keys_file: Option<PathBuf>,
    /// Origins browsers may send from (CORS), comma-separated; `*` for any.
    #[arg(
        long,
        env = "SLUICE_HTTP_CORS_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    http_cors_origin: Vec<String>,
    /// Largest request body in bytes, compressed and again decompressed.
    #[arg(long, env = "SLUICE_HTTP_MAX_BODY_BYTES", default_value_t = 8 << 20)]
    http_max_body_bytes: usize,
    /// Most entries in one v3 records:batch request.
    #[arg(long, default_value_t = 1000)]
    http_max_batch_entries: usize,
    /// Base URL announced for consumer instances [default: http://LISTEN].
    #[arg(long, env = "SLUICE_HTTP_ADVERTISED_URL")]
    http_advertised_url: Option<String>,
    /// Address of the proxy's Prometheus endpoint, `GET /metrics` [default: none].
    #[arg(long, env = "SLUICE_HTTP_METRICS_LISTEN", value_name = "HOST:PORT")]
    http_metrics_listen: Option<SocketAddr>,
    /// librdkafka setting for the proxy's own Kafka connections, KEY=VALUE (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = crate::kafka::parse_key_value)]
    http_kafka: Vec<(String, String)>,
}

impl HttpSettings {
    /// The proxy's configuration for a cluster at `bootstrap` and a registry at `registry`.
    pub(crate) fn config(
        &self,
        listen: SocketAddr,
        bootstrap: &str,
        registry: &str,
    ) -> anyhow::Result<HttpConfig> {
        let mut config = HttpConfig::new(listen, bootstrap, registry);
        if let Some(path) = &self.http_keys_file {
            config.keys = KeysFile::load(path)?;
        }
        config.cors_origins = self.http_cors_origin.clone();
        config.max_body_bytes = self.http_max_body_bytes;
        config.max_batch_entries = self.http_max_batch_entries.max(1);
        config.advertised_url = self.http_advertised_url.clone();
        config.kafka.extend(self.http_kafka.iter().cloned());
        Ok(config)
    }

    /// The metrics address, if any.
    pub(crate) fn metrics_listen(&self) -> Option<SocketAddr> {
        self.http_metrics_listen
    }
}

/// Arguments of `sluice http`.
#[derive(Debug, clap::Args)]
pub(crate) struct HttpArgs {
    /// HTTP address to serve the REST Proxy API on.
    #[arg(long, env = "SLUICE_HTTP_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Kafka bootstrap servers.
    #[arg(
        long,
        short = 'b',
        env = "SLUICE_BOOTSTRAP_SERVER",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap_server: String,
    /// Schema registry URL (for the avro, jsonschema and protobuf formats).
    #[arg(
        long,
        env = "SLUICE_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    registry_url: String,
    #[command(flatten)]
    settings: HttpSettings,
}

/// Runs the proxy until SIGINT/SIGTERM.
pub(crate) async fn run(args: HttpArgs) -> anyhow::Result<()> {
    let config = args
        .settings
        .config(args.listen, &args.bootstrap_server, &args.registry_url)?;
    platform::run(
        "sluice http",
        vec![starter(config, args.settings.metrics_listen())],
    )
    .await
}

/// A running proxy as a platform component.
struct HttpComponent {
    handle: HttpHandle,
    bootstrap: String,
    metrics: Option<platform::metrics::Endpoint>,
}

/// Returns the step that starts the proxy with `config`.
pub(crate) fn starter(config: HttpConfig, metrics_listen: Option<SocketAddr>) -> Starter {
    Box::pin(async move {
        let bootstrap = config
            .kafka
            .get("bootstrap.servers")
            .cloned()
            .unwrap_or_default();
        let listen = config.listen;
        let handle = sluice_http::start(config)
            .await
            .with_context(|| format!("could not start the REST proxy on {listen}"))?;
        let metrics =
            platform::metrics::serve_if(metrics_listen, Arc::new(handle.metrics_renderer()))
                .await?;
        Ok(Box::new(HttpComponent {
            handle,
            bootstrap,
            metrics,
        }) as Box<dyn Component>)
    })
}

impl Component for HttpComponent {
    fn name(&self) -> &'static str {
        "http"
    }

    fn describe(&self) -> String {
        format!(
            "REST proxy listening on http://{} (Kafka at {})",
            self.handle.local_addr(),
            self.bootstrap
        )
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<anyhow::Result<()>> {
        Box::pin(async move {
            platform::metrics::stop_if(self.metrics).await;
            self.handle.shutdown().await;
            Ok(())
        })
    }
}
