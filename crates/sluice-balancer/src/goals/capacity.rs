//! Hard capacity goals: no broker above `capacity_threshold` of a resource (or above
//! `max_replicas_per_broker` replicas), and nothing at all on a broker being removed.

use super::intra_broker::IntraBrokerGoal;
use super::{GoalKind, GoalSettings, Metric, Violation};
use crate::goals::Goal;
use crate::search::{
    brokers_by, brokers_over, partitions_by, shed_leadership, shed_replicas, slack, EPS,
};
use crate::state::{Action, Effects, State};

/// One capacity goal.
#[derive(Debug, Clone)]
pub struct CapacityGoal {
    pub(crate) kind: GoalKind,
    metric: Metric,
    /// Limit per broker in the metric's units (infinite when the capacity is unknown).
    limits: Vec<f64>,
    /// For disk: the same limit per log directory, so that no move overfills one.
    dirs: Option<IntraBrokerGoal>,
}

impl CapacityGoal {
    pub(crate) fn new(
        kind: GoalKind,
        metric: Metric,
        state: &State<'_>,
        settings: &GoalSettings,
    ) -> Self {
        let limits = state
            .model()
            .brokers
            .iter()
            .map(|b| {
                // A removed broker is drained by the replica count (exact), not by bytes.
                if metric == Metric::Replicas {
                    if b.excluded {
                        0.0
                    } else {
                        f64::from(settings.max_replicas_per_broker)
                    }
                } else if b.excluded {
                    f64::INFINITY
                } else {
                    metric
                        .capacity(b)
                        .map_or(f64::INFINITY, |c| c * settings.capacity_threshold)
                }
            })
            .collect();
        CapacityGoal {
            kind,
            metric,
            limits,
            dirs: (metric == Metric::Disk).then(|| IntraBrokerGoal::capacity(state, settings)),
        }
    }

    fn value(&self, state: &State<'_>, b: u32) -> f64 {
        self.metric.of(state.broker(b))
    }

    fn excess(&self, state: &State<'_>, b: u32) -> f64 {
        (self.value(state, b) - self.limits[b as usize]).max(0.0)
    }

    fn satisfied(&self, state: &State<'_>, b: u32) -> bool {
        self.excess(state, b) <= slack(self.limits[b as usize])
    }

    pub(crate) fn score(&self, state: &State<'_>) -> f64 {
        (0..self.limits.len() as u32)
            .filter(|&b| !self.satisfied(state, b))
            .map(|b| {
                let limit = self.limits[b as usize];
                self.excess(state, b) / if limit > 0.0 { limit } else { 1.0 }
            })
            .sum::<f64>()
            // An empty sum is -0.0; report 0.
            + 0.0
    }

    pub(crate) fn accepts(&self, state: &State<'_>, action: &Action) -> bool {
        self.accepts_effects(state, action, &state.effects(action))
    }

    /// [`Self::accepts`] with the action's effects computed once for all goals.
    pub(crate) fn accepts_effects(
        &self,
        state: &State<'_>,
        action: &Action,
        effects: &Effects,
    ) -> bool {
        if let (Some(dirs), Action::Move { .. } | Action::Swap { .. } | Action::Dir { .. }) =
            (&self.dirs, action)
        {
            if !dirs.accepts(state, action) {
                return false;
            }
        }
        effects.iter().all(|(b, added, removed)| {
            let before = self.value(state, *b);
            let after = before + self.metric.of(added) - self.metric.of(removed);
            after <= self.limits[*b as usize] + slack(after) || after <= before + slack(before)
        })
    }

    /// Why the goal cannot be met whatever moves: the limits of all brokers together are
    /// below the cluster's total (checked before searching for moves that cannot exist).
    pub(crate) fn infeasible(&self, state: &State<'_>) -> Option<String> {
        let total: f64 = (0..self.limits.len() as u32)
            .map(|b| self.value(state, b))
            .sum();
        let room: f64 = self.limits.iter().sum();
        (total > room + slack(room)).then(|| {
            format!(
                "the cluster holds {total:.0} of {:?} but all brokers together may hold only {room:.0}",
                self.metric
            )
        })
    }

    pub(crate) fn optimize(&self, state: &mut State<'_>, prior: &[Goal]) {
        if self.infeasible(state).is_some() {
            return;
        }
        let over = brokers_over(state, |b| {
            self.excess(state, b) - slack(self.limits[b as usize])
        });
        // By utilization; a broker of unknown capacity by its load over the mean known limit,
        // so that unknown capacities do not all rank as empty.
        let known: Vec<f64> = self
            .limits
            .iter()
            .copied()
            .filter(|l| l.is_finite() && *l > 0.0)
            .collect();
        let typical = if known.is_empty() {
            1.0
        } else {
            known.iter().sum::<f64>() / known.len() as f64
        };
        let utilization = |state: &State<'_>, d: u32| {
            let limit = self.limits[d as usize];
            self.value(state, d)
                / if limit.is_finite() {
                    limit.max(EPS)
                } else {
                    typical
                }
        };
        for b in over {
            let done = |state: &State<'_>| self.satisfied(state, b);
            let accepts = |s: &State<'_>, a: &Action| self.accepts(s, a);
            if self.metric.follows_leadership() {
                shed_leadership(state, prior, b, utilization, accepts, done);
            }
            // Largest first: fewest moves to get under the limit.
            let metric = self.metric;
            let candidates = partitions_by(state, b, |p| {
                let leader = state.leader(p) == Some(b);
                -metric.of(&state.contribution(p, leader))
            });
            let rank = |state: &State<'_>| brokers_by(state, |d| utilization(state, d));
            shed_replicas(state, prior, b, &candidates, rank, accepts, done);
        }
    }

    pub(crate) fn violations(&self, state: &State<'_>) -> Vec<Violation> {
        let model = state.model();
        // The cluster-wide shortfall first, then each broker over its limit.
        let overall = self.infeasible(state).map(|reason| Violation {
            broker: None,
            reason,
        });
        overall.into_iter().chain((0..self.limits.len() as u32)
            .filter(|&b| !self.satisfied(state, b))
            .map(|b| {
                let broker = &model.brokers[b as usize];
                let (value, limit) = (self.value(state, b), self.limits[b as usize]);
                let reason = if broker.excluded {
                    format!(
                        "broker {} is being removed but {value:.0} of its {:?} could not be moved elsewhere without breaking a higher-priority goal",
                        broker.id, self.metric
                    )
                } else {
                    format!(
                        "broker {} has {value:.0} of {:?}, over its limit of {limit:.0}, and no other broker can take enough without breaking a higher-priority goal",
                        broker.id, self.metric
                    )
                };
                Violation {
                    broker: Some(broker.id),
                    reason,
                }
            })
            )
            .collect()
    }
}
