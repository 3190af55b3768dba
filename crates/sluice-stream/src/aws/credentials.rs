//! Credentials, region and endpoint resolved the standard AWS way, so the same configuration
//! runs against AWS and a local emulator: explicit settings, then the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_REGION`, `AWS_ENDPOINT_URL[_<SERVICE>]`, …), then the shared
//! `credentials` and `config` files of the selected profile.
//!
//! Not supported (yet): instance metadata (IMDS), SSO, `credential_process` and assume-role
//! profiles; such a profile is reported as having no keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// An access key, with the session token of temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `aws_access_key_id`.
    pub access_key_id: String,
    /// `aws_secret_access_key`.
    pub secret_access_key: String,
    /// `aws_session_token`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where and as whom to call AWS; every field optional (`aws:` in a pipeline file).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// Region, e.g. `eu-west-1` (else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's).
    pub region: Option<String>,
    /// Endpoint, e.g. `http://127.0.0.1:5000` for an emulator (else `AWS_ENDPOINT_URL_<SERVICE>`,
    /// `AWS_ENDPOINT_URL`, the profile's `endpoint_url`, then AWS's own).
    pub endpoint_url: Option<String>,
    /// Profile of the shared files (else `AWS_PROFILE`, then `default`).
    pub profile: Option<String>,
}

/// What the environment and shared files say; a seam so tests need no process environment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources {
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) credentials_file: Option<String>,
    pub(crate) config_file: Option<String>,
}

impl Sources {
    /// The process's environment and the shared files it points at.
    pub(crate) fn from_process() -> Sources {
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_") || k == "HOME")
            .collect();
        let home = env.get("HOME").map(PathBuf::from);
        let file = |var: &str, default: &str| {
            let path = env
                .get(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))?;
            read_small(&path)
        };
        Sources {
            credentials_file: file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            config_file: file("AWS_CONFIG_FILE", "config"),
            env,
        }
    }
}

/// Shared files are small; refuse to slurp anything that is not.
fn read_small(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > 1 << 20 {
        tracing::warn!(path = %path.display(), "ignoring an AWS shared file over 1 MiB");
        return None;
    }
    std::fs::read_to_string(path).ok()
}

/// Everything a client of one service needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Keys to sign with.
    pub credentials: Credentials,
    /// Region to sign for.
    pub region: String,
    /// Base URL requests go to.
    pub endpoint: String,
}

/// Resolves `settings` for `service` (the endpoint prefix and signing name, e.g. `sqs`).
pub(crate) fn resolve(settings: &AwsSettings, service: &str, src: &Sources) -> Result<Resolved> {
    let profile = settings
        .profile
        .clone()
        .or_else(|| src.env.get("AWS_PROFILE").cloned())
        .unwrap_or_else(|| "default".to_owned());
    let creds_file = src
        .credentials_file
        .as_deref()
        .map(|t| section(t, &profile))
        .unwrap_or_default();
    let config_section = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    let config_file = src
        .config_file
        .as_deref()
        .map(|t| section(t, &config_section))
        .unwrap_or_default();
    let env = |k: &str| src.env.get(k).filter(|v| !v.is_empty()).cloned();

    let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: env("AWS_SESSION_TOKEN"),
        },
        _ => {
            let get = |k: &str| {
                creds_file
                    .get(k)
                    .or_else(|| config_file.get(k))
                    .filter(|v| !v.is_empty())
                    .cloned()
            };
            match (get("aws_access_key_id"), get("aws_secret_access_key")) {
                (Some(id), Some(secret)) => Credentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: get("aws_session_token"),
                },
                _ => {
                    return Err(Error::Config(format!(
                        "no AWS credentials for {service}: set AWS_ACCESS_KEY_ID and \
                         AWS_SECRET_ACCESS_KEY, or keys in profile '{profile}' of the shared \
                         credentials file"
                    )))
                }
            }
        }
    };
    let region = settings
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| config_file.get("region").cloned())
        .ok_or_else(|| {
            Error::Config(format!(
                "no AWS region for {service}: set aws.region, AWS_REGION or the profile's region"
            ))
        })?;
    let service_env = format!(
        "AWS_ENDPOINT_URL_{}",
        service.to_ascii_uppercase().replace('-', "_")
    );
    let endpoint = settings
        .endpoint_url
        .clone()
        .or_else(|| env(&service_env))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| config_file.get("endpoint_url").cloned())
        .unwrap_or_else(|| format!("https://{service}.{region}.amazonaws.com"));
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(Error::Config(format!(
            "AWS endpoint {endpoint:?} for {service} is not an http:// or https:// URL"
        )));
    }
    Ok(Resolved {
        credentials,
        region,
        endpoint: endpoint.trim_end_matches('/').to_owned(),
    })
}

/// The `key = value` pairs of `[name]` in an INI-style shared file.
fn section(text: &str, name: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.trim() == name;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn environment_wins_over_files_and_service_endpoint_over_global() {
        let src = Sources {
            env: env(&[
                ("AWS_ACCESS_KEY_ID", "AK"),
                ("AWS_SECRET_ACCESS_KEY", "SK"),
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ENDPOINT_URL", "http://global:1"),
                ("AWS_ENDPOINT_URL_SQS", "http://sqs-only:2/"),
            ]),
            credentials_file: Some(
                "[default]\naws_access_key_id=FILE\naws_secret_access_key=F\n".into(),
            ),
            config_file: None,
        };
        let r = resolve(&AwsSettings::default(), "sqs", &src).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.credentials.access_key_id, "AK");
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(r.endpoint, "http://sqs-only:2");
        let k = resolve(&AwsSettings::default(), "kinesis", &src).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.endpoint, "http://global:1");
    }

    #[test]
    fn named_profile_from_shared_files() {
        let src = Sources {
            env: env(&[("AWS_PROFILE", "dev")]),
            credentials_file: Some(
                "[default]\naws_access_key_id = D\naws_secret_access_key = D\n\
                 [dev]\naws_access_key_id = DEV\naws_secret_access_key = S\naws_session_token = T\n"
                    .into(),
            ),
            config_file: Some("[profile dev]\nregion = ap-south-1\nendpoint_url = http://e:9\n".into()),
        };
        let r = resolve(&AwsSettings::default(), "sns", &src).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.credentials.access_key_id, "DEV");
        assert_eq!(r.credentials.session_token.as_deref(), Some("T"));
        assert_eq!(r.region, "ap-south-1");
        assert_eq!(r.endpoint, "http://e:9");
        let explicit = AwsSettings {
            region: Some("us-west-2".into()),
            endpoint_url: None,
            profile: Some("default".into()),
        };
        let r = resolve(&explicit, "sns", &src).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.credentials.access_key_id, "D");
        assert_eq!(r.endpoint, "https://sns.us-west-2.amazonaws.com");
    }

    #[test]
    fn missing_pieces_are_named() {
        let none = Sources::default();
        let e = resolve(&AwsSettings::default(), "sqs", &none)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("no AWS credentials")));
        let src = Sources {
            env: env(&[("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "S")]),
            ..Sources::default()
        };
        let e = resolve(&AwsSettings::default(), "sqs", &src)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("no AWS region")));
    }
}
