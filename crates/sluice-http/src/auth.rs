//! Who is calling: API keys (HTTP Basic, `key:secret`, the way Confluent Cloud's REST API takes
//! them) mapped to Kafka principals. Each key names the Kafka client settings (SASL login or
//! client certificate) the proxy uses on that caller's behalf, so the cluster's own ACLs decide
//! what the caller may do; the proxy holds no authorization logic of its own.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use base64::Engine;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::ratelimit::TokenBucket;

/// The keys file: `[[keys]]` tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    /// The API keys.
    #[serde(default)]
    pub keys: Vec<ApiKey>,
}

/// One API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The key (the Basic auth user name).
    pub key: String,
    /// Lower-case hex SHA-256 of the secret (the Basic auth password); the file never holds
    /// the secret itself.
    pub secret_sha256: String,
    /// `service_id` stamped on records this key produces [default: the key].
    pub service_id: Option<String>,
    /// Records per second this key may produce, on average [default: unlimited].
    pub records_per_second: Option<f64>,
    /// Records this key may send in a burst above the average [default: one second's worth].
    pub burst: Option<f64>,
    /// librdkafka settings for this key's Kafka connections, over the proxy's own, e.g.
    /// `sasl.username`/`sasl.password` of the principal whose ACLs apply.
    #[serde(default)]
    pub kafka: BTreeMap<String, String>,
}

/// Errors reading the keys file.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The file could not be read.
    #[error("cannot read the API keys file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("the API keys file {path} is not valid: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl KeysFile {
    /// Reads and checks a keys file.
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeysError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| KeysError::Invalid {
            path: shown,
            reason,
        })
    }

    /// Parses and checks the TOML text of a keys file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: KeysFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut seen = std::collections::HashSet::new();
        for k in &file.keys {
            if k.key.is_empty() || k.key.contains(':') {
                return Err(format!("key {:?}: must be non-empty without ':'", k.key));
            }
            if !seen.insert(k.key.as_str()) {
                return Err(format!("key {:?} appears twice", k.key));
            }
            if decode_hex(&k.secret_sha256).is_none_or(|d| d.len() != 32) {
                return Err(format!(
                    "key {:?}: secret_sha256 must be 64 hex digits (sha256sum of the secret)",
                    k.key
                ));
            }
            if let Some(r) = k.records_per_second {
                if !(r.is_finite() && r >= 0.001) {
                    return Err(format!(
                        "key {:?}: records_per_second must be at least 0.001",
                        k.key
                    ));
                }
            }
            if let Some(b) = k.burst {
                if !(b.is_finite() && b >= 1.0) {
                    return Err(format!("key {:?}: burst must be >= 1", k.key));
                }
            }
        }
        Ok(file)
    }
}

/// The caller of one request.
#[derive(Debug)]
pub(crate) struct Principal {
    /// The API key, or `anonymous` when the proxy takes no keys.
    pub(crate) name: String,
    /// `service_id` stamped on the records it produces.
    pub(crate) service_id: String,
    /// Its Kafka settings over the proxy's own.
    pub(crate) kafka: BTreeMap<String, String>,
    limiter: Option<TokenBucket>,
}

impl Principal {
    /// The caller when the proxy takes no API keys: the proxy's own Kafka identity.
    pub(crate) fn anonymous(service_id: &str) -> Self {
        Principal {
            name: "anonymous".to_owned(),
            service_id: service_id.to_owned(),
            kafka: BTreeMap::new(),
            limiter: None,
        }
    }

    /// Charges `records` against the rate limit; a 429 once it is spent.
    pub(crate) fn charge(&self, records: usize) -> ApiResult<()> {
        match &self.limiter {
            Some(bucket) => bucket
                .take(records as f64)
                .map_err(|wait| ApiError::rate_limited(wait.as_secs().saturating_add(1).min(3600))),
            None => Ok(()),
        }
    }
}

/// Resolves the `Authorization` header of each request.
#[derive(Debug)]
pub(crate) struct Authenticator {
    keys: BTreeMap<String, ([u8; 32], Arc<Principal>)>,
    anonymous: Arc<Principal>,
}

