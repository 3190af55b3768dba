//! Who is asking: the context every handler gets with its request (the broker's shared state,
//! the decoded header, the client's address and principal, the listener it came in on), plus
//! the authorization checks made against it (in `authorize.rs`).
//!
//! It sits between the coordinators and the handlers, so that the handlers and the network
//! layer (which builds it) share it without any lower layer importing either of them.

mod authorize;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use kafka_protocol::messages::RequestHeader;

use crate::auth::KafkaPrincipal;
use crate::state::Broker;

/// What a request may know about the listener it arrived on. The network layer's listener
/// (socket, TLS acceptors, principal mapping) implements it, so handlers depend only on this.
pub trait ListenerInfo: std::fmt::Debug + Send + Sync {
    /// Listener name (`PLAINTEXT`, `SSL`, ...).
    fn name(&self) -> &str;
    /// Host and port advertised to clients of this listener (Metadata, FindCoordinator).
    fn advertised(&self) -> &(String, u16);
}

/// What a handler knows about the request it serves.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The broker's shared state.
    pub broker: Arc<Broker>,
    /// The decoded request header (api key, version, correlation id, client id).
    pub header: RequestHeader,
    /// The client's address.
    pub peer: SocketAddr,
    /// Who the client authenticated as (`User:ANONYMOUS` on plaintext listeners).
    pub principal: Arc<KafkaPrincipal>,
    /// The listener the request arrived on (its advertised address is the one to report).
    pub listener: Arc<dyn ListenerInfo>,
    /// State the request shares with its connection (quota throttling).
    pub connection: Arc<ConnectionShared>,
}

/// What the requests of one connection share with it.
#[derive(Debug, Default)]
pub struct ConnectionShared {
    /// Until when the connection reads no new request (a quota throttle, KIP-219).
    muted_until: parking_lot::Mutex<Option<Instant>>,
}

impl ConnectionShared {
    /// Stops reading requests for `throttle` from now (extending an earlier mute only).
    pub fn mute_for(&self, throttle: Duration) {
        if throttle.is_zero() {
            return;
        }
        let until = Instant::now() + throttle;
        let mut muted = self.muted_until.lock();
        if muted.is_none_or(|t| t < until) {
            *muted = Some(until);
        }
    }

    /// Until when the connection is muted, if it still is.
    pub fn muted_until(&self) -> Option<Instant> {
        let mut muted = self.muted_until.lock();
        match *muted {
            Some(t) if t > Instant::now() => Some(t),
            _ => {
                *muted = None;
                None
            }
        }
    }
}

impl RequestContext {
    /// The API version of this request.
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    /// The `(host, port)` of this broker as clients of this request's listener must reach it.
    pub fn advertised(&self) -> (String, u16) {
        self.listener.advertised().clone()
    }

    /// The client's `client.id` from the request header (empty when it sent none).
    pub fn client_id(&self) -> String {
        self.header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default()
    }

    /// Records `amount` against the client's `kind` quota, mutes the connection for the
    /// throttle that results, and returns it in milliseconds (for `throttle_time_ms`).
    pub fn record_quota(&self, kind: crate::quota::QuotaKind, amount: f64) -> i32 {
        let client_id = self.header.client_id.as_ref().map_or("", |s| s.as_str());
        let throttle = self
            .broker
            .quotas
            .record(kind, self.principal.name(), client_id, amount);
        self.connection.mute_for(throttle);
        let ms = i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX);
        self.broker.metrics.throttled(kind.key(), ms);
        ms
    }

    /// If the client still owes its `kind` quota, mutes the connection for the rest of the
    /// debt and returns it in milliseconds; zero otherwise.
    pub fn quota_debt(&self, kind: crate::quota::QuotaKind) -> i32 {
        let client_id = self.header.client_id.as_ref().map_or("", |s| s.as_str());
        let debt = self
            .broker
            .quotas
            .debt(kind, self.principal.name(), client_id);
        self.connection.mute_for(debt);
        i32::try_from(debt.as_millis()).unwrap_or(i32::MAX)
    }

    /// The client's address as Kafka reports it in DescribeGroups (`/ip`).
    pub fn client_host(&self) -> String {
        format!("/{}", self.peer.ip())
    }
}
