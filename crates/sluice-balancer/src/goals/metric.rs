//! The per-broker quantities the capacity and distribution goals watch.

use serde::{Deserialize, Serialize};

use crate::model::Broker;
use crate::state::{BrokerLoad, State};

/// One per-broker quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    /// Replica count.
    Replicas,
    /// Leader count.
    Leaders,
    /// Disk bytes.
    Disk,
    /// Inbound bytes per second.
    NetworkIn,
    /// Outbound bytes per second.
    NetworkOut,
    /// Bytes per second produced to the broker's leaders.
    LeaderBytesIn,
    /// CPU cores busy.
    Cpu,
}

impl Metric {
    /// The metric's value in `load`.
    pub fn of(self, load: &BrokerLoad) -> f64 {
        match self {
            Metric::Replicas => load.replicas,
            Metric::Leaders => load.leaders,
            Metric::Disk => load.disk,
            Metric::NetworkIn => load.network_in,
            Metric::NetworkOut => load.network_out,
            Metric::LeaderBytesIn => load.leader_bytes_in,
            Metric::Cpu => load.cpu,
        }
    }

    /// The broker's capacity for this metric, if it is a resource with a known capacity.
    pub fn capacity(self, broker: &Broker) -> Option<f64> {
        let c = &broker.capacity;
        match self {
            Metric::Disk => c.disk_bytes,
            Metric::NetworkIn => c.network_in,
            Metric::NetworkOut => c.network_out,
            Metric::Cpu => c.cpu_cores,
            Metric::Replicas | Metric::Leaders | Metric::LeaderBytesIn => None,
        }
        .filter(|c| *c > 0.0)
    }

    /// True if leadership changes move this metric (so leader moves are tried first).
    pub fn follows_leadership(self) -> bool {
        matches!(
            self,
            Metric::Leaders | Metric::NetworkOut | Metric::LeaderBytesIn | Metric::Cpu
        )
    }

    /// True for counts (compared in whole numbers).
    pub fn is_count(self) -> bool {
        matches!(self, Metric::Replicas | Metric::Leaders)
    }
}

/// How a metric is compared across brokers: as utilization (value / capacity) when every
/// broker that may hold replicas has a capacity for it, else as the raw value.
#[derive(Debug, Clone)]
pub(crate) struct Scale {
    metric: Metric,
    /// Divisor per broker (1.0 when comparing raw values).
    divisors: Vec<f64>,
}

impl Scale {
    /// The scale of `metric` in `state`'s model.
    pub(crate) fn new(metric: Metric, state: &State<'_>) -> Self {
        let brokers = &state.model().brokers;
        let all_known = brokers
            .iter()
            .filter(|b| !b.excluded)
            .all(|b| metric.capacity(b).is_some());
        Scale {
            metric,
            divisors: brokers
                .iter()
                .map(|b| {
                    if all_known {
                        metric.capacity(b).unwrap_or(1.0)
                    } else {
                        1.0
                    }
                })
                .collect(),
        }
    }

    /// The metric.
    pub(crate) fn metric(&self) -> Metric {
        self.metric
    }

    /// Broker `b`'s scaled value with `load`.
    pub(crate) fn value(&self, b: u32, load: &BrokerLoad) -> f64 {
        self.metric.of(load) / self.divisors[b as usize]
    }

    /// The metric's own amount that makes `scaled` on broker `b`.
    pub(crate) fn unscaled(&self, b: u32, scaled: f64) -> f64 {
        scaled * self.divisors[b as usize]
    }

    /// Broker `b`'s scaled value now.
    pub(crate) fn now(&self, state: &State<'_>, b: u32) -> f64 {
        self.value(b, state.broker(b))
    }

    /// Broker `b`'s scaled value after adding `added` and removing `removed`.
    pub(crate) fn after(
        &self,
        state: &State<'_>,
        b: u32,
        added: &BrokerLoad,
        removed: &BrokerLoad,
    ) -> f64 {
        let metric = self.metric;
        (metric.of(state.broker(b)) + metric.of(added) - metric.of(removed))
            / self.divisors[b as usize]
    }

    /// The average over the brokers that may hold replicas: total load over total divisor.
    pub(crate) fn average(&self, state: &State<'_>) -> f64 {
        let brokers = &state.model().brokers;
        let (mut total, mut divisor) = (0.0, 0.0);
        for (b, broker) in brokers.iter().enumerate() {
            total += self.metric.of(state.broker(b as u32));
            if !broker.excluded {
                divisor += self.divisors[b];
            }
        }
        if divisor > 0.0 {
            total / divisor
        } else {
            0.0
        }
    }
}
