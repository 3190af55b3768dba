//! The Sluice broker: a single-node server that speaks the Kafka wire protocol.
//!
//! Layout (see `ARCHITECTURE.md`):
//! - [`net`]: listeners, size-prefixed framing, per-connection request pipeline;
//! - [`handlers`]: one file per Kafka API key, plus the dispatch table that also drives
//!   ApiVersions;
//! - [`meta`]: topics, partitions and their configs, persisted under the data directory;
//! - [`partition`]: a partition's log plus the waiters parked on it (long-poll fetches);
//! - [`durability`]: the group-commit flusher that makes `acks=-1` produce durable;
//! - [`group`]: the consumer group coordinator;
//! - [`server`]: starting and stopping a broker.

pub mod auth;
pub mod config;
pub mod durability;
pub mod failpoint;
pub mod group;
pub mod handlers;
pub mod memory;
pub mod meta;
pub mod net;
pub mod partition;
pub mod server;
pub mod state;
pub mod state_log;
pub mod txn;

pub use config::BrokerConfig;
pub use server::{start, BrokerHandle, ShutdownError, StartError};
pub use state::Broker;

/// Milliseconds since the Unix epoch by the broker's clock (Kafka timestamps, `LogAppendTime`).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
