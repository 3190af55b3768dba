//! The pipeline loop: read, transform, fan out, and store offsets in order as answers arrive.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use sluice_metrics::{Counter, Family};

use super::config::{DestinationKind, PipelineConfig};
use super::transform::{Outcome, Transforms};
use super::{source, start_destination};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::fanout::{dead_letter_event, FanOut, FanOutError};
use crate::lint::{self, Finding};
use crate::metrics::StreamMetrics;
use crate::sinks::Sink;

/// Events in flight unless the file says otherwise.
const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;

/// What a pipeline did, when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Records read from the source.
    pub consumed: u64,
    /// Records a filter dropped (their offsets are committed).
    pub filtered: u64,
    /// Records every chosen destination acknowledged (or the policy accepted).
    pub delivered: u64,
    /// Records that went to the dead-letter destination.
    pub dead_lettered: u64,
}

/// A pipeline, built and subscribed.
pub struct Pipeline(Mode);

enum Mode {
    AtLeastOnce(Box<AtLeastOnce>),
    ExactlyOnce(Box<super::exactly_once::ExactlyOnce>),
}

/// The at-least-once loop's state.
struct AtLeastOnce {
    name: String,
    consumer: StreamConsumer,
    transforms: Transforms,
    fanout: FanOut,
    dead_letter: Option<Sink>,
    routes: BTreeMap<String, usize>,
    max_in_flight: usize,
    events: Arc<Family<Counter>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.0 {
            Mode::AtLeastOnce(_) => "at least once",
            Mode::ExactlyOnce(_) => "exactly once",
        };
        f.debug_tuple("Pipeline").field(&mode).finish()
    }
}

/// Answer of one event: where to store its offset, and what happened.
type Answer = (String, i32, i64, Result<Done, Error>);

enum Done {
    Filtered,
    Delivered { dead_lettered: bool },
}

impl Pipeline {
    /// Checks `config` (the linter's errors refuse it), starts its destinations and
    /// subscribes its consumer.
    pub async fn start(
        config: &PipelineConfig,
        metrics: &StreamMetrics,
        registry: &sluice_metrics::Registry,
    ) -> Result<(Pipeline, Vec<Finding>)> {
        config.validate()?;
        let mut findings = lint::lint_pipeline(config);
        findings.extend(check_clusters(config).await);
        let errors = lint::errors(&findings);
        if errors > 0 {
            for f in &findings {
                tracing::error!("{f}");
            }
            return Err(Error::Lint(errors));
        }
        let transforms = Transforms::compile(&config.transforms)?;
        let events = registry.counter_family(
            "sluice_stream_pipeline_events_total",
            "Source records by outcome: consumed, filtered, delivered, dead_lettered, failed.",
            &["outcome"],
        );
        let mode = if config.delivery.exactly_once {
            Mode::ExactlyOnce(Box::new(super::exactly_once::ExactlyOnce::start(
                config, transforms, events,
            )?))
        } else {
            Mode::AtLeastOnce(Box::new(AtLeastOnce::start(
                config, metrics, transforms, events,
            )?))
        };
        Ok((Pipeline(mode), findings))
    }

    /// Runs until `shutdown` resolves (then finishes what is in flight and commits) or an
    /// event cannot be placed (then commits what was delivered before it and fails).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<RunSummary> {
        match self.0 {
            Mode::AtLeastOnce(p) => p.run(shutdown).await,
            Mode::ExactlyOnce(p) => p.run(shutdown).await,
        }
    }
}

