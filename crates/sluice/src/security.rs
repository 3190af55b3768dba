//! Broker security settings: the SSL, SASL_PLAINTEXT and SASL_SSL listeners, their TLS files
//! and SASL mechanisms, and ACL authorization, from
//! flags, `SLUICE_*` environment variables and the `[security]` table of `sluice.toml`
//! (same precedence as the `[broker]` table: flag > environment > file > default).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use sluice_broker::auth::{AuthorizerConfig, PrincipalMapper};
use sluice_broker::config::{ListenerConfig, SaslConfig};
use sluice_broker::net::tls::{ClientAuth, TlsSettings};
use sluice_broker::BrokerConfig;
use sluice_sasl::Mechanism;

use crate::config::{Advertised, ConfigFile, ListenAddr};

/// Every security setting, each optional so unset layers fall through.
#[derive(Debug, Default, Clone, PartialEq, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecuritySettings {
    /// Address of the SSL listener (Kafka `listeners=SSL://...`); unset means no SSL listener.
    #[arg(long, env = "SLUICE_SSL_LISTEN", value_name = "HOST:PORT")]
    pub ssl_listen: Option<ListenAddr>,
    /// Host and port SSL clients are told to connect to [default: the SSL listen address].
    #[arg(long, env = "SLUICE_SSL_ADVERTISED", value_name = "HOST:PORT")]
    pub ssl_advertised: Option<Advertised>,
    /// Server certificate chain, PEM (reloaded when the file changes).
    #[arg(long, env = "SLUICE_SSL_CERT", value_name = "FILE")]
    pub ssl_cert: Option<PathBuf>,
    /// Server private key, PEM (reloaded when the file changes).
    #[arg(long, env = "SLUICE_SSL_KEY", value_name = "FILE")]
    pub ssl_key: Option<PathBuf>,
    /// CA bundle, PEM, that client certificates must chain to.
    #[arg(long, env = "SLUICE_SSL_CA", value_name = "FILE")]
    pub ssl_ca: Option<PathBuf>,
    /// `ssl.client.auth`: none, requested or required [default: required with --ssl-ca, else
    /// none].
    #[arg(
        long,
        env = "SLUICE_SSL_CLIENT_AUTH",
        value_name = "none|requested|required"
    )]
    pub ssl_client_auth: Option<String>,
    /// `ssl.principal.mapping.rules`, e.g. `RULE:^CN=([^,]+),OU=prod$/$1/,DEFAULT` [default:
    /// DEFAULT].
    #[arg(long, env = "SLUICE_SSL_PRINCIPAL_MAPPING_RULES", value_name = "RULES")]
    pub ssl_principal_mapping_rules: Option<String>,
    /// Enforce ACLs (Kafka's StandardAuthorizer semantics) [default: false].
    #[arg(
        long,
        env = "SLUICE_ACLS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub acls: Option<bool>,
    /// `super.users`: principals allowed everything, `;`-separated, e.g. `User:CN=admin`.
    #[arg(long, env = "SLUICE_SUPER_USERS", value_name = "PRINCIPALS")]
    pub super_users: Option<String>,
    /// `allow.everyone.if.no.acl.found`: allow access to resources without any ACL
    /// [default: false].
    #[arg(
        long,
        env = "SLUICE_ALLOW_EVERYONE_IF_NO_ACL_FOUND",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_everyone_if_no_acl_found: Option<bool>,
    /// Address of a SASL_PLAINTEXT listener; unset means none.
    #[arg(long, env = "SLUICE_SASL_LISTEN", value_name = "HOST:PORT")]
    pub sasl_listen: Option<ListenAddr>,
    /// Host and port SASL_PLAINTEXT clients are told to connect to [default: the listen
    /// address].
    #[arg(long, env = "SLUICE_SASL_ADVERTISED", value_name = "HOST:PORT")]
    pub sasl_advertised: Option<Advertised>,
    /// Address of a SASL_SSL listener (TLS with ssl_cert/ssl_key, then SASL); unset means none.
    #[arg(long, env = "SLUICE_SASL_SSL_LISTEN", value_name = "HOST:PORT")]
    pub sasl_ssl_listen: Option<ListenAddr>,
    /// Host and port SASL_SSL clients are told to connect to [default: the listen address].
    #[arg(long, env = "SLUICE_SASL_SSL_ADVERTISED", value_name = "HOST:PORT")]
    pub sasl_ssl_advertised: Option<Advertised>,
    /// `sasl.enabled.mechanisms`, comma-separated: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512,
    /// OAUTHBEARER [default: PLAIN,SCRAM-SHA-256,SCRAM-SHA-512, plus OAUTHBEARER when a token
    /// key is given].
    #[arg(long, env = "SLUICE_SASL_ENABLED_MECHANISMS", value_name = "LIST")]
    pub sasl_enabled_mechanisms: Option<String>,
    /// JWKS file with the keys OAUTHBEARER tokens may be signed with.
    #[arg(long, env = "SLUICE_SASL_OAUTHBEARER_JWKS", value_name = "FILE")]
    pub sasl_oauthbearer_jwks: Option<PathBuf>,
    /// PEM file of public keys OAUTHBEARER tokens may be signed with (e.g. the KSS token
    /// issuer's key).
    #[arg(long, env = "SLUICE_SASL_OAUTHBEARER_PUBLIC_KEY", value_name = "FILE")]
    pub sasl_oauthbearer_public_key: Option<PathBuf>,
    /// `sasl.oauthbearer.expected.audience`: tokens' `aud` must contain it.
    #[arg(
        long,
        env = "SLUICE_SASL_OAUTHBEARER_EXPECTED_AUDIENCE",
        value_name = "AUD"
    )]
    pub sasl_oauthbearer_expected_audience: Option<String>,
    /// `sasl.oauthbearer.expected.issuer`: tokens' `iss` must equal it.
    #[arg(
        long,
        env = "SLUICE_SASL_OAUTHBEARER_EXPECTED_ISSUER",
        value_name = "ISS"
    )]
    pub sasl_oauthbearer_expected_issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name`: the claim naming the principal [default: sub].
    #[arg(
        long,
        env = "SLUICE_SASL_OAUTHBEARER_SUB_CLAIM_NAME",
        value_name = "CLAIM"
    )]
    pub sasl_oauthbearer_sub_claim_name: Option<String>,
    /// `sasl.oauthbearer.clock.skew.seconds` [default: 30].
    #[arg(
        long,
        env = "SLUICE_SASL_OAUTHBEARER_CLOCK_SKEW_SECONDS",
        value_name = "SECONDS"
    )]
    pub sasl_oauthbearer_clock_skew_seconds: Option<u64>,
    /// `connections.max.reauth.ms` (KIP-368): SASL sessions end after this long unless the
    /// client re-authenticates [default: 0, never].
    #[arg(long, env = "SLUICE_CONNECTIONS_MAX_REAUTH_MS", value_name = "MS")]
    pub connections_max_reauth_ms: Option<u64>,
}

/// Declares `SecuritySettings::or` over every field, so a new setting cannot be forgotten.
macro_rules! layered {
    ($($field:ident),* $(,)?) => {
        impl SecuritySettings {
            /// Fills every setting unset in `self` from `lower`.
            pub(crate) fn or(self, lower: SecuritySettings) -> SecuritySettings {
                // Destructured so that a field missing from the list fails to compile.
                let SecuritySettings { $($field),* } = self;
                SecuritySettings { $($field: $field.or(lower.$field)),* }
            }
        }
    };
}

layered!(
    ssl_listen,
    ssl_advertised,
    ssl_cert,
    ssl_key,
    ssl_ca,
    ssl_client_auth,
    ssl_principal_mapping_rules,
    acls,
    super_users,
    allow_everyone_if_no_acl_found,
    sasl_listen,
    sasl_advertised,
    sasl_ssl_listen,
    sasl_ssl_advertised,
    sasl_enabled_mechanisms,
    sasl_oauthbearer_jwks,
    sasl_oauthbearer_public_key,
    sasl_oauthbearer_expected_audience,
    sasl_oauthbearer_expected_issuer,
    sasl_oauthbearer_sub_claim_name,
    sasl_oauthbearer_clock_skew_seconds,
    connections_max_reauth_ms,
);

impl SecuritySettings {
    /// Adds the SSL listener and the authorizer to `config`; `base` resolves relative paths
    /// given in a config file.
    fn apply(self, config: &mut BrokerConfig, base: Option<&Path>) -> anyhow::Result<()> {
        let resolve = |p: PathBuf| match base {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p,
        };
        if let Some(rules) = &self.ssl_principal_mapping_rules {
            PrincipalMapper::parse(rules).context("invalid ssl_principal_mapping_rules")?;
        }
        config.ssl_principal_mapping_rules = self.ssl_principal_mapping_rules;
        let tls_listeners = self.ssl_listen.is_some() || self.sasl_ssl_listen.is_some();
        let tls = if tls_listeners {
            let (Some(cert), Some(key)) = (self.ssl_cert, self.ssl_key) else {
                bail!("ssl_listen and sasl_ssl_listen need ssl_cert and ssl_key (PEM files of the server certificate and key)");
            };
            let ca = self.ssl_ca.map(&resolve);
            let explicit = match self.ssl_client_auth.as_deref() {
                Some(text) => Some(ClientAuth::parse(text).with_context(|| {
                    format!(
                        "invalid ssl_client_auth {text:?}: expected none, requested or required"
                    )
                })?),
                None => None,
            };
            Some((
                TlsSettings {
                    cert: resolve(cert),
                    key: resolve(key),
                    ca: ca.clone(),
                    client_auth: ClientAuth::None,
                },
                explicit,
                ca.is_some(),
            ))
        } else if self.ssl_cert.is_some() || self.ssl_key.is_some() || self.ssl_ca.is_some() {
            bail!("ssl_cert, ssl_key and ssl_ca only take effect with ssl_listen or sasl_ssl_listen; set ssl_listen = \"HOST:PORT\"");
        } else {
            None
        };
        // mTLS is the SSL listener's authentication (required once a CA is given); SASL_SSL
        // clients log in instead, so they are asked for a certificate only when
        // ssl_client_auth says so.
        let with_client_auth = |sasl: bool| {
            tls.clone().map(|(settings, explicit, has_ca)| TlsSettings {
                client_auth: explicit.unwrap_or(if has_ca && !sasl {
                    ClientAuth::Required
                } else {
                    ClientAuth::None
                }),
                ..settings
            })
        };
        let listeners = [
            (
                "SSL",
                self.ssl_listen,
                self.ssl_advertised,
                with_client_auth(false),
                false,
            ),
            (
                "SASL_PLAINTEXT",
                self.sasl_listen,
                self.sasl_advertised,
                None,
                true,
            ),
            (
                "SASL_SSL",
                self.sasl_ssl_listen,
                self.sasl_ssl_advertised,
                with_client_auth(true),
                true,
            ),
        ];
        for (name, listen, advertised, tls, sasl) in listeners {
            if let Some(listen) = listen {
                config.listeners.push(ListenerConfig {
                    name: name.to_owned(),
                    listen: listen.0,
                    advertised: advertised.map(|a| (a.host, a.port)),
                    tls,
                    sasl,
                });
            }
        }
        config.sasl = sasl_config(SaslFields {
            mechanisms: self.sasl_enabled_mechanisms,
            jwks: self.sasl_oauthbearer_jwks.map(&resolve),
            public_key: self.sasl_oauthbearer_public_key.map(&resolve),
            audience: self.sasl_oauthbearer_expected_audience,
            issuer: self.sasl_oauthbearer_expected_issuer,
            claim: self.sasl_oauthbearer_sub_claim_name,
            skew_secs: self.sasl_oauthbearer_clock_skew_seconds,
            max_reauth_ms: self.connections_max_reauth_ms,
        })?;
        if self.acls.unwrap_or(false) {
            config.authorizer = Some(AuthorizerConfig {
                super_users: AuthorizerConfig::parse_super_users(
                    self.super_users.as_deref().unwrap_or_default(),
                ),
                allow_everyone_if_no_acl_found: self
                    .allow_everyone_if_no_acl_found
                    .unwrap_or(false),
            });
        } else if self.super_users.is_some() || self.allow_everyone_if_no_acl_found.is_some() {
            bail!(
                "super_users and allow_everyone_if_no_acl_found only take effect with acls = true"
            );
        }
        Ok(())
    }
}

/// The SASL settings of one layered [`SecuritySettings`].
struct SaslFields {
    mechanisms: Option<String>,
    jwks: Option<PathBuf>,
    public_key: Option<PathBuf>,
    audience: Option<String>,
    issuer: Option<String>,
    claim: Option<String>,
    skew_secs: Option<u64>,
    max_reauth_ms: Option<u64>,
}

fn sasl_config(fields: SaslFields) -> anyhow::Result<SaslConfig> {
    let mut config = SaslConfig::default();
    if let Some(list) = &fields.mechanisms {
        let enabled: Vec<Mechanism> = list
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|name| {
                Mechanism::parse(name).with_context(|| {
                    format!("unknown SASL mechanism {name:?} in sasl_enabled_mechanisms: expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER")
                })
            })
            .collect::<anyhow::Result<_>>()?;
        if enabled.is_empty() {
            bail!("sasl_enabled_mechanisms is empty");
        }
        config.enabled_mechanisms = Some(enabled);
    }
    config.oauthbearer_jwks = fields.jwks;
    config.oauthbearer_public_key = fields.public_key;
    config.oauthbearer.expected_audience = fields.audience;
    config.oauthbearer.expected_issuer = fields.issuer;
    if let Some(claim) = fields.claim {
        config.oauthbearer.principal_claim = claim;
    }
    if let Some(secs) = fields.skew_secs {
        config.oauthbearer.clock_skew = Duration::from_secs(secs);
    }
    config.max_reauth = fields
        .max_reauth_ms
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    Ok(config)
}

/// Lays the command-line security settings over the file's `[security]` table and applies
/// them to `config`.
pub(crate) fn apply(
    cli: SecuritySettings,
    file: Option<&(PathBuf, ConfigFile)>,
    config: &mut BrokerConfig,
) -> anyhow::Result<()> {
    let file_layer = file.map(|(_, f)| f.security.clone()).unwrap_or_default();
    let base = file.and_then(|(path, _)| path.parent());
    let result = cli.or(file_layer).apply(config, base);
    match file {
        Some((path, _)) => result.with_context(|| format!("in [security] of {}", path.display())),
        None => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> SecuritySettings {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn ssl_listener_and_acls_from_a_file() {
        let s = settings(
            "ssl_listen = \"127.0.0.1:9093\"\nssl_advertised = \"localhost:9093\"\nssl_cert = \"s.pem\"\n\
             ssl_key = \"s.key\"\nssl_ca = \"/etc/ca.pem\"\nacls = true\nsuper_users = \"User:CN=admin;User:ops\"\n",
        );
        let mut config = BrokerConfig::default();
        s.apply(&mut config, Some(Path::new("/etc/sluice")))
            .unwrap();
        let listener = &config.listeners[0];
        assert_eq!(listener.advertised, Some(("localhost".to_owned(), 9093)));
        let tls = listener.tls.as_ref().unwrap();
        assert_eq!(tls.cert, PathBuf::from("/etc/sluice/s.pem"));
        assert_eq!(tls.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            tls.client_auth,
            ClientAuth::Required,
            "a CA means client certificates are verified"
        );
        let acls = config.authorizer.unwrap();
        assert_eq!(acls.super_users, vec!["User:CN=admin", "User:ops"]);
        assert!(!acls.allow_everyone_if_no_acl_found);
    }

    #[test]
    fn inconsistent_settings_are_errors() {
        let mut config = BrokerConfig::default();
        assert!(settings("ssl_listen = \"127.0.0.1:9093\"")
            .apply(&mut config, None)
            .is_err());
        assert!(settings("ssl_cert = \"a.pem\"")
            .apply(&mut config, None)
            .is_err());
        assert!(settings("super_users = \"User:a\"")
            .apply(&mut config, None)
            .is_err());
        assert!(settings("ssl_principal_mapping_rules = \"RULE:bad\"")
            .apply(&mut config, None)
            .is_err());
        assert!(toml::from_str::<SecuritySettings>("unknown_key = 1").is_err());
        let mut config = BrokerConfig::default();
        settings("").apply(&mut config, None).unwrap();
        assert!(config.listeners.is_empty() && config.authorizer.is_none());
    }

    #[test]
    fn sasl_listeners_and_mechanisms() {
        let s = settings(
            "sasl_listen = \"127.0.0.1:9094\"\nsasl_ssl_listen = \"127.0.0.1:9095\"\nssl_cert = \"s.pem\"\n\
             ssl_key = \"s.key\"\nssl_ca = \"ca.pem\"\nsasl_enabled_mechanisms = \"SCRAM-SHA-512, OAUTHBEARER\"\n\
             sasl_oauthbearer_jwks = \"jwks.json\"\nconnections_max_reauth_ms = 60000\n",
        );
        let mut config = BrokerConfig::default();
        s.apply(&mut config, Some(Path::new("/etc/sluice")))
            .unwrap();
        let names: Vec<(&str, bool, bool)> = config
            .listeners
            .iter()
            .map(|l| (l.name.as_str(), l.tls.is_some(), l.sasl))
            .collect();
        assert_eq!(
            names,
            vec![("SASL_PLAINTEXT", false, true), ("SASL_SSL", true, true)]
        );
        let tls = config.listeners[1].tls.as_ref().unwrap();
        assert_eq!(
            tls.client_auth,
            ClientAuth::None,
            "SASL_SSL clients log in instead"
        );
        assert_eq!(
            config.sasl.enabled_mechanisms,
            Some(vec![Mechanism::ScramSha512, Mechanism::OAuthBearer])
        );
        assert_eq!(
            config.sasl.oauthbearer_jwks,
            Some(PathBuf::from("/etc/sluice/jwks.json"))
        );
        assert_eq!(config.sasl.max_reauth, Some(Duration::from_secs(60)));
        let mut config = BrokerConfig::default();
        let err = settings("sasl_enabled_mechanisms = \"GSSAPI\"")
            .apply(&mut config, None)
            .unwrap_err();
        assert!(err.to_string().contains("GSSAPI"), "{err}");
    }

    #[test]
    fn command_line_beats_file() {
        let cli = SecuritySettings {
            acls: Some(false),
            ..Default::default()
        };
        let merged = cli.or(settings("acls = true\nssl_client_auth = \"requested\""));
        assert_eq!(merged.acls, Some(false));
        assert_eq!(merged.ssl_client_auth.as_deref(), Some("requested"));
    }
}
