//! A client for any Confluent-compatible schema registry over HTTP, with retry/backoff and
//! caches of ids by schema and schemas by id; `admin` adds what platform-as-code needs
//! (subjects, lookups, compatibility checks and levels, deletion).

mod admin;

pub use admin::SubjectVersion;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};

/// How the client retries a registry it cannot reach (connection errors and HTTP 5xx).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in total, at least 1.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Upper bound of one wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// A schema reference as the registry stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    /// Import name (protobuf file name).
    pub name: String,
    /// Subject it is registered under.
    pub subject: String,
    /// Version within the subject.
    pub version: i32,
}

/// A schema as fetched from the registry.
#[derive(Debug, Clone, Deserialize)]
pub struct FetchedSchema {
    /// AVRO (when absent), PROTOBUF or JSON.
    #[serde(rename = "schemaType", default = "avro")]
    pub schema_type: String,
    /// Schema text (base64 `FileDescriptorProto` for protobuf: fetched with `format=serialized`).
    pub schema: String,
    /// Its references.
    #[serde(default)]
    pub references: Vec<SchemaReference>,
    /// Its id, when the answer carries one (subject versions do; lookups by id do not).
    #[serde(default)]
    pub id: Option<u32>,
}

fn avro() -> String {
    "AVRO".to_owned()
}

type RegisterKey = (String, String, Vec<SchemaReference>);

/// Registry client; cheap to clone and share.
#[derive(Clone)]
pub struct RegistryClient {
    base: String,
    http: reqwest::Client,
    retry: RetryPolicy,
    ids: Arc<RwLock<HashMap<RegisterKey, (u32, i32)>>>,
    by_id: Arc<RwLock<HashMap<u32, Arc<FetchedSchema>>>>,
}

enum Attempt {
    Retry(String),
    Fail(Error),
}

impl RegistryClient {
    /// A client for the registry at `base_url` (e.g. `http://127.0.0.1:8081`).
    pub fn new(base_url: &str, retry: RetryPolicy) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the registry HTTP client: {e}")))?;
        Ok(RegistryClient {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
            retry,
            ids: Arc::default(),
            by_id: Arc::default(),
        })
    }

    /// The registry base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        subject: &str,
    ) -> Result<serde_json::Value> {
        let url = format!("{}{path}", self.base);
        let request = format!("{method} {path}");
        let mut backoff = self.retry.initial_backoff;
        let attempts = self.retry.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            let mut rb = self
                .http
                .request(method.clone(), &url)
                .header("Content-Type", "application/vnd.schemaregistry.v1+json");
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let outcome = match rb.send().await {
                Err(e) => Attempt::Retry(e.to_string()),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let value: serde_json::Value = resp.json().await.unwrap_or_default();
                    if (200..300).contains(&status) {
                        return Ok(value);
                    }
                    let message = value
                        .get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or("")
                        .to_owned();
                    if status >= 500 {
                        Attempt::Retry(format!("HTTP {status}: {message}"))
                    } else if status == 409 {
                        Attempt::Fail(Error::SchemaIncompatible {
                            subject: subject.to_owned(),
                            reasons: split_reasons(&message),
                        })
                    } else {
                        Attempt::Fail(Error::Registry {
                            request: request.clone(),
                            status,
                            message,
                        })
                    }
                }
            };
            match outcome {
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(cause) => {
                    tracing::warn!(%request, attempt, %cause, "schema registry call failed; retrying");
                    last = cause;
                }
            }
            if attempt < attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.retry.max_backoff);
            }
        }
        Err(Error::RegistryUnreachable {
            url: self.base.clone(),
            attempts,
            cause: last,
        })
    }

    /// Registers `schema` under `subject` (or finds it registered) and returns (id, version);
    /// cached, so only the first call per schema talks to the registry.
    pub async fn register(
        &self,
        subject: &str,
        schema_type: &str,
        schema: &str,
        references: &[SchemaReference],
    ) -> Result<(u32, i32)> {
        let key = (subject.to_owned(), schema.to_owned(), references.to_vec());
        if let Some(found) = self.ids.read().get(&key) {
            return Ok(*found);
        }
        let body = schema_body(schema_type, schema, references);
        let path = format!("/subjects/{}/versions", encode_path(subject));
        let reg = self
            .call(reqwest::Method::POST, &path, Some(&body), subject)
            .await?;
        let id = json_u32(&reg, "id", &path)?;
        let path = format!("/subjects/{}", encode_path(subject));
        let found = self
            .call(reqwest::Method::POST, &path, Some(&body), subject)
            .await?;
        let version = json_u32(&found, "version", &path)? as i32;
        self.ids.write().insert(key, (id, version));
        Ok((id, version))
    }

    /// The schema with `id` (protobuf in serialized form); cached.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<FetchedSchema>> {
        if let Some(s) = self.by_id.read().get(&id) {
            return Ok(s.clone());
        }
        let path = format!("/schemas/ids/{id}?format=serialized");
        let v = self.call(reqwest::Method::GET, &path, None, "").await?;
        let s: FetchedSchema = serde_json::from_value(v).map_err(|e| bad_answer(&path, e))?;
        let s = Arc::new(s);
        self.by_id.write().insert(id, s.clone());
        Ok(s)
    }

    /// One version of a subject (protobuf in serialized form); used to resolve references.
    pub async fn subject_version(&self, subject: &str, version: i32) -> Result<FetchedSchema> {
        let path = format!(
            "/subjects/{}/versions/{version}?format=serialized",
            encode_path(subject)
        );
        let v = self
            .call(reqwest::Method::GET, &path, None, subject)
            .await?;
        serde_json::from_value(v).map_err(|e| bad_answer(&path, e))
    }
}

/// The body of register, lookup and compatibility requests (`schemaType` only when not AVRO,
/// the registry's default, so old registries accept it).
fn schema_body(
    schema_type: &str,
    schema: &str,
    references: &[SchemaReference],
) -> serde_json::Value {
    let mut body = json!({ "schema": schema, "references": references });
    if schema_type != "AVRO" {
        body["schemaType"] = json!(schema_type);
    }
    body
}

fn bad_answer(path: &str, e: impl std::fmt::Display) -> Error {
    Error::Registry {
        request: path.to_owned(),
        status: 200,
        message: format!("unexpected answer: {e}"),
    }
}

fn json_u32(v: &serde_json::Value, field: &str, path: &str) -> Result<u32> {
    v.get(field)
        .and_then(|x| x.as_u64())
        .and_then(|x| u32::try_from(x).ok())
        .ok_or_else(|| bad_answer(path, format!("no numeric {field:?} in {v}")))
}

fn split_reasons(message: &str) -> Vec<String> {
    message
        .split(['\n', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Percent-encodes one URL path segment (RFC 3986 unreserved characters kept): subjects, whose
/// protobuf file names contain `/`, and other names put into REST paths.
pub fn encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
