//! `sluice up`: the whole platform on one machine, each component in a supervised process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::cmd::ConfigFileArg;
use crate::config::{self, BrokerSettings};
use crate::platform;

/// Arguments of `sluice up`.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    file: ConfigFileArg,
    #[command(flatten)]
    broker: BrokerSettings,
    #[command(flatten)]
    security: crate::security::SecuritySettings,
    /// HTTPS address of KSS (the security service); its CA and development token issuer key
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
    /// Address of the registry's Prometheus endpoint [default: none].
    #[arg(long, env = "SLUICE_REGISTRY_METRICS_LISTEN", value_name = "HOST:PORT")]
    registry_metrics_listen: Option<SocketAddr>,
    /// Address of KSS's Prometheus endpoint [default: none].
    #[arg(long, env = "SLUICE_KSS_METRICS_LISTEN", value_name = "HOST:PORT")]
    kss_metrics_listen: Option<SocketAddr>,
    /// HTTP address of the REST proxy (HTTP ingestion).
    #[arg(long, env = "SLUICE_HTTP_LISTEN", default_value = crate::cmd::http::DEFAULT_LISTEN)]
    http_listen: SocketAddr,
    // Boxed: the command enum's variants stay close in size.
    #[command(flatten)]
    http: Box<crate::cmd::http::HttpSettings>,
    /// Do not start the REST proxy.
    #[arg(long)]
    no_http: bool,
    #[command(flatten)]
    connect: UpConnect,
}

/// The Connect worker's part of `sluice up`.
#[derive(Debug, clap::Args)]
struct UpConnect {
    /// HTTP address of the Connect worker's REST API.
    #[arg(long, env = "SLUICE_CONNECT_LISTEN", default_value = crate::cmd::connect::DEFAULT_LISTEN)]
    connect_listen: SocketAddr,
    #[command(flatten)]
    settings: crate::cmd::connect::ConnectSettings,
    /// Do not start the Connect worker.
    #[arg(long)]
    no_connect: bool,
}

/// Environment variable carrying the broker address the supervisor picked (for `--listen
/// HOST:0`), so that every child agrees on it.
const BROKER_ADDR_ENV: &str = "SLUICE_UP_BROKER_ADDR";

/// Starts every platform component, each in a supervised process of its own, and runs until
/// SIGINT/SIGTERM. In a child process (see [`platform::supervisor`]) runs the one component
/// named by its environment instead.
pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    let file = config::load_file(args.file.config.as_deref())?;
    let metrics_listen = config::metrics_listen(&args.broker, file.as_ref());
    let mut broker = config::broker_config(args.broker, file.as_ref())?;
    crate::security::apply(args.security, file.as_ref(), &mut broker)?;
    let child = std::env::var(platform::supervisor::COMPONENT_ENV).ok();
    if let Some(addr) = std::env::var(BROKER_ADDR_ENV)
        .ok()
        .filter(|_| child.is_some())
    {
        broker.listen = addr
            .parse()
            .with_context(|| format!("{BROKER_ADDR_ENV}={addr} is not an address"))?;
    } else if broker.listen.port() == 0 {
        // Every component needs the broker's address before the broker starts: pick the port
        // now, once, for all of them.
        let probe = std::net::TcpListener::bind(broker.listen)
            .with_context(|| format!("cannot pick a port for the broker on {}", broker.listen))?;
        broker.listen = probe.local_addr()?;
    }
    let kss = (!args.no_kss).then(|| {
        let kss_dir = broker.data_dir.join("kss");
        let mut admin_addr = broker.listen;
        if admin_addr.ip().is_unspecified() {
            admin_addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        sluice_kss::KssConfig {
            listen: args.kss_listen,
            tls: sluice_kss::KssTls::default(),
            ca_dir: kss_dir.join("ca"),
            lifetime: Default::default(),
            trusted_keys: Vec::new(),
            dev_issuer_key: Some(kss_dir.join("issuer.key")),
            trust_bundle: None,
            disabled_services: Vec::new(),
            // No token may obtain a super user's certificate.
            reserved_services: broker
                .authorizer
                .as_ref()
                .map(|a| a.super_users.clone())
                .unwrap_or_default(),
            admin_services: Vec::new(),
            state_dir: Some(kss_dir.clone()),
            admin: args
                .kss_acl_file
                .as_ref()
                .map(|_| sluice_admin::AdminConfig {
                    bootstrap: admin_addr.to_string(),
                    tls: None,
                    sasl: None,
                    timeout: Duration::from_secs(30),
                }),
            acl_file: args.kss_acl_file,
            sync_interval: Duration::from_secs(10),
            prune_unmanaged: false,
        }
    });
    let registry = (!args.no_registry)
        .then(|| registry_config(&broker, args.registry_listen))
        .transpose()?;
    let mut bootstrap = broker.listen;
    if bootstrap.ip().is_unspecified() {
        bootstrap.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let connect = (!args.connect.no_connect).then(|| {
        args.connect
            .settings
            .config(args.connect.connect_listen, &bootstrap.to_string())
    });
    let http = (!args.no_http)
        .then(|| {
            let mut registry_url = args.registry_listen;
            if registry_url.ip().is_unspecified() {
                registry_url.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            args.http.config(
                args.http_listen,
                &bootstrap.to_string(),
                &format!("http://{registry_url}"),
            )
        })
        .transpose()?;
    let Some(child) = child else {
        // Later components (console) join this list, after the broker they use.
        let env = vec![(BROKER_ADDR_ENV.to_owned(), broker.listen.to_string())];
        let names = std::iter::once("broker")
            .chain(kss.is_some().then_some("kss"))
            .chain(registry.is_some().then_some("registry"))
            .chain(http.is_some().then_some("http"))
            .chain(connect.is_some().then_some("connect"));
        let children = names
            .map(|name| platform::supervisor::ChildSpec {
                name,
                env: env.clone(),
            })
            .collect();
        return platform::supervisor::run(children).await;
    };
    let component = match child.as_str() {
        "broker" => platform::broker::starter(broker, metrics_listen),
        "kss" => kss
            .map(|config| platform::kss::starter(config, args.kss_metrics_listen))
            .context("KSS is turned off (--no-kss)")?,
        "registry" => registry
            .map(|config| crate::cmd::registry::starter(config, args.registry_metrics_listen))
            .context("the registry is turned off (--no-registry)")?,
        "http" => http
            .map(|config| crate::cmd::http::starter(config, args.http.metrics_listen()))
            .context("the REST proxy is turned off (--no-http)")?,
        "connect" => connect
            .map(|config| {
                crate::cmd::connect::starter(config, args.connect.settings.metrics_listen())
            })
            .context("the Connect worker is turned off (--no-connect)")?,
        other => bail!("unknown platform component {other:?}"),
    };
    platform::run("sluice up", vec![component]).await
}

/// The embedded registry's settings: state in the embedded broker, reached over loopback, and
/// joining the leader election so `sluice registry` instances started later forward to it.
fn registry_config(
    broker: &sluice_broker::BrokerConfig,
    listen: SocketAddr,
) -> anyhow::Result<sluice_registry::RegistryConfig> {
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