impl AtLeastOnce {
    fn start(
        config: &PipelineConfig,
        metrics: &StreamMetrics,
        transforms: Transforms,
        events: Arc<Family<Counter>>,
    ) -> Result<AtLeastOnce> {
        let sinks = config
            .destinations
            .iter()
            .map(|d| start_destination(d, metrics))
            .collect::<Result<Vec<_>>>()?;
        let dead_letter = config
            .delivery
            .dead_letter
            .as_deref()
            .map(|d| start_destination(d, metrics))
            .transpose()?;
        let routes = sinks
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name().to_owned(), i))
            .collect();
        let fanout = FanOut::new(sinks, config.delivery.policy, dead_letter.clone())?;
        let consumer = source::subscribe(&config.source.kafka)?;
        Ok(AtLeastOnce {
            name: config.name.clone().unwrap_or_else(|| "pipeline".to_owned()),
            consumer,
            transforms,
            fanout,
            dead_letter,
            routes,
            max_in_flight: config
                .delivery
                .max_in_flight
                .unwrap_or(DEFAULT_MAX_IN_FLIGHT)
                .max(1),
            events,
        })
    }

    async fn run(self, shutdown: impl Future<Output = ()>) -> Result<RunSummary> {
        let mut summary = RunSummary::default();
        let mut in_flight: FuturesOrdered<BoxFuture<'static, Answer>> = FuturesOrdered::new();
        let mut failure: Option<Error> = None;
        tokio::pin!(shutdown);
        tracing::info!(pipeline = %self.name, "pipeline running");
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(answer) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Err(e) = self.settle(answer, &mut summary) {
                        failure = Some(e);
                        break;
                    }
                }
                msg = source::next(&self.consumer, &self.name), if in_flight.len() < self.max_in_flight => {
                    let Some(msg) = msg else { continue };
                    summary.consumed += 1;
                    self.events.with(&["consumed"]).inc();
                    let (topic, partition, offset) =
                        (msg.topic().to_owned(), msg.partition(), msg.offset());
                    let event = source::event(&msg);
                    drop(msg);
                    let answer = self.dispatch(event).await;
                    in_flight.push_back(
                        answer
                            .map(move |r| (topic, partition, offset, r))
                            .boxed(),
                    );
                }
            }
        }
        // Drain: every accepted event gets its answer before offsets are committed.
        while let Some(answer) = in_flight.next().await {
            if failure.is_none() {
                if let Err(e) = self.settle(answer, &mut summary) {
                    failure = Some(e);
                }
            }
        }
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing stored since the last commit is also a "failure" here.
            tracing::debug!(pipeline = %self.name, error = %e, "final commit");
        }
        tracing::info!(pipeline = %self.name, ?summary, "pipeline stopped");
        match failure {
            Some(e) => Err(e),
            None => Ok(summary),
        }
    }

    /// Transforms `event` and hands it to the fan-out (waiting while a destination's buffer
    /// is full), answering with the future of its outcome.
    async fn dispatch(&self, event: Event) -> BoxFuture<'static, Result<Done, Error>> {
        match self.transforms.apply(event.clone()) {
            Ok(Outcome::Dropped) => async { Ok(Done::Filtered) }.boxed(),
            Ok(Outcome::Send(event, targets)) => {
                let delivery = match targets {
                    None => self.fanout.enqueue(event).await,
                    Some(names) => {
                        let idx: Vec<usize> = names
                            .iter()
                            .filter_map(|n| self.routes.get(n).copied())
                            .collect();
                        self.fanout.enqueue_to(event, &idx).await
                    }
                };
                async move {
                    match delivery.await {
                        Ok(report) => Ok(Done::Delivered {
                            dead_lettered: !report.dead_lettered.is_empty(),
                        }),
                        Err(e) => Err(Error::from(e)),
                    }
                }
                .boxed()
            }
            Err(e) => {
                let failure = e.delivery_error();
                match &self.dead_letter {
                    Some(dlq) => {
                        let wait = dlq.enqueue(dead_letter_event(&event, &failure)).await;
                        async move {
                            wait.await
                                .map(|_| Done::Delivered {
                                    dead_lettered: true,
                                })
                                .map_err(Error::from)
                        }
                        .boxed()
                    }
                    None => async move {
                        Err(Error::from(FanOutError {
                            policy: crate::fanout::Policy::All,
                            failures: vec![failure],
                            dead_letter: None,
                            delivered: Vec::new(),
                        }))
                    }
                    .boxed(),
                }
            }
        }
    }

    /// Records an answer (in source order): stores its offset, or fails the pipeline.
    fn settle(
        &self,
        (topic, partition, offset, result): Answer,
        summary: &mut RunSummary,
    ) -> Result<()> {
        match result {
            Ok(done) => {
                match done {
                    Done::Filtered => {
                        summary.filtered += 1;
                        self.events.with(&["filtered"]).inc();
                    }
                    Done::Delivered { dead_lettered } => {
                        summary.delivered += 1;
                        self.events.with(&["delivered"]).inc();
                        if dead_lettered {
                            summary.dead_lettered += 1;
                            self.events.with(&["dead_lettered"]).inc();
                        }
                    }
                }
                // After a rebalance the partition may be gone; its new owner re-reads from
                // the last commit (a duplicate, never a loss).
                if let Err(e) = self.consumer.store_offset(&topic, partition, offset) {
                    tracing::debug!(%topic, partition, offset, error = %e, "offset not stored");
                }
                Ok(())
            }
            Err(e) => {
                self.events.with(&["failed"]).inc();
                tracing::error!(pipeline = %self.name, %topic, partition, offset, error = %e, "event not delivered; stopping before its offset");
                Err(e)
            }
        }
    }
}

/// The acks of each Kafka destination against its topic's `min.insync.replicas`, when the
/// cluster answers within a few seconds (an unreachable cluster is the producer's problem
/// to report, not the linter's).
async fn check_clusters(config: &PipelineConfig) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in config
        .destinations
        .iter()
        .chain(config.delivery.dead_letter.as_deref())
    {
        let Ok(DestinationKind::Kafka(k)) = d.kind() else {
            continue;
        };
        let props = d.kafka_properties();
        let mut client = ClientConfig::new();
        // librdkafka's admin client is a producer handle: the producer's properties fit.
        for (key, v) in &props {
            client.set(key, v);
        }
        let Ok(admin) = client.create::<AdminClient<DefaultClientContext>>() else {
            continue;
        };
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
        let spec = ResourceSpecifier::Topic(&k.topic);
        let answer = tokio::time::timeout(
            Duration::from_secs(6),
            admin.describe_configs([&spec], &opts),
        )
        .await;
        let min_isr = match answer {
            Ok(Ok(results)) => results
                .into_iter()
                .flatten()
                .flat_map(|r| r.entries.into_iter())
                .find(|e| e.name == "min.insync.replicas")
                .and_then(|e| e.value)
                .and_then(|v| v.parse::<i64>().ok()),
            _ => None,
        };
        if let Some(f) =
            min_isr.and_then(|m| lint::lint_acks_against_cluster(&d.name, &props, &k.topic, m))
        {
            out.push(f);
        }
    }
    out
}
