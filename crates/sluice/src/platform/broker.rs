//! The broker as a platform component.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use sluice_broker::{BrokerConfig, BrokerHandle};

use super::{BoxFuture, Component, Starter};

/// A running embedded broker.
pub(crate) struct BrokerComponent {
    handle: BrokerHandle,
    local_addr: SocketAddr,
    data_dir: PathBuf,
    /// The Prometheus endpoint, if one was asked for.
    metrics: Option<super::metrics::Endpoint>,
}

/// Returns the step that starts a broker with `config`, and its Prometheus endpoint on
/// `metrics_listen` if given.
pub(crate) fn starter(mut config: BrokerConfig, metrics_listen: Option<SocketAddr>) -> Starter {
    // Log levels become the broker's BROKER_LOGGER config resource.
    config.log_levels = config.log_levels.or_else(crate::logging::control);
    Box::pin(async move {
        let listen = config.listen;
        let data_dir = config.data_dir.clone();
        let handle = sluice_broker::start(config).await.with_context(|| {
            format!(
                "could not start the broker (listen {listen}, data {})",
                data_dir.display()
            )
        })?;
        let local_addr = handle.local_addr();
        // The metrics only: the scrape-time collectors hold the broker weakly, so an open
        // scrape connection cannot keep it from closing its logs at shutdown.
        let metrics = Arc::clone(&handle.broker().metrics);
        let render: super::metrics::Render = Arc::new(move || metrics.registry().render());
        let metrics = super::metrics::serve_if(metrics_listen, render).await?;
        Ok(Box::new(BrokerComponent {
            handle,
            local_addr,
            data_dir,
            metrics,
        }) as Box<dyn Component>)
    })
}

impl Component for BrokerComponent {
    fn name(&self) -> &'static str {
        "broker"
    }

    fn describe(&self) -> String {
        format!(
            "broker listening on {} (data: {})",
            self.local_addr,
            self.data_dir.display()
        )
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<anyhow::Result<()>> {
        Box::pin(async move {
            super::metrics::stop_if(self.metrics).await;
            self.handle
                .shutdown()
                .await
                .context("the broker failed to flush and close its logs")
        })
    }
}
