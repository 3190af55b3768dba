//! `sluice sidecar`: obtains a client certificate from KSS and keeps it renewed in a directory
//! shared with the application.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sluice_sidecar::{SidecarConfig, TokenSource};

/// Arguments of `sluice sidecar`.
#[derive(Debug, clap::Args)]
pub(crate) struct SidecarArgs {
    /// KSS base URL.
    #[arg(long, env = "SLUICE_KSS_URL", default_value = "https://127.0.0.1:8090")]
    kss: String,
    /// CA certificates (PEM) KSS's HTTPS certificate and the certificates it issues must chain
    /// to: ca.pem of KSS's --ca-dir (plus the CA of --tls-cert if KSS uses one). Required for
    /// https://.
    #[arg(long, env = "SLUICE_KSS_CA")]
    kss_ca: Option<PathBuf>,
    /// Allow an http:// --kss URL: no authentication of KSS, token and certificate in clear.
    /// Development only.
    #[arg(long)]
    insecure_http: bool,
    /// Directory the credentials are written to (key.pem, cert.pem, ca.pem, client.properties).
    #[arg(long, env = "SLUICE_SIDECAR_DIR")]
    dir: PathBuf,
    /// File holding the identity token (re-read for every request).
    #[arg(long, env = "SLUICE_KSS_TOKEN_FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// The identity token itself.
    #[arg(long, env = "SLUICE_KSS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Requested certificate lifetime, seconds (KSS caps it; default: KSS's default).
    #[arg(long)]
    lifetime_secs: Option<u64>,
    /// Bootstrap servers to write into client.properties.
    #[arg(long, env = "SLUICE_BOOTSTRAP")]
    bootstrap: Option<String>,
    /// Obtain credentials once and exit (for init containers).
    #[arg(long)]
    once: bool,
    /// With --once: how long it may take in all, every request and retry included, seconds.
    #[arg(long, default_value_t = 60)]
    once_timeout_secs: u64,
}

/// Runs `sluice sidecar`.
pub(crate) async fn run(args: SidecarArgs) -> anyhow::Result<()> {
    let token = match (args.token_file, args.token) {
        (Some(file), _) => TokenSource::File(file),
        (None, Some(value)) => TokenSource::Value(value),
        (None, None) => anyhow::bail!(
            "no identity token: give --token-file FILE or set SLUICE_KSS_TOKEN (mint one with `sluice kss token --service NAME`)"
        ),
    };
    let config = SidecarConfig {
        kss_url: args.kss,
        kss_ca: args.kss_ca,
        allow_insecure_http: args.insecure_http,
        out_dir: args.dir,
        token,
        lifetime: args.lifetime_secs.map(Duration::from_secs),
        bootstrap: args.bootstrap,
        once_deadline: Duration::from_secs(args.once_timeout_secs),
    };
    if args.once {
        let deadline = tokio::time::Instant::now() + config.once_deadline;
        let issued = sluice_sidecar::obtain_with_retry(&config, Some(deadline))
            .await
            .context("sidecar could not obtain credentials")?;
        println!(
            "wrote credentials for {} (serial {}, expires at unix {}) to {}",
            issued.response.service,
            issued.response.serial,
            issued.response.not_after,
            config.out_dir.display()
        );
        return Ok(());
    }
    let mut signals = crate::platform::signal::Signals::new()?;
    sluice_sidecar::run(config, async move {
        let sig = signals.recv().await;
        tracing::info!("received {sig}, stopping");
    })
    .await
    .context("sidecar stopped")
}
