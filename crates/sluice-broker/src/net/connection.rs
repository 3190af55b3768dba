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
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::frame::{self, FrameError};
use super::listener::Listener;
use super::sasl::{SaslConnection, Verdict};
use super::writer::{ResponseWriter, Socket};
use crate::auth::KafkaPrincipal;
use crate::handlers::response::Response;
use crate::handlers::{self, DispatchError, RequestContext};
use crate::memory::Reservation;
use crate::quota::QuotaKind;
use crate::request::ConnectionShared;
use crate::state::Broker;

/// Requests of one connection that may be in progress at once.
const MAX_IN_FLIGHT: usize = 32;
/// Most bytes taken from the socket per read while a request is arriving.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes read (and reserved from the request budget) between requests: small, since idle
/// connections are many.
const FIRST_READ: usize = 4 * 1024;
/// A request announcing at most this many bytes gets a buffer for all of it once its size
/// prefix is in, so it is read into one allocation instead of being copied each time the buffer
/// grows (that copy was 8% of the broker's CPU producing at full speed). Larger ones grow as
/// their bytes arrive. The memory budget still counts only bytes read plus the next read, so a
/// stalled prefix holds no more of it than before.
const WHOLE_FRAME_MAX: usize = 4 * 1024 * 1024;
/// Most bytes one read takes while the rest of a request of known size arrives.
const FRAME_READ_MAX: usize = 256 * 1024;

/// What a started request resolves to: an encoded response, nothing (acks=0), or a reason to
/// close the connection.
pub type Outcome = Result<Option<Response>, DispatchError>;

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Who is on the other end of a connection and which listener it came in on.
#[derive(Debug, Clone)]
pub struct Session {
    /// The listener the connection arrived on.
    pub listener: Arc<Listener>,
    /// The authenticated principal (`User:ANONYMOUS` without a client certificate).
    pub principal: Arc<KafkaPrincipal>,
    /// What its requests share with the connection (quota mutes).
    pub shared: Arc<ConnectionShared>,
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
            shared: Arc::default(),
        };
        let (rd, wr) = stream.into_split();
        return pipeline(rd, wr, peer, broker, session, shutdown).await;
    };
    let sasl = listener.sasl;
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
    // On SASL_SSL the principal comes from SASL; a client certificate is only checked.
    let principal = match super::tls::peer_principal(stream.get_ref().1, &listener.mapper) {
        Ok(_) if sasl => Arc::new(KafkaPrincipal::anonymous()),
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
        shared: Arc::default(),
    };
    let (rd, wr) = tokio::io::split(stream);
    pipeline(rd, wr, peer, broker, session, shutdown).await;
}

