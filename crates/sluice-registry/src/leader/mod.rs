//! One writer at a time: followers forward every write to the leader over HTTP and serve reads
//! from their own copy of the state. The leader is either elected through the Kafka group
//! protocol ([`election`]) or named statically with `--leader-url`.

pub mod election;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::warn;

use crate::api::{raw, Shared};
use crate::error::RegistryError;

/// How long a forwarded request may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);

/// Header marking a forwarded request, so a request is never forwarded twice.
const FORWARDED: &str = "x-sluice-forwarded";

/// Where writes go.
#[derive(Default)]
pub enum Forwarder {
    /// This instance is the only writer.
    #[default]
    Local,
    /// A fixed leader at `host:port`.
    Static(String),
    /// Whoever the group election picked.
    Elected(Arc<election::Election>),
}

impl Forwarder {
    /// A forwarder to `leader_url` (`http://host:port`), or none when this instance leads.
    pub fn new(leader_url: Option<&str>) -> Result<Self, String> {
        match leader_url {
            None => Ok(Forwarder::Local),
            Some(url) => election::host_port(url)
                .map(Forwarder::Static)
                .ok_or_else(|| format!("leader URL '{url}' must be http://host:port with no path")),
        }
    }

    /// `host:port` to forward writes to, `None` to handle them here.
    fn target(&self) -> Result<Option<String>, RegistryError> {
        match self {
            Forwarder::Local => Ok(None),
            Forwarder::Static(hp) => Ok(Some(hp.clone())),
            Forwarder::Elected(e) => match e.view() {
                election::LeaderView::Local => Ok(None),
                election::LeaderView::Remote(hp) => Ok(Some(hp)),
                election::LeaderView::Unknown => Err(RegistryError::UnknownLeader),
            },
        }
    }
}

/// Whether a request changes state (and so must run on the leader).
fn is_write(method: &Method, path: &str) -> bool {
    match *method {
        Method::PUT | Method::DELETE => true,
        Method::POST => {
            // Lookups (`POST /subjects/{s}`) and compatibility tests only read.
            let lookup = path.starts_with("/subjects/") && !path.contains("/versions");
            !path.starts_with("/compatibility/") && !lookup
        }
        _ => false,
    }
}

/// Middleware: sends writes to the leader when this instance is a follower.
pub async fn forward_writes(State(app): State<Shared>, req: Request, next: Next) -> Response {
    if !is_write(req.method(), req.uri().path()) || req.headers().contains_key(FORWARDED) {
        return next.run(req).await;
    }
    let leader = match app.forwarder.target() {
        Ok(Some(leader)) => leader,
        Ok(None) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    // The same limit and 413 as when the request is handled here.
    let body = match crate::api::read_body(req).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match tokio::time::timeout(
        FORWARD_TIMEOUT,
        crate::http_client::exchange_with_header(
            &leader,
            method.as_str(),
            &path,
            Some((FORWARDED, "1")),
            &body,
        ),
    )
    .await
    {
        Ok(Ok((status, body))) => {
            // Read-your-writes through a follower too: answer once this instance has applied
            // what the leader wrote.
            if status.is_success() {
                if let Err(e) = app.registry.catch_up().await {
                    warn!("after forwarding {method} {path}: {e}");
                }
            }
            raw(status, body)
        }
        Ok(Err(e)) => {
            warn!(leader, "forwarding {method} {path} failed: {e}");
            RegistryError::Forwarding(format!("{e}; is the leader at {leader} running?"))
                .into_response()
        }
        Err(_) => RegistryError::Forwarding(format!("the leader at {leader} did not answer"))
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_writes() {
        assert!(is_write(&Method::POST, "/subjects/a/versions"));
        assert!(!is_write(&Method::POST, "/subjects/a"));
        assert!(!is_write(
            &Method::POST,
            "/compatibility/subjects/a/versions"
        ));
        assert!(is_write(&Method::PUT, "/config"));
        assert!(is_write(&Method::DELETE, "/subjects/a"));
        assert!(!is_write(&Method::GET, "/subjects"));
    }

    #[test]
    fn leader_url_must_be_http_host_port() {
        assert!(Forwarder::new(Some("http://127.0.0.1:8081")).is_ok());
        assert!(Forwarder::new(Some("https://x:1")).is_err());
        assert!(Forwarder::new(Some("http://x:1/path")).is_err());
    }
}
