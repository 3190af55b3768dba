//! `sluice kss`: the Kafka Security Service (certificate authority, identity tokens, ACLs as
//! code), and `sluice kss token` to mint development identity tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sluice_kss::ca::LifetimePolicy;
use sluice_kss::identity::jwt::{mint, MintOptions};
use sluice_kss::service::ServiceId;
use sluice_kss::{KssConfig, KssTls};

use crate::kafka::ClientArgs;
use crate::platform;

/// Default address of KSS's API.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// Default development issuer key (relative to the working directory, beside the broker data).
const DEFAULT_ISSUER_KEY: &str = "sluice-data/kss/issuer.key";

/// Arguments of `sluice kss`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct KssArgs {
    #[command(subcommand)]
    command: Option<KssCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Subcommands of `sluice kss` (none: run the service).
#[derive(Debug, clap::Subcommand)]
enum KssCommand {
    /// Mint an identity token for a service, signed with a development issuer key.
    Token(TokenArgs),
}

/// Settings of the KSS service.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Listen address of the HTTPS API.
    #[arg(long, env = "SLUICE_KSS_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Address of KSS's Prometheus endpoint, plain HTTP `GET /metrics` [default: none].
    #[arg(long, env = "SLUICE_KSS_METRICS_LISTEN", value_name = "HOST:PORT")]
    metrics_listen: Option<SocketAddr>,
    /// Extra DNS name or IP address for the HTTPS certificate KSS issues itself (repeatable;
    /// localhost, the loopback addresses and the listen IP are always included).
    #[arg(long, env = "SLUICE_KSS_TLS_NAMES", value_delimiter = ',')]
    tls_name: Vec<String>,
    /// Serve HTTPS with this PEM certificate chain instead of one issued from the KSS CA.
    #[arg(long, env = "SLUICE_KSS_TLS_CERT", requires = "tls_key", conflicts_with_all = ["tls_name", "insecure_http"])]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, PEM.
    #[arg(long, env = "SLUICE_KSS_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP: tokens and certificates in clear, KSS unauthenticated. Development only.
    #[arg(long, conflicts_with = "tls_name")]
    insecure_http: bool,
    /// Directory of KSS's state: the token replay cache [default: the CA directory].
    #[arg(long, env = "SLUICE_KSS_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// CA directory (ca.pem, ca.key); a new CA is created when it is empty.
    #[arg(long, env = "SLUICE_KSS_CA_DIR", default_value = "sluice-data/kss/ca")]
    ca_dir: PathBuf,
    /// Default lifetime of issued certificates, seconds.
    #[arg(long, default_value_t = 24 * 3600)]
    cert_lifetime_secs: u64,
    /// Longest lifetime ever issued, seconds (longer requests are capped).
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    max_cert_lifetime_secs: u64,
    /// Trusted token issuer public key, PEM (repeatable).
    #[arg(long, env = "SLUICE_KSS_TRUSTED_KEYS", value_delimiter = ',')]
    trusted_key: Vec<PathBuf>,
    /// Development issuer key, created if missing and trusted (what `sluice kss token` signs with).
    #[arg(long, env = "SLUICE_KSS_DEV_ISSUER_KEY")]
    dev_issuer_key: Option<PathBuf>,
    /// Extra CA certificates handed to clients in ca.pem (the CA of the brokers' certificates).
    #[arg(long, env = "SLUICE_KSS_TRUST_BUNDLE")]
    trust_bundle: Option<PathBuf>,
    /// Service refused new certificates (repeatable; acl.yml `disabled: true` works too).
    #[arg(long, env = "SLUICE_KSS_DISABLED_SERVICES", value_delimiter = ',', value_parser = parse_service)]
    disabled_service: Vec<ServiceId>,
    /// Service id never issued a certificate, or a principal whose name is reserved
    /// (`User:CN=admin`) (repeatable).
    #[arg(long, env = "SLUICE_KSS_RESERVED_SERVICES", value_delimiter = ',')]
    reserved_service: Vec<String>,
    /// The cluster's `super.users` (`;`-separated principals, as the broker takes them): all
    /// reserved, so no token gets a super user's certificate.
    #[arg(long, env = "SLUICE_SUPER_USERS", value_name = "PRINCIPALS")]
    super_users: Option<String>,
    /// Service whose tokens may read GET /v1/acls/drift (repeatable) [default: none].
    #[arg(long, env = "SLUICE_KSS_ADMIN_SERVICES", value_delimiter = ',', value_parser = parse_service)]
    admin_service: Vec<ServiceId>,
    /// acl.yml to apply to the cluster at start and on change, and to watch for drift.
    #[arg(long, env = "SLUICE_KSS_ACL_FILE")]
    acl_file: Option<PathBuf>,
    /// How often the acl.yml is re-read and the cluster checked for drift, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    sync_interval_ms: u64,
    /// Also remove ACLs of principals the acl.yml does not mention.
    #[arg(long)]
    prune_unmanaged: bool,
    /// The cluster the acl.yml is applied to (with admin TLS settings as -X).
    #[command(flatten)]
    client: ClientArgs,
}

