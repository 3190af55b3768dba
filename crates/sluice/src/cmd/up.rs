//! `sluice up`: the whole platform on one machine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cmd::ConfigFileArg;
use crate::config::{self, BrokerSettings};
use crate::platform;

/// Arguments of `sluice up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    file: ConfigFileArg,
    #[command(flatten)]
    broker: BrokerSettings,
    #[command(flatten)]
    security: crate::security::SecuritySettings,
    /// HTTP address of KSS (the security service); its CA and development token issuer key
    /// live under `<data dir>/kss/`.
    #[arg(long, env = "SLUICE_KSS_LISTEN", default_value = crate::cmd::kss::DEFAULT_LISTEN)]
    kss_listen: SocketAddr,
    /// acl.yml that KSS applies to the broker (over its plaintext listener) and watches.
    #[arg(long, env = "SLUICE_KSS_ACL_FILE")]
    kss_acl_file: Option<PathBuf>,
    /// Do not start KSS.
    #[arg(long)]
    no_kss: bool,
    /// HTTP address of the schema registry.
    #[arg(long, env = "SLUICE_REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
    registry_listen: SocketAddr,
    /// Do not start the schema registry.
    #[arg(long)]
    no_registry: bool,
}

/// Starts every platform component and runs until SIGINT/SIGTERM.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let file = config::load_file(args.file.config.as_deref())?;
    let mut broker = config::broker_config(args.broker, file.as_ref())?;
    crate::security::apply(args.security, file.as_ref(), &mut broker)?;
    let kss = (!args.no_kss).then(|| {
        let kss_dir = broker.data_dir.join("kss");
        let mut admin_addr = broker.listen;
        if admin_addr.ip().is_unspecified() {
            admin_addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        sluice_kss::KssConfig {
            listen: args.kss_listen,
            ca_dir: kss_dir.join("ca"),
            lifetime: Default::default(),
            trusted_keys: Vec::new(),
            dev_issuer_key: Some(kss_dir.join("issuer.key")),
            trust_bundle: None,
            disabled_services: Vec::new(),
            admin: args
                .kss_acl_file
                .as_ref()
                .map(|_| sluice_admin::AdminConfig {
                    bootstrap: admin_addr.to_string(),
                    tls: None,
                    timeout: Duration::from_secs(30),
                }),
            acl_file: args.kss_acl_file,
            sync_interval: Duration::from_secs(10),
            prune_unmanaged: false,
        }
    });
    let registry = (!args.no_registry)
        .then(|| registry_config(&mut broker, args.registry_listen))
        .transpose()?;
    // Later components (console) join this list, after the broker they use.
    let mut components = vec![platform::broker::starter(broker)];
    components.extend(kss.map(platform::kss::starter));
    components.extend(registry.map(crate::cmd::registry::starter));
    platform::run("sluice up", components).await
}

/// The embedded registry's settings: state in the embedded broker, reached over loopback, and
/// joining the leader election so `sluice registry` instances started later forward to it.
fn registry_config(
    broker: &mut sluice_broker::BrokerConfig,
    listen: SocketAddr,
) -> anyhow::Result<sluice_registry::RegistryConfig> {
    if broker.listen.port() == 0 {
        // The registry needs the broker's address before the broker starts: pick the port now.
        let probe = std::net::TcpListener::bind(broker.listen).map_err(|e| {
            anyhow::anyhow!(
                "cannot pick a port for the broker on {}: {e}",
                broker.listen
            )
        })?;
        broker.listen = probe.local_addr()?;
    }
    let mut bootstrap = broker.listen;
    if bootstrap.ip().is_unspecified() {
        bootstrap.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut config = sluice_registry::RegistryConfig::new(listen, bootstrap.to_string());
    config.election = Some(sluice_registry::ElectionConfig {
        group: "schema-registry".to_string(),
        advertised_url: None,
    });
    Ok(config)
}
