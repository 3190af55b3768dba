//! One send to several destinations under a declared policy. Each destination retries on its
//! own (its [`Sink`] driver); the policy decides what the caller hears:
//!
//! - [`Policy::All`]: every destination must acknowledge; otherwise the send fails with every
//!   destination's error (a pipeline then stops before committing the event's offset).
//! - [`Policy::BestEffort`]: a destination that fails for good has the event written to the
//!   dead-letter destination with the error as headers; the send fails only if that fails too.
//! - [`Policy::Fallback`]: destinations are tried in order until one acknowledges; when none
//!   does, the event goes to the dead-letter destination if there is one, else the send fails.
//!
//! Senders wait while a destination's buffer is full, so a slow destination slows the caller
//! instead of growing memory, and no event is ever dropped without an answer.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::Deserialize;

use crate::event::Event;
use crate::sinks::{DeliveryError, Receipt, Sink};

/// Headers a dead-lettered event carries besides its own.
pub mod dead_letter_headers {
    /// The destination that failed.
    pub const DESTINATION: &str = "sluice.dlq.destination";
    /// Its error code.
    pub const CODE: &str = "sluice.dlq.error.code";
    /// Its error message.
    pub const MESSAGE: &str = "sluice.dlq.error.message";
    /// Attempts made.
    pub const ATTEMPTS: &str = "sluice.dlq.attempts";
}

/// What a fan-out promises.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Every destination must acknowledge.
    #[default]
    All,
    /// Destinations may fail; failures go to the dead-letter destination.
    BestEffort,
    /// The first destination that acknowledges, in order.
    Fallback,
}

/// Where an event went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FanOutReport {
    /// Destinations that acknowledged it, with their receipts.
    pub delivered: Vec<(String, Receipt)>,
    /// Destination failures written to the dead-letter destination.
    pub dead_lettered: Vec<DeliveryError>,
}

/// An event the policy could not place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not delivered as the {policy:?} policy requires: {}", describe(.failures, .dead_letter))]
pub struct FanOutError {
    /// The policy.
    pub policy: Policy,
    /// Each failed destination's error.
    pub failures: Vec<DeliveryError>,
    /// The dead-letter destination's own failure, when it failed too.
    pub dead_letter: Option<DeliveryError>,
    /// Destinations that did acknowledge (a retry of the event duplicates there).
    pub delivered: Vec<String>,
}

fn describe(failures: &[DeliveryError], dead_letter: &Option<DeliveryError>) -> String {
    let mut s = failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if let Some(d) = dead_letter {
        s.push_str(&format!("; dead-letter destination failed too: {d}"));
    }
    s
}

/// The answer to one fanned-out event.
pub type FanOutDelivery = BoxFuture<'static, Result<FanOutReport, FanOutError>>;

/// Several destinations behind one send.
#[derive(Debug, Clone)]
pub struct FanOut {
    destinations: Arc<[Sink]>,
    policy: Policy,
    dead_letter: Option<Sink>,
}

impl FanOut {
    /// A fan-out to `destinations` (in order, for [`Policy::Fallback`]).
    ///
    /// [`Policy::BestEffort`] needs a dead-letter destination: without one a failure would
    /// have nowhere to go.
    pub fn new(
        destinations: Vec<Sink>,
        policy: Policy,
        dead_letter: Option<Sink>,
    ) -> Result<FanOut, crate::Error> {
        if destinations.is_empty() {
            return Err(crate::Error::Config(
                "a fan-out needs at least one destination".into(),
            ));
        }
        if policy == Policy::BestEffort && dead_letter.is_none() {
            return Err(crate::Error::Config(
                "the best_effort policy needs a dead_letter destination, or failed events would be lost"
                    .into(),
            ));
        }
        Ok(FanOut {
            destinations: destinations.into(),
            policy,
            dead_letter,
        })
    }

    /// The destinations, in order.
    pub fn destinations(&self) -> &[Sink] {
        &self.destinations
    }

