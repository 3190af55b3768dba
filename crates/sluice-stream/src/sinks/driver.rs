//! The one driver every destination runs on: a bounded buffer (bytes, so a slow destination
//! pushes back on senders instead of growing memory), batches within the service's limits,
//! several requests in flight, and per-record retries with backoff until the event's delivery
//! timeout. Every accepted event ends in exactly one answer to its sender: acknowledged or
//! failed — never dropped.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{BatchLimits, DeliveryError, Failure, Receipt, Service};
use crate::event::Event;
use crate::metrics::{DestinationMetrics, StreamMetrics};

/// How a destination buffers, batches and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOptions {
    /// How long a batch waits for more events before it is sent.
    pub linger: Duration,
    /// Records per request (capped by the service's own limit).
    pub max_records: Option<usize>,
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Bytes of events buffered (waiting, in flight or being retried) before senders wait.
    pub buffer_bytes: usize,
    /// Attempts per event before it fails (≥ 1).
    pub max_attempts: u32,
    /// Time from acceptance after which an event is no longer retried.
    pub delivery_timeout: Duration,
    /// First retry delay; doubles per attempt up to `max_backoff`.
    pub backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Keep the order of events across retries: one request in flight, and while a record
    /// waits for its retry no newer one is sent.
    pub ordered: bool,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            linger: Duration::from_millis(5),
            max_records: None,
            max_in_flight: 4,
            buffer_bytes: 32 << 20,
            max_attempts: 10,
            delivery_timeout: Duration::from_secs(120),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            ordered: false,
        }
    }
}

/// The service's check of one event, kept by the handles.
type Check = dyn Fn(&Event) -> Result<usize, Failure> + Send + Sync;

/// Bytes an event is charged beyond its own, so that many empty events are bounded too.
const OVERHEAD: usize = 64;

/// A running destination: cloneable, cheap to share between tasks.
#[derive(Clone)]
pub struct Sink {
    name: Arc<str>,
    kind: &'static str,
    tx: mpsc::UnboundedSender<Pending>,
    budget: Arc<Semaphore>,
    buffer_bytes: usize,
    check: Arc<Check>,
    delivery_timeout: Duration,
    metrics: DestinationMetrics,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

struct Pending {
    event: Event,
    attempts: u32,
    deadline: Instant,
    not_before: Option<Instant>,
    done: oneshot::Sender<Result<Receipt, DeliveryError>>,
    _permit: OwnedSemaphorePermit,
    /// Bytes charged to the buffer.
    charged: usize,
    /// Bytes in a request, as the service counts them.
    size: usize,
    /// Must go in a request of its own: a request it was in failed as a whole.
    solo: bool,
}

/// The answer to one accepted event, once the destination has acknowledged or failed it.
pub struct Delivery(DeliveryState);

enum DeliveryState {
    Done(Option<Result<Receipt, DeliveryError>>),
    Waiting {
        rx: oneshot::Receiver<Result<Receipt, DeliveryError>>,
        destination: Arc<str>,
    },
}

impl Future for Delivery {
    type Output = Result<Receipt, DeliveryError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            DeliveryState::Done(result) => Poll::Ready(result.take().unwrap_or_else(|| {
                Err(DeliveryError {
                    destination: String::new(),
                    failure: Failure::permanent("Polled", "delivery polled after completion"),
                    attempts: 0,
                })
            })),
            DeliveryState::Waiting { rx, destination } => {
                Pin::new(rx).poll(cx).map(|r| {
                    r.unwrap_or_else(|_| {
                        // Only a panicking driver drops an answer; say so rather than hang.
                        Err(DeliveryError {
                            destination: destination.to_string(),
                            failure: Failure::permanent(
                                "Stopped",
                                "the destination's driver stopped",
                            ),
                            attempts: 0,
                        })
                    })
                })
            }
        }
    }
}