/// The request loop of an established (plaintext or TLS) connection.
///
/// Bounds on what one client can hold: at most [`MAX_IN_FLIGHT`] requests; every byte read is
/// first reserved from the broker-wide request memory budget (`queued.max.request.bytes`;
/// reading pauses while it is spent), and started requests keep their bytes of it until
/// answered; a request must keep arriving (`request_read_timeout`) and an idle connection is
/// closed after `connections_max_idle`.
async fn pipeline<R, W>(
    mut rd: R,
    wr: W,
    peer: SocketAddr,
    broker: Arc<Broker>,
    session: Session,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    W: Socket,
{
    let mut wr = ResponseWriter::new(wr, broker.fetch_memory.clone());
    let mut sasl = session.listener.sasl.then(SaslConnection::new);
    let mut rbuf = BytesMut::new();
    let mut inflight: FuturesOrdered<Pending> = FuturesOrdered::new();
    let config = &broker.config;
    let max = config.socket_request_max_bytes;
    let budget = broker.request_memory.clone();
    // Budget held for the bytes buffered of a large request, and a wait for more of it.
    let mut held = Reservation::default();
    let mut waiting: Option<Pin<Box<dyn Future<Output = Reservation> + Send>>> = None;
    let mut last_activity = Instant::now();
    let mut reading = !*shutdown.borrow();
    loop {
        while reading && inflight.len() < MAX_IN_FLIGHT && session.shared.muted_until().is_none() {
            let max = sasl.as_ref().map_or(max, |s| s.max_frame(max));
            match frame::take_frame(&mut rbuf, max) {
                Ok(Some(frame)) => {
                    // The request keeps its bytes of the budget until it is answered.
                    let reservation = held.split(frame.len() + 4);
                    match start_session_request(&broker, &session, sasl.as_mut(), peer, frame) {
                        Ok(Started { mut request, last }) => match futures::poll!(request.as_mut())
                        {
                            Poll::Ready(outcome) => {
                                // A request refused while decoding, or a failed
                                // authentication, ends the connection: start nothing after it.
                                reading &= outcome.is_ok() && !last;
                                inflight.push_back(Box::pin(futures::future::ready(outcome)));
                            }
                            Poll::Pending => {
                                reading &= !last;
                                inflight.push_back(Box::pin(async move {
                                    let outcome = request.await;
                                    drop(reservation);
                                    outcome
                                }))
                            }
                        },
                        Err(Refused::Frame(e)) => {
                            warn!(%peer, reason = %e, "closing connection");
                            reading = false;
                        }
                        Err(Refused::Sasl(reason)) => {
                            info!(%peer, %reason, "closing connection");
                            reading = false;
                        }
                    }
                }
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
        // Every buffered byte, and the next read, is covered by the broker's request budget
        // before reading: between requests only a small read is reserved, so idle connections
        // cost little of it.
        let (read_size, capacity) = match frame::announced_size(&rbuf) {
            Some(size) if size + 4 <= WHOLE_FRAME_MAX => {
                let rest = (size + 4).saturating_sub(rbuf.len()).max(1);
                (rest.min(FRAME_READ_MAX), rest)
            }
            _ if rbuf.is_empty() => (FIRST_READ, FIRST_READ),
            _ => (READ_CHUNK, READ_CHUNK),
        };
        if reading && waiting.is_none() {
            let want = (rbuf.len() + read_size).saturating_sub(held.bytes());
            if want > 0 {
                match budget.try_reserve(want) {
                    Some(more) => held.merge(more),
                    None => {
                        let budget = budget.clone();
                        waiting = Some(Box::pin(async move { budget.reserve(want).await }));
                    }
                }
            }
        }
        if rbuf.capacity() - rbuf.len() < capacity {
            rbuf.reserve(capacity);
        }
        // A started request must keep arriving; an idle connection is closed after a while.
        let patience = if waiting.is_some() {
            // Waiting on the broker's own budget is no fault of the client's.
            None
        } else if !rbuf.is_empty() {
            Some(config.request_read_timeout)
        } else if inflight.is_empty() {
            Some(config.connections_max_idle)
        } else {
            None
        };
        let deadline = patience.map(|p| last_activity + p);
        // A throttled client (quota) gets no new request read until its throttle ends.
        let muted = session.shared.muted_until();
        let mut socket = (&mut rd).take(read_size as u64);
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
                last_activity = Instant::now();
            }
            more = async { Some(waiting.as_mut()?.await) }, if waiting.is_some() => {
                waiting = None;
                if let Some(more) = more {
                    held.merge(more);
                }
                // The client's patience is counted from when it could send again.
                last_activity = Instant::now();
            }
            () = sleep_until_some(muted), if reading && muted.is_some() => {
                // The throttle is over; the client's patience starts again.
                last_activity = Instant::now();
            }
            read = socket.read_buf(&mut rbuf),
                if reading && inflight.len() < MAX_IN_FLIGHT && waiting.is_none() && muted.is_none() => {
                match read {
                    Ok(0) => {
                        // Kafka clients never half-close: EOF means gone. Requests in flight
                        // are dropped (appends already happened; long polls stop waiting).
                        if !rbuf.is_empty() {
                            debug!(%peer, bytes = rbuf.len(), "connection closed in the middle of a request");
                        }
                        return;
                    }
                    Ok(_) => last_activity = Instant::now(),
                    Err(e) => {
                        debug!(%peer, error = %e, "read failed; closing connection");
                        return;
                    }
                }
            }
            () = sleep_until_some(deadline), if reading && muted.is_none() => {
                if rbuf.is_empty() {
                    debug!(%peer, "closing idle connection (connections.max.idle.ms)");
                } else {
                    info!(%peer, bytes = rbuf.len(), "closing connection: the rest of the request did not arrive in time");
                }
                return;
            }
            _ = shutdown.changed(), if reading => {
                reading = false;
            }
        }
    }
    let _ = wr.shutdown().await;
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Writes one outcome; returns false if the connection must be closed.
async fn write_outcome<W: Socket>(
    wr: &mut ResponseWriter<W>,
    peer: SocketAddr,
    outcome: Outcome,
) -> bool {
    match outcome {
        Ok(None) => true,
        Ok(Some(response)) => match wr.write(&response).await {
            Ok(()) => true,
            Err(e) => {
                debug!(%peer, error = %e, "write failed; closing connection");
                false
            }
        },
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
) -> Result<Pending, Refused> {
    let listener = Arc::new(Listener {
        name: super::listener::DEFAULT_LISTENER.to_owned(),
        local_addr: broker.config.listen,
        advertised: broker.advertised(),
        tls: None,
        sasl: false,
        mapper: Arc::default(),
    });
    let session = Session {
        listener,
        principal: crate::auth::principal::anonymous_shared(),
        shared: Arc::default(),
    };
    start_session_request(broker, &session, None, peer, frame).map(|started| started.request)
}

/// A request that has not been polled yet.
pub type Pending = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A request started from a frame.
pub struct Started {
    /// The request, not polled yet.
    pub request: Pending,
    /// Nothing may follow it: the connection closes once it is answered.
    pub last: bool,
}

/// Why a frame closes its connection instead of starting a request.
#[derive(Debug)]
pub enum Refused {
    /// The frame or its header is malformed.
    Frame(FrameError),
    /// SASL authentication refused it (before authentication, or after the session expired).
    Sasl(String),
}

/// Decodes a frame's header and returns the request of `session` as a future that has not
/// been polled yet. On a SASL listener `sasl` authenticates the connection first: the
/// exchange's own requests are answered here, and the others run as its principal.
pub fn start_session_request(
    broker: &Arc<Broker>,
    session: &Session,
    sasl: Option<&mut SaslConnection>,
    peer: SocketAddr,
    mut frame: Bytes,
) -> Result<Started, Refused> {
    let ready = |outcome: Outcome, last| Started {
        request: Box::pin(futures::future::ready(outcome)),
        last,
    };
    let principal = match sasl.map(|s| s.on_frame(&broker.sasl, &frame)) {
        None => session.principal.clone(),
        Some(Verdict::Dispatch(principal)) => principal,
        Some(Verdict::Answer { response, close }) => return Ok(ready(Ok(Some(response)), close)),
        Some(Verdict::Close(reason)) => return Err(Refused::Sasl(reason)),
    };
    let (key, version, correlation_id) =
        frame::peek_fixed_header(&frame).map_err(Refused::Frame)?;
    if let Some(response) =
        handlers::api_versions::unsupported_version_response(key, version, correlation_id)
    {
        // Answered before decoding the rest: a newer client's header may not decode here.
        return Ok(ready(
            response.map(|r| Some(Response::from_bytes(r))),
            false,
        ));
    }
    let (_api, header) = frame::decode_header(&mut frame).map_err(Refused::Frame)?;
    let ctx = RequestContext {
        broker: broker.clone(),
        header,
        peer,
        principal,
        listener: session.listener.clone(),
        connection: session.shared.clone(),
    };
    // One span per request for traces (DEBUG under the `sluice_trace` target, which only the
    // tracing layer takes: no layer asks for it unless tracing is on, and then the fields are
    // formatted only for it).
    let span = tracing::debug_span!(
        target: "sluice_trace",
        "kafka.request",
        otel.name = ?ApiName(key),
        otel.kind = "server",
        messaging.system = "kafka",
        kafka.api_version = version,
        kafka.correlation_id = correlation_id,
        kafka.client_id = ctx.header.client_id.as_deref().unwrap_or(""),
        client.address = %peer.ip(),
        kafka.principal = %ctx.principal,
    );
    Ok(Started {
        request: Box::pin(async move {
            // The time spent running the handler counts against `request_percentage`.
            let arrived = std::time::Instant::now();
            let dispatch = handlers::dispatch(&ctx, frame);
            let mut handling = std::pin::pin!(tracing::Instrument::instrument(dispatch, span));
            let mut spent = std::time::Duration::ZERO;
            let outcome = std::future::poll_fn(|cx| {
                let started = std::time::Instant::now();
                let polled = handling.as_mut().poll(cx);
                spent += started.elapsed();
                polled
            })
            .await;
            ctx.record_quota(QuotaKind::Request, spent.as_secs_f64());
            ctx.broker.metrics.request(key, arrived.elapsed());
            outcome
        }),
        last: false,
    })
}

/// An API's name in traces (`Produce`), or its number when this broker does not know it.
struct ApiName(i16);

impl std::fmt::Debug for ApiName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match ApiKey::try_from(self.0) {
            Ok(api) => write!(f, "{api:?}"),
            Err(_) => write!(f, "api {}", self.0),
        }
    }
}