impl Authenticator {
    /// Takes `file`'s keys; with none, every request is served as [`Principal::anonymous`].
    pub(crate) fn new(file: &KeysFile, default_service_id: &str) -> Self {
        let keys = file
            .keys
            .iter()
            .filter_map(|k| {
                let digest: [u8; 32] = decode_hex(&k.secret_sha256)?.try_into().ok()?;
                let limiter = k
                    .records_per_second
                    .map(|rate| TokenBucket::new(rate, k.burst.unwrap_or(rate.max(1.0))));
                let principal = Principal {
                    name: k.key.clone(),
                    service_id: k.service_id.clone().unwrap_or_else(|| k.key.clone()),
                    kafka: k.kafka.clone(),
                    limiter,
                };
                Some((k.key.clone(), (digest, Arc::new(principal))))
            })
            .collect();
        Authenticator {
            keys,
            anonymous: Arc::new(Principal::anonymous(default_service_id)),
        }
    }

    /// The caller named by `headers`.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> ApiResult<Arc<Principal>> {
        if self.keys.is_empty() {
            return Ok(Arc::clone(&self.anonymous));
        }
        let refused = || {
            ApiError::unauthenticated(
                "Unauthorized: send an API key and secret with HTTP Basic authentication",
            )
        };
        let value = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(refused)?;
        let (scheme, encoded) = value.split_once(' ').ok_or_else(refused)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(refused());
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| refused())?;
        let text = std::str::from_utf8(&decoded).map_err(|_| refused())?;
        let (key, secret) = text.split_once(':').ok_or_else(refused)?;
        let (digest, principal) = self.keys.get(key).ok_or_else(refused)?;
        let given = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
        // Constant time: how much of the digest matched must not show in the timing.
        let differ = given
            .as_ref()
            .iter()
            .zip(digest)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differ != 0 {
            return Err(refused());
        }
        Ok(Arc::clone(principal))
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_SHA: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"; // "secret"

    fn basic(user: &str, pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        h.insert(AUTHORIZATION, format!("Basic {token}").parse().unwrap());
        h
    }

    fn file() -> KeysFile {
        KeysFile::parse(&format!(
            "[[keys]]\nkey = \"web\"\nsecret_sha256 = \"{SECRET_SHA}\"\nservice_id = \"web-app\"\nrecords_per_second = 10.0\n[keys.kafka]\n\"sasl.username\" = \"web\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn keys_resolve_to_their_principal_and_nothing_else_does() {
        let auth = Authenticator::new(&file(), "proxy");
        let p = auth.authenticate(&basic("web", "secret")).unwrap();
        assert_eq!(p.service_id, "web-app");
        assert_eq!(p.kafka["sasl.username"], "web");
        for headers in [
            basic("web", "wrong"),
            basic("other", "secret"),
            HeaderMap::new(),
        ] {
            assert_eq!(auth.authenticate(&headers).unwrap_err().code, 40101);
        }
    }

    #[test]
    fn without_keys_everyone_is_anonymous() {
        let auth = Authenticator::new(&KeysFile::default(), "proxy");
        let p = auth.authenticate(&HeaderMap::new()).unwrap();
        assert_eq!(p.service_id, "proxy");
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let dup = format!("[[keys]]\nkey = \"a\"\nsecret_sha256 = \"{SECRET_SHA}\"\n[[keys]]\nkey = \"a\"\nsecret_sha256 = \"{SECRET_SHA}\"\n");
        assert!(KeysFile::parse(&dup).unwrap_err().contains("twice"));
        let short = "[[keys]]\nkey = \"a\"\nsecret_sha256 = \"abc\"\n";
        assert!(KeysFile::parse(short).unwrap_err().contains("64 hex"));
        let typo = format!("[[keys]]\nkey = \"a\"\nsecret = \"{SECRET_SHA}\"\n");
        assert!(KeysFile::parse(&typo).is_err());
    }

    #[test]
    fn the_rate_limit_answers_429_with_a_wait() {
        let auth = Authenticator::new(&file(), "proxy");
        let p = auth.authenticate(&basic("web", "secret")).unwrap();
        p.charge(10).unwrap();
        let err = p.charge(1).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(err.retry_after.unwrap() >= 1);
    }
}
