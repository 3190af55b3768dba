//! Failover between Kafka clusters (a primary region and its standbys) behind one destination.
//!
//! Health comes from the produce path itself: when every record of a request fails with a
//! retriable error (the cluster timed out or is unreachable) and the active cluster has been
//! failing for `switch_after`, the next cluster becomes active and the driver's retry of
//! those records goes there. While away from the primary, a prober asks it for metadata every
//! second; once it has answered for `switch_back_after` without a miss (hysteresis, so a
//! flapping primary does not bounce traffic) the primary is active again.
//!
//! Order: with the `ordered` preset the driver has one request in flight, so a switch happens
//! between requests — pause, drain, switch. Records of a request that timed out may have
//! reached the old cluster anyway: duplicates are bounded by what was in flight.
//!
//! Every switch is logged, counted (`sluice_stream_failover_switches_total`), shown as
//! `sluice_stream_failover_active{destination,cluster}` and sent to [`Failover::switches`]
//! subscribers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::config::KafkaConfig;
use super::service::KafkaService;
use crate::error::Result;
use crate::event::Event;
use crate::metrics::{FailoverMetrics, StreamMetrics};
use crate::sinks::{BatchLimits, Failure, Receipt, Service};

fn default_switch_after() -> u64 {
    5_000
}

fn default_switch_back_after() -> u64 {
    30_000
}

/// Standby clusters of a Kafka destination (`failover:` under `kafka:`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FailoverConfig {
    /// Standbys in order of preference; the destination's own properties are the primary.
    pub clusters: Vec<ClusterConfig>,
    /// Milliseconds the active cluster must have been failing before traffic moves [default
    /// 5,000]; also each cluster's `message.timeout.ms` unless set, so a dead cluster is
    /// noticed within it.
    #[serde(default = "default_switch_after")]
    pub switch_after_ms: u64,
    /// Milliseconds the primary must have been healthy before traffic returns [default
    /// 30,000].
    #[serde(default = "default_switch_back_after")]
    pub switch_back_after_ms: u64,
}

/// One standby cluster.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Its name in logs and metrics (e.g. `eu-west-1`).
    pub name: String,
    /// Properties overriding the primary's (at least `bootstrap.servers`).
    pub properties: BTreeMap<String, String>,
}

/// A switch of the active cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// The destination.
    pub destination: String,
    /// The cluster traffic left.
    pub from: String,
    /// The cluster traffic goes to now.
    pub to: String,
    /// Why.
    pub reason: String,
}

struct Cluster {
    name: String,
    service: KafkaService,
}

/// What the produce path and the prober share.
struct Shared {
    destination: String,
    topic: String,
    clusters: Vec<Cluster>,
    active: AtomicUsize,
    /// When the active cluster's current run of failures began (reset by every switch).
    failing_since: Mutex<Option<Instant>>,
    probing: AtomicBool,
    switch_after: Duration,
    switch_back_after: Duration,
    switches: broadcast::Sender<Switch>,
    metrics: FailoverMetrics,
}

/// A Kafka destination over a primary and standby clusters, as a [`Service`]; clones share
/// the clusters and their state (keep one to watch [`Failover::switches`]).
#[derive(Clone)]
pub struct Failover(Arc<Shared>);

impl std::fmt::Debug for Failover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failover")
            .field("destination", &self.0.destination)
            .field("active", &self.active())
            .finish()
    }
}

impl Failover {
    /// Producers for the primary (`config`) and each standby of `failover`.
    pub fn new(
        destination: &str,
        config: KafkaConfig,
        failover: &FailoverConfig,
        metrics: &StreamMetrics,
    ) -> Result<Failover> {
        let timeout = failover.switch_after_ms.max(1000).to_string();
        let with_timeout = |mut props: BTreeMap<String, String>| {
            props
                .entry("message.timeout.ms".to_owned())
                .or_insert_with(|| timeout.clone());
            props
        };
        let mut clusters = vec![Cluster {
            name: "primary".to_owned(),
            service: KafkaService::new(KafkaConfig {
                properties: with_timeout(config.properties.clone()),
                ..config.clone()
            })?,
        }];
        for c in &failover.clusters {
            let mut props = config.properties.clone();
            props.extend(c.properties.clone());
            clusters.push(Cluster {
                name: c.name.clone(),
                service: KafkaService::new(KafkaConfig {
                    properties: with_timeout(props),
                    ..config.clone()
                })?,
            });
        }
        let metrics = metrics.failover(destination);
        metrics.set_active(
            "primary",
            &clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        );
        Ok(Failover(Arc::new(Shared {
            destination: destination.to_owned(),
            topic: config.topic,
            clusters,
            active: AtomicUsize::new(0),
            failing_since: Mutex::new(None),
            probing: AtomicBool::new(false),
            switch_after: Duration::from_millis(failover.switch_after_ms),
            switch_back_after: Duration::from_millis(failover.switch_back_after_ms),
            switches: broadcast::channel(64).0,
            metrics,
        })))
    }