/// Arguments of `sluice kss token`.
#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The service id the token authenticates (`sub`).
    #[arg(long, value_parser = parse_service)]
    service: ServiceId,
    /// Issuer key (Ed25519 PKCS#8 PEM); created if missing.
    #[arg(long, env = "SLUICE_KSS_DEV_ISSUER_KEY", default_value = DEFAULT_ISSUER_KEY)]
    issuer_key: PathBuf,
    /// Seconds until the token expires (at most 300 is accepted by KSS; negative values mint an
    /// expired token, for testing refusals).
    #[arg(long, default_value_t = 300, allow_negative_numbers = true)]
    expires_in_secs: i64,
    /// Audience (`aud`); KSS accepts only `sluice-kss`.
    #[arg(long, default_value = sluice_kss::identity::AUDIENCE)]
    audience: String,
}

/// Splits Kafka's `super.users` value (principals separated by `;`).
fn super_users(value: Option<&str>) -> impl Iterator<Item = String> + '_ {
    value
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn parse_service(s: &str) -> Result<ServiceId, String> {
    ServiceId::parse(s)
}

impl ServeArgs {
    fn config(self) -> anyhow::Result<KssConfig> {
        let admin = match &self.acl_file {
            Some(_) => Some(crate::cmd::acl::admin_config(&self.client)?),
            None => None,
        };
        let tls = match (self.tls_cert, self.tls_key) {
            _ if self.insecure_http => KssTls::InsecureHttp,
            (Some(cert), Some(key)) => KssTls::Files { cert, key },
            _ => KssTls::Issued {
                names: self.tls_name,
            },
        };
        let mut reserved_services = self.reserved_service;
        reserved_services.extend(super_users(self.super_users.as_deref()));
        Ok(KssConfig {
            listen: self.listen,
            tls,
            ca_dir: self.ca_dir,
            lifetime: LifetimePolicy {
                default: Duration::from_secs(self.cert_lifetime_secs),
                max: Duration::from_secs(self.max_cert_lifetime_secs),
            },
            trusted_keys: self.trusted_key,
            dev_issuer_key: self.dev_issuer_key,
            trust_bundle: self.trust_bundle,
            disabled_services: self.disabled_service,
            reserved_services,
            admin_services: self.admin_service,
            state_dir: self.state_dir,
            acl_file: self.acl_file,
            admin,
            sync_interval: Duration::from_millis(self.sync_interval_ms.max(100)),
            prune_unmanaged: self.prune_unmanaged,
        })
    }
}

/// Runs `sluice kss`.
pub(crate) async fn run(args: KssArgs) -> anyhow::Result<()> {
    match args.command {
        Some(KssCommand::Token(token)) => {
            let key = sluice_kss::identity::keys::load_issuer_key(&token.issuer_key, true)?;
            let options = MintOptions {
                audience: token.audience,
                expires_in_secs: token.expires_in_secs,
                ..MintOptions::default()
            };
            let jwt = mint(&key, &token.service, &options).map_err(anyhow::Error::msg)?;
            println!("{jwt}");
            Ok(())
        }
        None => {
            let metrics_listen = args.serve.metrics_listen;
            let config = args.serve.config()?;
            platform::run(
                "sluice kss",
                vec![platform::kss::starter(config, metrics_listen)],
            )
            .await
        }
    }
}

impl KssArgs {
    /// True for `sluice kss token` (a terminal tool, quiet by default).
    pub(crate) fn is_token(&self) -> bool {
        matches!(self.command, Some(KssCommand::Token(_)))
    }
}