impl Sink {
    /// Starts the driver of `service` on the current tokio runtime.
    pub fn spawn<S: Service>(
        name: &str,
        service: S,
        options: SinkOptions,
        metrics: &StreamMetrics,
    ) -> Sink {
        let service = Arc::new(service);
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics = metrics.destination(name);
        let mut limits = service.limits();
        if let Some(n) = options.max_records {
            limits.max_records = limits.max_records.min(n.max(1));
        }
        let check_service = Arc::clone(&service);
        // Permits are acquired as u32 and a semaphore holds at most MAX_PERMITS.
        let buffer_bytes = options
            .buffer_bytes
            .clamp(1, (u32::MAX as usize).min(Semaphore::MAX_PERMITS));
        let sink = Sink {
            name: Arc::from(name),
            kind: service.kind(),
            tx,
            budget: Arc::new(Semaphore::new(buffer_bytes)),
            buffer_bytes,
            check: Arc::new(move |e| check_service.check(e)),
            delivery_timeout: options.delivery_timeout,
            metrics: metrics.clone(),
        };
        let driver = Driver {
            name: Arc::clone(&sink.name),
            service,
            limits,
            options,
            metrics,
            retries: VecDeque::new(),
            carry: None,
            in_flight: JoinSet::new(),
        };
        tokio::spawn(driver.run(rx));
        sink
    }

    /// The destination's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The destination's kind (`sqs`, `kafka`, …).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The destination's metrics.
    pub(crate) fn metrics(&self) -> &DestinationMetrics {
        &self.metrics
    }

    /// Accepts `event` once the buffer has room for it (back-pressure), answering with the
    /// future of its delivery. An event the service can never take fails at once.
    pub async fn enqueue(&self, event: Event) -> Delivery {
        let size = match (self.check)(&event) {
            Ok(n) => n,
            Err(failure) => return self.failed_now(failure),
        };
        let charged = (size.max(event.size()) + OVERHEAD).min(self.buffer_bytes);
        let Ok(permits) = u32::try_from(charged) else {
            return self.failed_now(Failure::permanent("TooLarge", "event over 4 GiB"));
        };
        let Ok(permit) = Arc::clone(&self.budget).acquire_many_owned(permits).await else {
            return self.failed_now(Failure::permanent("Stopped", "the destination is closed"));
        };
        let (done, rx) = oneshot::channel();
        let pending = Pending {
            event,
            attempts: 0,
            deadline: Instant::now() + self.delivery_timeout,
            not_before: None,
            done,
            _permit: permit,
            charged,
            size,
            solo: false,
        };
        self.metrics.buffered.add(1);
        self.metrics.buffered_bytes.add(charged as i64);
        if let Err(mpsc::error::SendError(p)) = self.tx.send(pending) {
            self.metrics.buffered.add(-1);
            self.metrics.buffered_bytes.add(-(p.charged as i64));
            return self.failed_now(Failure::permanent(
                "Stopped",
                "the destination's driver stopped",
            ));
        }
        Delivery(DeliveryState::Waiting {
            rx,
            destination: Arc::clone(&self.name),
        })
    }

    /// Sends `event` and waits for its delivery.
    pub async fn send(&self, event: Event) -> Result<Receipt, DeliveryError> {
        self.enqueue(event).await.await
    }

    fn failed_now(&self, failure: Failure) -> Delivery {
        self.metrics.failed(&failure.code);
        Delivery(DeliveryState::Done(Some(Err(DeliveryError {
            destination: self.name.to_string(),
            failure,
            attempts: 0,
        }))))
    }
}

type Sent = (Vec<Pending>, Result<Vec<Result<Receipt, Failure>>, Failure>);

struct Driver<S> {
    name: Arc<str>,
    service: Arc<S>,
    limits: BatchLimits,
    options: SinkOptions,
    metrics: DestinationMetrics,
    /// Records waiting for their retry, oldest first.
    retries: VecDeque<Pending>,
    /// A record taken from the channel that did not fit the last batch.
    carry: Option<Pending>,
    in_flight: JoinSet<Sent>,
}

