//! KSS as a platform component.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use sluice_kss::{KssConfig, KssHandle};

use super::{BoxFuture, Component, Starter};

/// A running KSS.
pub(crate) struct KssComponent {
    handle: KssHandle,
    ca_dir: std::path::PathBuf,
    metrics: Option<super::metrics::Endpoint>,
}

/// Returns the step that starts KSS with `config`, and its Prometheus endpoint on
/// `metrics_listen` if given.
pub(crate) fn starter(config: KssConfig, metrics_listen: Option<SocketAddr>) -> Starter {
    Box::pin(async move {
        let ca_dir = config.ca_dir.clone();
        let listen = config.listen;
        let handle = sluice_kss::start(config)
            .await
            .with_context(|| format!("could not start KSS on {listen}"))?;
        let metrics =
            super::metrics::serve_if(metrics_listen, Arc::new(handle.metrics_renderer())).await?;
        Ok(Box::new(KssComponent {
            handle,
            ca_dir,
            metrics,
        }) as Box<dyn Component>)
    })
}

impl Component for KssComponent {
    fn name(&self) -> &'static str {
        "kss"
    }

    fn describe(&self) -> String {
        format!(
            "KSS listening on {} (CA: {}; sidecars: --kss-ca {})",
            self.handle.url(),
            self.ca_dir.display(),
            self.ca_dir.join("ca.pem").display()
        )
    }

    fn shutdown(self: Box<Self>) -> BoxFuture<anyhow::Result<()>> {
        Box::pin(async move {
            super::metrics::stop_if(self.metrics).await;
            self.handle
                .shutdown()
                .await
                .context("KSS did not stop cleanly")
        })
    }
}
