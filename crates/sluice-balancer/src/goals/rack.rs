//! Rack awareness (hard): a partition's replicas on distinct racks, or — with fewer racks than
//! replicas — at most `ceil(replicas / racks)` on any rack. A broker without a rack counts as a
//! rack of its own.

use std::collections::HashMap;

use super::{Goal, Violation};
use crate::search::{brokers_by, find_first, moves_to};
use crate::state::{Action, State};

/// The rack-awareness goal.
#[derive(Debug, Clone)]
pub struct RackAware {
    /// Rack number of each broker.
    rack_of: Vec<u32>,
    /// Racks of brokers that may hold replicas.
    racks: usize,
}

impl RackAware {
    pub(crate) fn new(state: &State<'_>) -> Self {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let rack_of: Vec<u32> = state
            .model()
            .brokers
            .iter()
            .map(|b| {
                let name = b
                    .rack
                    .clone()
                    .unwrap_or_else(|| format!("\0broker-{}", b.id));
                let next = ids.len() as u32;
                *ids.entry(name).or_insert(next)
            })
            .collect();
        let racks = state
            .model()
            .brokers
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.excluded)
            .map(|(i, _)| rack_of[i])
            .collect::<std::collections::HashSet<_>>()
            .len();
        RackAware { rack_of, racks }
    }

    fn max_per_rack(&self, replicas: usize) -> usize {
        replicas.div_ceil(self.racks.max(1))
    }

    fn on_rack(&self, state: &State<'_>, p: u32, rack: u32) -> usize {
        state
            .replicas(p)
            .iter()
            .filter(|r| self.rack_of[r.broker as usize] == rack)
            .count()
    }

    fn violated(&self, state: &State<'_>, p: u32) -> bool {
        let replicas = state.replicas(p);
        let max = self.max_per_rack(replicas.len());
        replicas
            .iter()
            .any(|r| self.on_rack(state, p, self.rack_of[r.broker as usize]) > max)
    }

    pub(crate) fn score(&self, state: &State<'_>) -> f64 {
        (0..state.model().partitions.len() as u32)
            .filter(|&p| self.violated(state, p))
            .count() as f64
    }

    /// Accepts a move to another rack only if that rack holds fewer of the partition's
    /// replicas than the one it leaves: the spread over racks never gets worse, so no rack is
    /// emptied of a partition it held (with fewer racks than replicas, the cap alone would allow
    /// A,B,C,A to become A,A,B,B).
    pub(crate) fn accepts(&self, state: &State<'_>, action: &Action) -> bool {
        // A swap moves two partitions, each spread on its own.
        action
            .broker_moves()
            .all(|(p, from, to)| self.move_keeps_spread(state, p, from, to))
    }

    fn move_keeps_spread(&self, state: &State<'_>, p: u32, from: u32, to: u32) -> bool {
        let (rf, rt) = (self.rack_of[from as usize], self.rack_of[to as usize]);
        rf == rt || self.on_rack(state, p, rt) < self.on_rack(state, p, rf)
    }

    pub(crate) fn optimize(&self, state: &mut State<'_>, prior: &[Goal]) {
        for p in 0..state.model().partitions.len() as u32 {
            if !self.violated(state, p) {
                continue;
            }
            let max = self.max_per_rack(state.replicas(p).len());
            // Followers first, so leadership stays where it is when it can.
            let crowded: Vec<u32> = state
                .replicas(p)
                .iter()
                .rev()
                .map(|r| r.broker)
                .filter(|&b| self.on_rack(state, p, self.rack_of[b as usize]) > max)
                .collect();
            for from in crowded {
                if self.on_rack(state, p, self.rack_of[from as usize]) <= max {
                    continue;
                }
                let dests = brokers_by(state, |d| state.broker(d).replicas);
                let found = find_first(state, prior, moves_to(state, p, from, &dests), |s, a| {
                    matches!(a, Action::Move { to, .. }
                        if self.on_rack(s, p, self.rack_of[*to as usize]) < max)
                });
                if let Some(action) = found {
                    state.apply(&action);
                }
            }
        }
    }

    pub(crate) fn violations(&self, state: &State<'_>) -> Vec<Violation> {
        let model = state.model();
        (0..model.partitions.len() as u32)
            .filter(|&p| self.violated(state, p))
            .take(20)
            .map(|p| {
                let brokers: Vec<i32> = state
                    .replicas(p)
                    .iter()
                    .map(|r| model.brokers[r.broker as usize].id)
                    .collect();
                Violation {
                    broker: None,
                    reason: format!(
                        "{} has replicas on brokers {brokers:?}, more than {} on one rack, and no broker on another rack can take one without breaking a higher-priority goal ({} racks)",
                        model.partition_name(&model.partitions[p as usize]),
                        self.max_per_rack(brokers.len()),
                        self.racks
                    ),
                }
            })
            .collect()
    }
}