    /// Every switch from now on.
    pub fn switches(&self) -> broadcast::Receiver<Switch> {
        self.0.switches.subscribe()
    }

    /// Name of the cluster taking traffic.
    pub fn active(&self) -> &str {
        &self.0.clusters[self.0.active.load(Ordering::SeqCst)].name
    }
}

impl Shared {
    fn record(self: &Arc<Self>, index: usize, started: Instant, failed: bool) {
        if index != self.active.load(Ordering::SeqCst) {
            return;
        }
        let since = {
            let mut failing = self.failing_since.lock();
            if !failed {
                *failing = None;
                return;
            }
            *failing.get_or_insert(started)
        };
        if since.elapsed() < self.switch_after || self.clusters.len() < 2 {
            return;
        }
        let next = (index + 1) % self.clusters.len();
        let reason = format!("every record failed for {:?}", since.elapsed());
        if self.switch(index, next, reason) && next != 0 {
            self.probe_primary();
        }
    }

    /// Moves traffic from `from` to `to` unless another switch came first; whether it did.
    fn switch(&self, from: usize, to: usize, reason: String) -> bool {
        // One switch at a time, so the gauge and the failure timer follow the switches' order.
        let mut failing = self.failing_since.lock();
        if from == to
            || self
                .active
                .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return false;
        }
        *failing = None;
        let event = Switch {
            destination: self.destination.clone(),
            from: self.clusters[from].name.clone(),
            to: self.clusters[to].name.clone(),
            reason,
        };
        tracing::warn!(destination = %event.destination, from = %event.from, to = %event.to, reason = %event.reason, "kafka failover: switched clusters");
        self.metrics.switched(
            &event.to,
            &self
                .clusters
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
        );
        drop(failing);
        // Nobody listening is fine: the log and the metric carry it too.
        let _ = self.switches.send(event);
        true
    }

    /// Watches the primary until it has been healthy for `switch_back_after`, then moves
    /// traffic back to it. One prober at a time.
    fn probe_primary(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let mut healthy_since: Option<Instant> = None;
                loop {
                    let current = shared.active.load(Ordering::SeqCst);
                    if current == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if !shared.clusters[0].service.probe(&shared.topic).await {
                        healthy_since = None;
                        continue;
                    }
                    let since = *healthy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= shared.switch_back_after {
                        let reason = format!("the primary answered for {:?}", since.elapsed());
                        shared.switch(current, 0, reason);
                    }
                }
                shared.probing.store(false, Ordering::SeqCst);
                // Traffic may have left the primary again between the check and the store:
                // then this prober carries on, unless another has taken over.
                if shared.active.load(Ordering::SeqCst) == 0
                    || shared.probing.swap(true, Ordering::SeqCst)
                {
                    break;
                }
            }
        });
    }
}

impl Service for Failover {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    fn limits(&self) -> BatchLimits {
        self.0.clusters[0].service.limits()
    }

    fn check(&self, event: &Event) -> Result<usize, Failure> {
        self.0.clusters[self.0.active.load(Ordering::SeqCst)]
            .service
            .check(event)
    }

    async fn send(&self, batch: &[Event]) -> Result<Vec<Result<Receipt, Failure>>, Failure> {
        let index = self.0.active.load(Ordering::SeqCst);
        let started = Instant::now();
        let result = self.0.clusters[index].service.send(batch).await;
        let failed = match &result {
            Err(f) => f.retriable,
            Ok(outcomes) => {
                !outcomes.is_empty() && outcomes.iter().all(|o| matches!(o, Err(f) if f.retriable))
            }
        };
        self.0.record(index, started, failed);
        result
    }
}
