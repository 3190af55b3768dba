//! Topic replica distribution (soft): each topic's replicas spread evenly, so that one
//! broker's loss or slowness does not hit one topic hardest. The band is Cruise Control's:
//! the average ± `(topic_balance_threshold - 1) × average`, at least 2 and at most 40 replicas.

use super::{Goal, GoalSettings};
use crate::search::{brokers_by, find_first, moves_to};
use crate::state::{Action, State};

/// Smallest and largest gap to the average allowed.
const MIN_GAP: f64 = 2.0;
const MAX_GAP: f64 = 40.0;

/// The topic distribution goal.
#[derive(Debug, Clone)]
pub struct TopicDistribution {
    lower: Vec<u32>,
    upper: Vec<u32>,
    /// Partitions per topic.
    by_topic: Vec<Vec<u32>>,
}

impl TopicDistribution {
    pub(crate) fn new(state: &State<'_>, settings: &GoalSettings) -> Self {
        let model = state.model();
        let eligible = model.brokers.iter().filter(|b| !b.excluded).count().max(1) as f64;
        let (mut lower, mut upper) = (Vec::new(), Vec::new());
        for t in 0..model.topics.len() as u32 {
            let avg = f64::from(state.topic_total(t)) / eligible;
            let gap = (avg * (settings.topic_balance_threshold - 1.0)).clamp(MIN_GAP, MAX_GAP);
            lower.push((avg - gap).floor().max(0.0) as u32);
            upper.push((avg + gap).ceil() as u32);
        }
        let mut by_topic = vec![Vec::new(); model.topics.len()];
        for (p, partition) in model.partitions.iter().enumerate() {
            by_topic[partition.topic as usize].push(p as u32);
        }
        TopicDistribution {
            lower,
            upper,
            by_topic,
        }
    }

    fn topic(state: &State<'_>, p: u32) -> u32 {
        state.model().partitions[p as usize].topic
    }

    pub(crate) fn score(&self, state: &State<'_>) -> f64 {
        let model = state.model();
        let mut total = 0.0;
        for t in 0..model.topics.len() as u32 {
            for (b, broker) in model.brokers.iter().enumerate() {
                if broker.excluded {
                    continue;
                }
                let c = state.topic_count(t, b as u32);
                total += f64::from(c.saturating_sub(self.upper[t as usize]))
                    + f64::from(self.lower[t as usize].saturating_sub(c));
            }
        }
        total
    }

    pub(crate) fn accepts(&self, state: &State<'_>, action: &Action) -> bool {
        // Within one topic a swap changes no count.
        if let Action::Swap {
            partition, other, ..
        } = *action
        {
            if Self::topic(state, partition) == Self::topic(state, other) {
                return true;
            }
        }
        action
            .broker_moves()
            .all(|(p, from, to)| self.move_accepted(state, p, from, to))
    }

    fn move_accepted(&self, state: &State<'_>, partition: u32, from: u32, to: u32) -> bool {
        let t = Self::topic(state, partition);
        let model = state.model();
        let to_ok = model.brokers[to as usize].excluded
            || state.topic_count(t, to) < self.upper[t as usize];
        let from_ok = model.brokers[from as usize].excluded
            || state.topic_count(t, from) > self.lower[t as usize];
        to_ok && from_ok
    }

    pub(crate) fn optimize(&self, state: &mut State<'_>, prior: &[Goal]) {
        let brokers = state.model().brokers.len() as u32;
        // Over the band: move the topic's replicas to brokers with the fewest of it.
        for b in 0..brokers {
            let on_b: Vec<u32> = state.partitions_on(b).collect();
            for p in on_b {
                let t = Self::topic(state, p);
                if state.topic_count(t, b) <= self.upper[t as usize] {
                    continue;
                }
                let dests = brokers_by(state, |d| f64::from(state.topic_count(t, d)));
                let found = find_first(state, prior, moves_to(state, p, b, &dests), |s, a| {
                    self.accepts(s, a)
                });
                if let Some(action) = found {
                    state.apply(&action);
                }
            }
        }
        // Under the band: take replicas of the topic from the brokers with the most of it.
        for (t, partitions) in self.by_topic.iter().enumerate() {
            let t = t as u32;
            for b in 0..brokers {
                if state.model().brokers[b as usize].excluded {
                    continue;
                }
                for &p in partitions {
                    if state.topic_count(t, b) >= self.lower[t as usize] {
                        break;
                    }
                    let Some(from) = state
                        .replicas(p)
                        .iter()
                        .map(|r| r.broker)
                        .max_by_key(|&d| (state.topic_count(t, d), std::cmp::Reverse(d)))
                    else {
                        continue;
                    };
                    let found = find_first(state, prior, moves_to(state, p, from, &[b]), |s, a| {
                        self.accepts(s, a)
                    });
                    if let Some(action) = found {
                        state.apply(&action);
                    }
                }
            }
        }
    }
}
