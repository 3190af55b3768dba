//! KSS as a platform component.

use anyhow::Context;
use sluice_kss::{KssConfig, KssHandle};

use super::{BoxFuture, Component, Starter};

/// A running KSS.
pub(crate) struct KssComponent {
    handle: KssHandle,
    ca_dir: std::path::PathBuf,
}

/// Returns the step that starts KSS with `config`.
pub(crate) fn starter(config: KssConfig) -> Starter {
    Box::pin(async move {
        let ca_dir = config.ca_dir.clone();
        let listen = config.listen;
        let handle = sluice_kss::start(config)
            .await
            .with_context(|| format!("could not start KSS on {listen}"))?;
        Ok(Box::new(KssComponent { handle, ca_dir }) as Box<dyn Component>)
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
            self.handle
                .shutdown()
                .await
                .context("KSS did not stop cleanly")
        })
    }
}
