//! A small signed-HTTP client for the AWS APIs the destinations call: the JSON protocols (SQS,
//! Kinesis) and the query protocol (SNS).

mod credentials;
mod sigv4;
mod xml;

use std::time::Duration;

use serde_json::Value;

pub use credentials::{AwsSettings, Credentials, Resolved};
pub(crate) use xml::{query_error, XmlDoc};

use crate::error::{Error, Result};

/// Answers larger than this are refused: a batch answer is a few KB.
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// A failed AWS call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service} {code}: {message}")]
pub struct AwsError {
    /// The service called.
    pub service: &'static str,
    /// AWS's error code (`ThrottlingException`, `QueueDoesNotExist`, …), or `Http<status>` /
    /// `Network` when the answer carried none.
    pub code: String,
    /// What the service said.
    pub message: String,
    /// Whether sending the same request again may succeed.
    pub retriable: bool,
}

/// Codes that mean "not now" rather than "never" (with or without the `Exception` suffix
/// some protocols add).
pub(crate) fn retriable_code(code: &str) -> bool {
    let code = code.strip_suffix("Exception").unwrap_or(code);
    matches!(
        code,
        "Throttling"
            | "Throttled"
            | "RequestThrottled"
            | "TooManyRequests"
            | "ProvisionedThroughputExceeded"
            | "LimitExceeded"
            | "KMSThrottling"
            | "KmsThrottled"
            | "ServiceUnavailable"
            | "InternalFailure"
            | "InternalError"
            | "RequestTimeout"
            | "SlowDown"
    )
}

/// Refusals about the caller (its keys, signature, permissions, our reading of the answer),
/// not about any record in the request: splitting the request would not help.
pub(crate) fn caller_error(code: &str) -> bool {
    let code = code.strip_suffix("Exception").unwrap_or(code);
    matches!(
        code,
        "AccessDenied"
            | "SignatureDoesNotMatch"
            | "InvalidClientTokenId"
            | "UnrecognizedClient"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "ExpiredToken"
            | "InvalidSignature"
            | "AuthorizationError"
            | "ResponseTooLarge"
            | "Http401"
            | "Http403"
            | "QueueDoesNotExist"
            | "AWS.SimpleQueueService.NonExistentQueue"
            | "NotFound"
            | "ResourceNotFound"
    )
}

/// The `host` header and canonical path requests to `endpoint` are signed with, as reqwest
/// will send them: the host lowercased, the port only when not the scheme's default, and each
/// path segment URI-encoded once more (SigV4's rule for every service but S3).
fn signing_target(endpoint: &str) -> Result<(String, String)> {
    let bad = |why: &str| Error::Config(format!("AWS endpoint {endpoint:?} {why}"));
    let url = reqwest::Url::parse(endpoint).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a query or credentials"));
    }
    let host = url.host_str().ok_or_else(|| bad("has no host"))?;
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let path = url
        .path()
        .split('/')
        .map(|segment| segment.replace('%', "%25"))
        .collect::<Vec<_>>()
        .join("/");
    Ok((
        host,
        if path.is_empty() {
            "/".to_owned()
        } else {
            path
        },
    ))
}

/// A client of one AWS service.
#[derive(Debug, Clone)]
pub(crate) struct AwsClient {
    http: reqwest::Client,
    service: &'static str,
    resolved: Resolved,
    host: String,
    path: String,
}

impl AwsClient {
    /// A client of `service` (endpoint prefix and signing name) configured by `settings`.
    pub(crate) fn new(service: &'static str, settings: &AwsSettings) -> Result<AwsClient> {
        Self::with_sources(service, settings, &credentials::Sources::from_process())
    }

    fn with_sources(
        service: &'static str,
        settings: &AwsSettings,
        sources: &credentials::Sources,
    ) -> Result<AwsClient> {
        let resolved = credentials::resolve(settings, service, sources)?;
        let (host, path) = signing_target(&resolved.endpoint)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(AwsClient {
            http,
            service,
            resolved,
            host,
            path,
        })
    }

