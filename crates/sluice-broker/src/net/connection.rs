//! One client connection: reads pipelined requests, starts them in arrival order and writes
//! their responses back in the same order.
//!
//! Ordering matters for idempotent producers: the appends of pipelined Produce requests must
//! happen in arrival order, yet an `acks=-1` request waiting for its fsync must not hold back
//! the appends behind it (that is what lets them share one fsync). Handlers therefore append
//! synchronously before their first `.await`, and this loop polls every new request once, right
//! when it is read, before reading the next; the still-pending ones are then driven together by
//! a [`FuturesOrdered`], which yields results in request order.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use futures::stream::FuturesOrdered;
use futures::FutureExt;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use super::frame::{self, FrameError};
use super::listener::Listener;
use crate::auth::KafkaPrincipal;
use crate::handlers::{self, DispatchError, RequestContext};
use crate::state::Broker;

/// Requests of one connection that may be in progress at once.
const MAX_IN_FLIGHT: usize = 32;
/// Minimum free space kept in the read buffer before each read.
const READ_CHUNK: usize = 64 * 1024;

/// What a started request resolves to: an encoded response, nothing (acks=0), or a reason to
/// close the connection.
type Outcome = Result<Option<BytesMut>, DispatchError>;
/// A started request.
type Pending = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Who is on the other end of a connection and which listener it came in on.
#[derive(Debug, Clone)]
pub struct Session {
    /// The listener the connection arrived on.
    pub listener: Arc<Listener>,
    /// The authenticated principal (`User:ANONYMOUS` without a client certificate).
    pub principal: Arc<KafkaPrincipal>,
}

/// Serves one connection until the client closes it, it misbehaves, or the broker shuts down
/// (then requests already read are still answered). On SSL listeners the TLS handshake comes
/// first; a failed handshake or an unmappable certificate closes the connection.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    listener: Arc<Listener>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "could not set TCP_NODELAY");
    }
    let Some(tls) = &listener.tls else {
        let session = Session {
            principal: crate::auth::principal::anonymous_shared(),
            listener,
        };
        let (rd, wr) = stream.into_split();
        return pipeline(rd, wr, peer, broker, session, shutdown).await;
    };
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream));
    let stream = match handshake.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            info!(%peer, listener = %listener.name, error = %e, "TLS handshake failed; closing connection");
            return;
        }
        Err(_) => {
            info!(%peer, listener = %listener.name, "TLS handshake timed out; closing connection");
            return;
        }
    };
    let principal = match super::tls::peer_principal(stream.get_ref().1, &listener.mapper) {
        Ok(principal) => Arc::new(principal),
        Err(e) => {
            warn!(%peer, listener = %listener.name, error = %e, "client authentication failed; closing connection");
            return;
        }
    };
    debug!(%peer, %principal, "TLS client authenticated");
    let session = Session {
        listener,
        principal,
    };
    let (rd, wr) = tokio::io::split(stream);
    pipeline(rd, wr, peer, broker, session, shutdown).await;
}