impl<S: Service> Driver<S> {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Pending>) {
        let mut open = true;
        loop {
            while let Some(done) = self.in_flight.try_join_next() {
                self.complete(done);
            }
            let max_in_flight = if self.options.ordered {
                1
            } else {
                self.options.max_in_flight.max(1)
            };
            if self.in_flight.len() >= max_in_flight {
                if let Some(done) = self.in_flight.join_next().await {
                    self.complete(done);
                }
                continue;
            }
            let mut batch = Batch::new(self.limits);
            self.take_due_retries(&mut batch);
            // In order: nothing newer goes out while an older record waits for its retry,
            // nor beside it (the retry could fail again after the newer one succeeded).
            let hold_new = self.options.ordered && (!self.retries.is_empty() || !batch.is_empty());
            if batch.is_empty() && !hold_new {
                if let Some(p) = self.carry.take() {
                    batch.push(p);
                }
            }
            if batch.is_empty() {
                if !open
                    && self.retries.is_empty()
                    && self.in_flight.is_empty()
                    && self.carry.is_none()
                {
                    return;
                }
                let next_retry = self.retries.iter().filter_map(|p| p.not_before).min();
                tokio::select! {
                    msg = rx.recv(), if open && !hold_new => match msg {
                        Some(p) => batch.push(p),
                        None => open = false,
                    },
                    _ = sleep_until_opt(next_retry), if next_retry.is_some() => {}
                    done = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                        if let Some(done) = done {
                            self.complete(done);
                        }
                    }
                }
                if batch.is_empty() {
                    continue;
                }
            }
            if !hold_new {
                open = self.fill(&mut batch, &mut rx, open).await;
            }
            self.dispatch(batch);
        }
    }

    /// Adds waiting events until the batch is full or the linger time is up; false when the
    /// channel closed.
    async fn fill(
        &mut self,
        batch: &mut Batch,
        rx: &mut mpsc::UnboundedReceiver<Pending>,
        mut open: bool,
    ) -> bool {
        // A record left over from the last batch goes first, and is never replaced.
        if let Some(p) = self.carry.take() {
            if !batch.fits(&p) {
                self.carry = Some(p);
                return open;
            }
            batch.push(p);
        }
        let deadline = Instant::now() + self.options.linger;
        while open && !batch.is_full() {
            let next = match rx.try_recv() {
                Ok(p) => Some(p),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    None
                }
                Err(mpsc::error::TryRecvError::Empty) => {
                    if self.options.linger.is_zero() {
                        break;
                    }
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(p)) => Some(p),
                        Ok(None) => {
                            open = false;
                            None
                        }
                        Err(_) => break,
                    }
                }
            };
            if let Some(p) = next {
                if !batch.fits(&p) {
                    self.carry = Some(p);
                    break;
                }
                batch.push(p);
            }
        }
        open
    }

    fn take_due_retries(&mut self, batch: &mut Batch) {
        let now = Instant::now();
        let mut keep = VecDeque::with_capacity(self.retries.len());
        while let Some(p) = self.retries.pop_front() {
            let due = p.not_before.is_none_or(|t| t <= now);
            // In order, a retry that is not due holds back the ones after it.
            let blocked = self.options.ordered && !keep.is_empty();
            if due && !blocked && batch.fits(&p) {
                batch.push(p);
            } else {
                keep.push_back(p);
            }
        }
        self.retries = keep;
    }

    fn dispatch(&mut self, batch: Batch) {
        let service = Arc::clone(&self.service);
        let metrics = self.metrics.clone();
        let records = batch.records;
        self.in_flight.spawn(async move {
            let events: Vec<Event> = records.iter().map(|p| p.event.clone()).collect();
            metrics.requests.inc();
            let started = std::time::Instant::now();
            let result = service.send(&events).await;
            metrics.latency.observe_duration(started.elapsed());
            (records, result)
        });
    }

    fn complete(&mut self, joined: Result<Sent, tokio::task::JoinError>) {
        let (records, result) = match joined {
            Ok(sent) => sent,
            Err(e) => {
                // The request's task panicked: its records are lost to us, so their senders
                // hear of it through their dropped answer channels. Say it loudly.
                tracing::error!(destination = %self.name, error = %e, "a destination request panicked");
                return;
            }
        };
        let outcomes: Vec<Result<Receipt, Failure>> = match result {
            Ok(per_record) if per_record.len() == records.len() => per_record,
            Ok(per_record) => {
                let f = Failure::transient(
                    "BadAnswer",
                    format!("{} answers for {} records", per_record.len(), records.len()),
                );
                vec![Err(f); records.len()]
            }
            Err(f) if !f.retriable && records.len() > 1 && !crate::aws::caller_error(&f.code) => {
                // One bad record can spoil a whole request (a service that validates the
                // batch before any entry): send each alone, so only the bad one fails.
                tracing::debug!(destination = %self.name, code = %f.code, records = records.len(), "request refused as a whole; isolating its records");
                for mut p in records {
                    p.solo = true;
                    p.not_before = None;
                    self.retries.push_back(p);
                }
                if self.options.ordered {
                    self.retries.make_contiguous().sort_by_key(|p| p.deadline);
                }
                return;
            }
            Err(f) => vec![Err(f); records.len()],
        };
        let now = Instant::now();
        for (mut p, outcome) in records.into_iter().zip(outcomes) {
            p.attempts += 1;
            match outcome {
                Ok(receipt) => {
                    self.metrics.sent.inc();
                    self.finish(p, Ok(receipt));
                }
                Err(failure) => {
                    let delay = backoff(&self.options, p.attempts);
                    if failure.retriable
                        && p.attempts < self.options.max_attempts
                        && now + delay < p.deadline
                    {
                        tracing::debug!(destination = %self.name, code = %failure.code, attempt = p.attempts, "retrying");
                        self.metrics.retried.inc();
                        p.not_before = Some(now + delay);
                        self.retries.push_back(p);
                    } else {
                        tracing::warn!(destination = %self.name, code = %failure.code, attempts = p.attempts, message = %failure.message, "delivery failed");
                        self.metrics.failed(&failure.code);
                        let attempts = p.attempts;
                        let destination = self.name.to_string();
                        self.finish(
                            p,
                            Err(DeliveryError {
                                destination,
                                failure,
                                attempts,
                            }),
                        );
                    }
                }
            }
        }
        if self.options.ordered {
            // Oldest first, so the order of retries is the order of acceptance.
            self.retries.make_contiguous().sort_by_key(|p| p.deadline);
        }
    }

    fn finish(&self, p: Pending, result: Result<Receipt, DeliveryError>) {
        self.metrics.buffered.add(-1);
        self.metrics.buffered_bytes.add(-(p.charged as i64));
        // A sender that stopped waiting no longer needs the answer.
        let _ = p.done.send(result);
    }
}

fn backoff(options: &SinkOptions, attempts: u32) -> Duration {
    let exp = options
        .backoff
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
    exp.min(options.max_backoff)
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

struct Batch {
    limits: BatchLimits,
    records: Vec<Pending>,
    bytes: usize,
}

impl Batch {
    fn new(limits: BatchLimits) -> Batch {
        Batch {
            limits,
            records: Vec::new(),
            bytes: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn is_full(&self) -> bool {
        self.records.len() >= self.limits.max_records
            || self.bytes >= self.limits.max_bytes
            || self.records.first().is_some_and(|p| p.solo)
    }

    /// Whether `p` may join (a lone record always may: the service checked it).
    fn fits(&self, p: &Pending) -> bool {
        self.records.is_empty()
            || !(self.is_full() || p.solo || self.bytes + p.size > self.limits.max_bytes)
    }

    fn push(&mut self, p: Pending) {
        self.bytes += p.size;
        self.records.push(p);
    }
}

#[cfg(test)]
mod tests;