    /// Calls a JSON-protocol operation (`X-Amz-Target: <target>`), returning the answer's body.
    pub(crate) async fn json(
        &self,
        json_version: &str,
        target: &str,
        body: &Value,
    ) -> std::result::Result<Value, AwsError> {
        let body = serde_json::to_vec(body).map_err(|e| self.local(e.to_string()))?;
        let content_type = format!("application/x-amz-json-{json_version}");
        let (status, headers, bytes) = self
            .post(
                &[("content-type", &content_type), ("x-amz-target", target)],
                body,
            )
            .await?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        // `__type` is `prefix#Code` or `Code:uri` depending on the service.
        let raw = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                value
                    .get("__type")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("Http{}", status.as_u16()));
        let code = raw
            .rsplit('#')
            .next()
            .unwrap_or(&raw)
            .split(':')
            .next()
            .unwrap_or(&raw)
            .to_owned();
        let message = ["message", "Message"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned()
            });
        Err(self.classify(status, code, message))
    }

    /// Calls a query-protocol operation (form-encoded `params`), returning the XML answer.
    pub(crate) async fn query(
        &self,
        params: &[(String, String)],
    ) -> std::result::Result<XmlDoc, AwsError> {
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (k, v) in params {
                form.append_pair(k, v);
            }
            form.finish().into_bytes()
        };
        let (status, _, bytes) = self
            .post(
                &[(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )],
                body,
            )
            .await?;
        let doc = XmlDoc::parse(&bytes).map_err(|e| {
            self.classify(
                status,
                format!("Http{}", status.as_u16()),
                format!("unreadable answer: {e}"),
            )
        })?;
        if status.is_success() {
            return Ok(doc);
        }
        let (code, message) = query_error(&doc)
            .unwrap_or_else(|| (format!("Http{}", status.as_u16()), String::new()));
        Err(self.classify(status, code, message))
    }

    async fn post(
        &self,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> std::result::Result<
        (
            reqwest::StatusCode,
            reqwest::header::HeaderMap,
            bytes::Bytes,
        ),
        AwsError,
    > {
        let signed = sigv4::sign(
            &sigv4::Request {
                method: "POST",
                host: &self.host,
                path: &self.path,
                headers,
                body: &body,
            },
            &self.resolved.credentials,
            &self.resolved.region,
            self.service,
            time::OffsetDateTime::now_utc(),
        );
        let mut req = self
            .http
            .post(&self.resolved.endpoint)
            .header("x-amz-date", &signed.amz_date)
            .header("authorization", &signed.authorization);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(token) = &signed.security_token {
            req = req.header("x-amz-security-token", token);
        }
        let mut resp = req.body(body).send().await.map_err(|e| AwsError {
            service: self.service,
            code: "Network".to_owned(),
            message: format!("{} unreachable: {e}", self.resolved.endpoint),
            retriable: true,
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut buf = bytes::BytesMut::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(AwsError {
                            service: self.service,
                            code: "ResponseTooLarge".to_owned(),
                            message: format!("answer over {MAX_RESPONSE_BYTES} bytes"),
                            retriable: false,
                        });
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(AwsError {
                        service: self.service,
                        code: "Network".to_owned(),
                        message: format!("reading the answer: {e}"),
                        retriable: true,
                    })
                }
            }
        }
        Ok((status, headers, buf.freeze()))
    }

    fn classify(&self, status: reqwest::StatusCode, code: String, message: String) -> AwsError {
        let retriable = status.is_server_error() || status.as_u16() == 429 || retriable_code(&code);
        AwsError {
            service: self.service,
            code,
            message,
            retriable,
        }
    }

    fn local(&self, message: String) -> AwsError {
        AwsError {
            service: self.service,
            code: "Client".to_owned(),
            message,
            retriable: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_host_and_path_split() {
        let src = credentials::Sources {
            env: [
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                ("AWS_REGION", "us-east-1"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
            ..Default::default()
        };
        let settings = AwsSettings {
            endpoint_url: Some("http://127.0.0.1:5000/".to_owned()),
            ..Default::default()
        };
        let c = AwsClient::with_sources("sqs", &settings, &src).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.host.as_str(), c.path.as_str()), ("127.0.0.1:5000", "/"));
        let t = |e: &str| signing_target(e).map_err(|e| e.to_string());
        assert_eq!(
            t("https://SQS.example.com:443"),
            Ok(("sqs.example.com".into(), "/".into()))
        );
        assert_eq!(
            t("http://h:8080/a b/c"),
            Ok(("h:8080".into(), "/a%2520b/c".into()))
        );
        assert!(t("http://u:p@h/").is_err() && t("http://h/?x=1").is_err());
        assert_eq!(c.resolved.endpoint, "http://127.0.0.1:5000");
        let aws = AwsClient::with_sources("kinesis", &AwsSettings::default(), &src)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(aws.host, "kinesis.us-east-1.amazonaws.com");
    }

    #[test]
    fn throttling_is_retriable_and_validation_is_not() {
        assert!(retriable_code("ProvisionedThroughputExceededException"));
        assert!(retriable_code("KMSThrottling"));
        assert!(retriable_code("KmsThrottled"));
        assert!(!retriable_code("InvalidParameterValue"));
        assert!(caller_error("AccessDeniedException") && !caller_error("InvalidParameterValue"));
    }
}
