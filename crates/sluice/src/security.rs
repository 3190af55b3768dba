//! Broker security settings: the SSL listener, its TLS files, and ACL authorization, from
//! flags, `SLUICE_*` environment variables and the `[security]` table of `sluice.toml`
//! (same precedence as the `[broker]` table: flag > environment > file > default).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use sluice_broker::auth::{AuthorizerConfig, PrincipalMapper};
use sluice_broker::config::ListenerConfig;
use sluice_broker::net::tls::{ClientAuth, TlsSettings};
use sluice_broker::BrokerConfig;

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
}

impl SecuritySettings {
    /// Fills every setting unset in `self` from `lower`.
    pub(crate) fn or(self, lower: SecuritySettings) -> SecuritySettings {
        SecuritySettings {
            ssl_listen: self.ssl_listen.or(lower.ssl_listen),
            ssl_advertised: self.ssl_advertised.or(lower.ssl_advertised),
            ssl_cert: self.ssl_cert.or(lower.ssl_cert),
            ssl_key: self.ssl_key.or(lower.ssl_key),
            ssl_ca: self.ssl_ca.or(lower.ssl_ca),
            ssl_client_auth: self.ssl_client_auth.or(lower.ssl_client_auth),
            ssl_principal_mapping_rules: self
                .ssl_principal_mapping_rules
                .or(lower.ssl_principal_mapping_rules),
            acls: self.acls.or(lower.acls),
            super_users: self.super_users.or(lower.super_users),
            allow_everyone_if_no_acl_found: self
                .allow_everyone_if_no_acl_found
                .or(lower.allow_everyone_if_no_acl_found),
        }
    }

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
        if let Some(listen) = self.ssl_listen {
            let (Some(cert), Some(key)) = (self.ssl_cert, self.ssl_key) else {
                bail!("ssl_listen needs ssl_cert and ssl_key (PEM files of the server certificate and key)");
            };
            let ca = self.ssl_ca.map(&resolve);
            let client_auth = match self.ssl_client_auth.as_deref() {
                Some(text) => ClientAuth::parse(text).with_context(|| {
                    format!(
                        "invalid ssl_client_auth {text:?}: expected none, requested or required"
                    )
                })?,
                None if ca.is_some() => ClientAuth::Required,
                None => ClientAuth::None,
            };
            config.listeners.push(ListenerConfig {
                name: "SSL".to_owned(),
                listen: listen.0,
                advertised: self.ssl_advertised.map(|a| (a.host, a.port)),
                tls: Some(TlsSettings {
                    cert: resolve(cert),
                    key: resolve(key),
                    ca,
                    client_auth,
                }),
            });
        } else if self.ssl_cert.is_some() || self.ssl_key.is_some() || self.ssl_ca.is_some() {
            bail!("ssl_cert, ssl_key and ssl_ca only take effect with ssl_listen; set ssl_listen = \"HOST:PORT\"");
        }
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