    /// Index of the destination called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.destinations.iter().position(|s| s.name() == name)
    }

    /// Sends `event` to every destination and waits for the policy's answer.
    pub async fn send(&self, event: Event) -> Result<FanOutReport, FanOutError> {
        self.enqueue(event).await.await
    }

    /// Accepts `event` for every destination once each has room (back-pressure), answering
    /// with the future of the policy's outcome.
    pub async fn enqueue(&self, event: Event) -> FanOutDelivery {
        let all: Vec<usize> = (0..self.destinations.len()).collect();
        self.enqueue_to(event, &all).await
    }

    /// As [`FanOut::enqueue`], to the destinations at `targets` only (a route's choice).
    pub async fn enqueue_to(&self, event: Event, targets: &[usize]) -> FanOutDelivery {
        let sinks: Vec<Sink> = targets
            .iter()
            .filter_map(|&i| self.destinations.get(i).cloned())
            .collect();
        let policy = self.policy;
        let dead_letter = self.dead_letter.clone();
        if sinks.is_empty() {
            return async { Ok(FanOutReport::default()) }.boxed();
        }
        match policy {
            Policy::All | Policy::BestEffort => {
                let mut waits = Vec::with_capacity(sinks.len());
                for sink in &sinks {
                    waits.push(sink.enqueue(event.clone()).await);
                }
                async move {
                    let results = futures::future::join_all(waits).await;
                    let mut report = FanOutReport::default();
                    let mut failures = Vec::new();
                    for (sink, r) in sinks.iter().zip(results) {
                        match r {
                            Ok(receipt) => report.delivered.push((sink.name().to_owned(), receipt)),
                            Err(e) => failures.push(e),
                        }
                    }
                    if failures.is_empty() {
                        return Ok(report);
                    }
                    match (policy, dead_letter) {
                        (Policy::BestEffort, Some(dlq)) => {
                            dead_letter_all(policy, &dlq, &sinks, &event, failures, report).await
                        }
                        _ => Err(FanOutError {
                            policy,
                            failures,
                            dead_letter: None,
                            delivered: report.delivered.into_iter().map(|(n, _)| n).collect(),
                        }),
                    }
                }
                .boxed()
            }
            Policy::Fallback => {
                // The first destination is offered the event now, so its buffer pushes back.
                let first = sinks[0].enqueue(event.clone()).await;
                async move {
                    let mut failures = Vec::new();
                    let mut pending = Some(first);
                    for (i, sink) in sinks.iter().enumerate() {
                        let wait = match pending.take() {
                            Some(w) if i == 0 => w,
                            _ => sink.enqueue(event.clone()).await,
                        };
                        match wait.await {
                            Ok(receipt) => {
                                return Ok(FanOutReport {
                                    delivered: vec![(sink.name().to_owned(), receipt)],
                                    dead_lettered: Vec::new(),
                                })
                            }
                            Err(e) => failures.push(e),
                        }
                    }
                    match dead_letter {
                        Some(dlq) => {
                            dead_letter_all(
                                policy,
                                &dlq,
                                &sinks,
                                &event,
                                failures,
                                FanOutReport::default(),
                            )
                            .await
                        }
                        None => Err(FanOutError {
                            policy,
                            failures,
                            dead_letter: None,
                            delivered: Vec::new(),
                        }),
                    }
                }
                .boxed()
            }
        }
    }
}

/// Writes one dead-letter record per failure; the report on success.
async fn dead_letter_all(
    policy: Policy,
    dlq: &Sink,
    sinks: &[Sink],
    event: &Event,
    failures: Vec<DeliveryError>,
    mut report: FanOutReport,
) -> Result<FanOutReport, FanOutError> {
    for failure in &failures {
        match dlq.send(dead_letter_event(event, failure)).await {
            Ok(_) => {
                if let Some(s) = sinks.iter().find(|s| s.name() == failure.destination) {
                    s.metrics().dead_lettered.inc();
                }
            }
            Err(e) => {
                return Err(FanOutError {
                    policy,
                    failures,
                    dead_letter: Some(e),
                    delivered: report.delivered.into_iter().map(|(n, _)| n).collect(),
                })
            }
        }
    }
    report.dead_lettered = failures;
    Ok(report)
}

/// `event` with the failure as headers.
pub(crate) fn dead_letter_event(event: &Event, failure: &DeliveryError) -> Event {
    use dead_letter_headers as h;
    let mut e = event.clone();
    let mut push = |k: &str, v: String| e.headers.push((k.to_owned(), Bytes::from(v)));
    push(h::DESTINATION, failure.destination.clone());
    push(h::CODE, failure.failure.code.clone());
    push(
        h::MESSAGE,
        failure.failure.message.chars().take(1000).collect(),
    );
    push(h::ATTEMPTS, failure.attempts.to_string());
    e
}

#[cfg(test)]
mod tests;
