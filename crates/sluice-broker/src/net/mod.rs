//! The Kafka listener: accepts connections and runs one pipeline per connection.
//!
//! - [`frame`]: size-prefixed framing and panic-free header decoding;
//! - [`connection`]: the per-connection request pipeline (ordered starts, ordered responses);
//! - [`sasl`]: SASL authentication of connections on SASL listeners (and KIP-368 expiry);
//! - [`writer`]: responses onto the socket, fetched records by `sendfile` where possible.

pub mod connection;
pub mod frame;
pub mod limits;
pub mod listener;
pub mod sasl;
pub mod tls;
pub mod writer;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::state::Broker;

/// Accepts connections until `shutdown` turns true, then waits for every connection to answer
/// the requests it already read. `limits` (shared by all listeners) caps the open connections.
pub async fn accept_loop(
    listener: TcpListener,
    info: Arc<listener::Listener>,
    broker: Arc<Broker>,
    limits: Arc<limits::ConnectionLimits>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match limits.admit(peer.ip()) {
                    Ok(permit) => {
                        debug!(%peer, "connection accepted");
                        broker.metrics.connection_accepted();
                        let serve = connection::serve(stream, peer, broker.clone(), info.clone(), shutdown.clone());
                        connections.spawn(async move {
                            serve.await;
                            drop(permit);
                        });
                    }
                    Err(refused) => {
                        // Closed at once: the client sees the connection drop and retries later.
                        debug!(%peer, listener = %info.name, "connection refused: {refused}");
                        drop(stream);
                    }
                },
                Err(e) => {
                    // Usually EMFILE; back off briefly instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}
