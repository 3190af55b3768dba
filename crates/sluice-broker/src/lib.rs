//! The Sluice broker: a single-node server that speaks the Kafka wire protocol.
//!
//! Layout (see `ARCHITECTURE.md`):
//! - [`net`]: listeners, size-prefixed framing, per-connection request pipeline;
//! - [`handlers`]: one file per Kafka API key, plus the dispatch table that also drives
//!   ApiVersions;
//! - [`request`]: the context a handler gets (who is asking, over which listener) and the
//!   authorization checks made against it;
//! - [`meta`]: topics, partitions and their configs, persisted under the data directory;
//! - [`partition`]: a partition's log plus the waiters parked on it (long-poll fetches);
//! - [`durability`]: the group-commit flusher that makes `acks=-1` produce durable;
//! - [`group`], [`txn`]: the consumer group and transaction coordinators, persisted through
//!   [`state_log`];
//! - [`auth`]: principals, ACLs and the authorizer;
//! - [`server`]: starting and stopping a broker.
//!
//! # Layers
//!
//! Modules import only from their own layer or the layers below it, lowest first:
//!
//! 1. settings and utilities: [`config`] (every settings type, the coordinators' and TLS
//!    listeners' included), [`memory`], [`failpoint`], [`rate`], [`metrics`], [`now_ms`];
//! 2. storage: [`partition`], [`durability`], [`meta`] (the topic catalogue that owns the
//!    partitions), [`state_log`];
//! 3. coordinators: [`group`], [`txn`], [`auth`], [`fetch_sessions`], [`quota`];
//! 4. the shared state and the request context: [`state`], [`request`];
//! 5. [`handlers`] (one file per Kafka API);
//! 6. [`net`] (listeners, connections, TLS), which builds each request's context;
//! 7. [`server`].
//!
//! Where a lower layer needs something only a higher one has, it declares a trait that the
//! higher layer implements: [`txn::MarkerWriter`] (implemented by [`Broker`]) and
//! [`request::ListenerInfo`] (implemented by the network layer's listener).
//! `scripts/check-layers.sh` checks the order.

pub mod auth;
pub mod config;
pub mod durability;
pub mod failpoint;
pub mod fetch_sessions;
pub mod group;
pub mod handlers;
pub mod memory;
pub mod meta;
pub mod metrics;
pub mod net;
pub mod partition;
pub mod quota;
pub mod rate;
pub mod request;
pub mod server;
pub mod state;
pub mod state_log;
pub mod txn;

#[cfg(test)]
mod test_support;

pub use config::BrokerConfig;
pub use server::{start, BrokerHandle, ShutdownError, StartError};
pub use state::Broker;

/// Milliseconds since the Unix epoch by the broker's clock (Kafka timestamps, `LogAppendTime`).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