/// The request loop of an established (plaintext or TLS) connection.
async fn pipeline<R, W>(
    mut rd: R,
    wr: W,
    peer: SocketAddr,
    broker: Arc<Broker>,
    session: Session,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut wr = BufWriter::with_capacity(READ_CHUNK, wr);
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut inflight: FuturesOrdered<Pending> = FuturesOrdered::new();
    let max = broker.config.socket_request_max_bytes;
    let mut reading = !*shutdown.borrow();
    loop {
        while reading && inflight.len() < MAX_IN_FLIGHT {
            match frame::take_frame(&mut rbuf, max) {
                Ok(Some(frame)) => match start_session_request(&broker, &session, peer, frame) {
                    Ok(mut request) => match futures::poll!(request.as_mut()) {
                        Poll::Ready(outcome) => {
                            // A request refused while decoding ends the connection: start
                            // nothing after it.
                            reading &= outcome.is_ok();
                            inflight.push_back(Box::pin(futures::future::ready(outcome)));
                        }
                        Poll::Pending => inflight.push_back(request),
                    },
                    Err(e) => {
                        warn!(%peer, reason = %e, "closing connection");
                        reading = false;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    warn!(%peer, reason = %e, "closing connection");
                    reading = false;
                }
            }
        }
        if !reading && inflight.is_empty() {
            break;
        }
        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
            rbuf.reserve(READ_CHUNK);
        }
        tokio::select! {
            outcome = inflight.next(), if !inflight.is_empty() => {
                let Some(outcome) = outcome else { continue };
                let mut keep_open = write_outcome(&mut wr, peer, outcome).await;
                // Batch every response that is already complete into one flush.
                while keep_open {
                    match inflight.next().now_or_never() {
                        Some(Some(outcome)) => keep_open = write_outcome(&mut wr, peer, outcome).await,
                        _ => break,
                    }
                }
                if let Err(e) = wr.flush().await {
                    debug!(%peer, error = %e, "write failed; closing connection");
                    return;
                }
                if !keep_open {
                    return;
                }
            }
            read = rd.read_buf(&mut rbuf), if reading && inflight.len() < MAX_IN_FLIGHT => {
                match read {
                    Ok(0) => {
                        // Kafka clients never half-close: EOF means gone. Requests in flight
                        // are dropped (appends already happened; long polls stop waiting).
                        if !rbuf.is_empty() {
                            debug!(%peer, bytes = rbuf.len(), "connection closed in the middle of a request");
                        }
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        debug!(%peer, error = %e, "read failed; closing connection");
                        return;
                    }
                }
            }
            _ = shutdown.changed(), if reading => {
                reading = false;
            }
        }
    }
    let _ = wr.shutdown().await;
}

/// Writes one outcome; returns false if the connection must be closed.
async fn write_outcome<W: tokio::io::AsyncWrite + Unpin>(
    wr: &mut W,
    peer: SocketAddr,
    outcome: Outcome,
) -> bool {
    match outcome {
        Ok(None) => true,
        Ok(Some(response)) => {
            let Ok(len) = i32::try_from(response.len()) else {
                warn!(%peer, bytes = response.len(), "response larger than 2 GiB; closing connection");
                return false;
            };
            let written = async {
                wr.write_all(&len.to_be_bytes()).await?;
                wr.write_all(&response).await
            };
            match written.await {
                Ok(()) => true,
                Err(e) => {
                    debug!(%peer, error = %e, "write failed; closing connection");
                    false
                }
            }
        }
        Err(e) => {
            match &e {
                DispatchError::Encode { .. } => {
                    warn!(%peer, reason = %e, "bug: response could not be encoded; closing connection")
                }
                _ => info!(%peer, reason = %e, "closing connection"),
            }
            false
        }
    }
}

/// Decodes a frame's header and returns the request as a future that has not been polled yet,
/// as if it came from an anonymous client on the default PLAINTEXT listener (tests, tools).
pub fn start_request(
    broker: &Arc<Broker>,
    peer: SocketAddr,
    frame: Bytes,
) -> Result<Pending, FrameError> {
    let listener = Arc::new(Listener {
        name: super::listener::DEFAULT_LISTENER.to_owned(),
        local_addr: broker.config.listen,
        advertised: broker.advertised(),
        tls: None,
        mapper: Arc::default(),
    });
    let session = Session {
        listener,
        principal: crate::auth::principal::anonymous_shared(),
    };
    start_session_request(broker, &session, peer, frame)
}

/// Decodes a frame's header and returns the request of `session` as a future that has not
/// been polled yet.
pub fn start_session_request(
    broker: &Arc<Broker>,
    session: &Session,
    peer: SocketAddr,
    mut frame: Bytes,
) -> Result<Pending, FrameError> {
    let (key, version, correlation_id) = frame::peek_fixed_header(&frame)?;
    if let Some(response) =
        handlers::api_versions::unsupported_version_response(key, version, correlation_id)
    {
        // Answered before decoding the rest: a newer client's header may not decode here.
        return Ok(Box::pin(futures::future::ready(response.map(Some))));
    }
    let (_api, header) = frame::decode_header(&mut frame)?;
    let ctx = RequestContext {
        broker: broker.clone(),
        header,
        peer,
        principal: session.principal.clone(),
        listener: session.listener.clone(),
    };
    Ok(Box::pin(
        async move { handlers::dispatch(&ctx, frame).await },
    ))
}
