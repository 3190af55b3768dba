//! Soft distribution goals: every broker's replica count, leader count, disk, network or
//! leader-bytes-in within `balance_threshold` of the average (utilization for resources whose
//! capacities are known, so a bigger broker carries proportionally more).

use std::collections::HashMap;

use super::metric::Scale;
use super::{Goal, GoalKind, GoalSettings, Metric};
use crate::search::{
    apply_first, brokers_by, brokers_over, find_first, moves_to, shed_leadership, shed_replicas,
    slack,
};
use crate::state::{Action, Effects, State};

/// One distribution goal with its band.
#[derive(Debug, Clone)]
pub struct DistributionGoal {
    pub(crate) kind: GoalKind,
    scale: Scale,
    average: f64,
    lower: f64,
    upper: f64,
}

impl DistributionGoal {
    pub(crate) fn new(
        kind: GoalKind,
        metric: Metric,
        state: &State<'_>,
        settings: &GoalSettings,
    ) -> Self {
        let scale = Scale::new(metric, state);
        let average = scale.average(state);
        let t = settings.balance_threshold.max(1.0);
        let (mut lower, mut upper) = (average * (2.0 - t).max(0.0), average * t);
        if metric.is_count() {
            // Whole numbers: a band narrower than one replica could never be met.
            (lower, upper) = (lower.floor(), upper.ceil());
        }
        DistributionGoal {
            kind,
            scale,
            average,
            lower,
            upper,
        }
    }

    fn eligible(state: &State<'_>, b: u32) -> bool {
        !state.model().brokers[b as usize].excluded
    }

    fn outside(&self, v: f64) -> f64 {
        (v - self.upper - slack(self.upper)).max(0.0)
            + (self.lower - slack(self.lower) - v).max(0.0)
    }

    pub(crate) fn score(&self, state: &State<'_>) -> f64 {
        let total: f64 = (0..state.model().brokers.len() as u32)
            .filter(|&b| Self::eligible(state, b))
            .map(|b| self.outside(self.scale.now(state, b)))
            .sum();
        if self.average > 0.0 {
            total / self.average
        } else {
            total
        }
    }

    /// Accepts unless a broker ends up further outside the band than before (`effects` are
    /// the action's, computed once for all goals).
    pub(crate) fn accepts_effects(&self, state: &State<'_>, effects: &Effects) -> bool {
        effects.iter().all(|(b, added, removed)| {
            if !Self::eligible(state, *b) {
                return true;
            }
            let before = self.scale.now(state, *b);
            let after = self.scale.after(state, *b, added, removed);
            let worse_above =
                after > self.upper + slack(self.upper) && after > before + slack(before);
            let worse_below =
                after < self.lower - slack(self.lower) && after < before - slack(before);
            !worse_above && !worse_below
        })
    }

    /// Keeps the band on both ends of an action: nothing pushed over the top or under the
    /// bottom (the optimizing goal's own test, stricter than [`Self::accepts`]).
    fn within(&self, state: &State<'_>, action: &Action) -> bool {
        state.effects(action).iter().all(|(b, added, removed)| {
            if !Self::eligible(state, *b) {
                return true;
            }
            let before = self.scale.now(state, *b);
            let after = self.scale.after(state, *b, added, removed);
            if after > before {
                after <= self.upper + slack(self.upper)
            } else {
                after >= self.lower - slack(self.lower)
            }
        })
    }

    fn contribution(&self, state: &State<'_>, p: u32, b: u32) -> f64 {
        let leader = state.leader(p) == Some(b);
        self.scale.metric().of(&state.contribution(p, leader))
    }

    pub(crate) fn optimize(&self, state: &mut State<'_>, prior: &[Goal]) {
        if self.average <= 0.0 {
            return;
        }
        let over = brokers_over(state, |b| {
            if Self::eligible(state, b) {
                self.scale.now(state, b) - self.upper - slack(self.upper)
            } else {
                0.0
            }
        });
        for b in over {
            self.shed(state, prior, b);
        }
        let under = brokers_over(state, |b| {
            if Self::eligible(state, b) {
                self.lower - slack(self.lower) - self.scale.now(state, b)
            } else {
                0.0
            }
        });
        let mut cache = HashMap::new();
        for b in under {
            self.fill(state, prior, b, &mut cache);
        }
    }

    /// Moves load off `b` until it is within the band: leadership first where it counts,
    /// then replicas to the least loaded brokers.
    fn shed(&self, state: &mut State<'_>, prior: &[Goal], b: u32) {
        let done = |state: &State<'_>| self.scale.now(state, b) <= self.upper + slack(self.upper);
        let within = |s: &State<'_>, a: &Action| self.within(s, a);
        if self.scale.metric().follows_leadership() {
            let rank = |state: &State<'_>, f: u32| self.scale.now(state, f);
            shed_leadership(state, prior, b, rank, within, done);
        }
        let candidates = self.candidates(state, b);
        let rank = |state: &State<'_>| brokers_by(state, |d| self.scale.now(state, d));
        shed_replicas(state, prior, b, &candidates, rank, within, done);
        if self.swaps_help(state, b) && !done(state) {
            let lows = self.partners(state, b, true);
            self.exchange(state, prior, &[b], &lows, done);
        }
    }

    /// True if swapping with broker `b` could help: not for the replica count, which a swap
    /// never changes, nor for a broker that may not receive replicas (being removed, or not
    /// among those being added).
    fn swaps_help(&self, state: &State<'_>, b: u32) -> bool {
        self.scale.metric() != Metric::Replicas && state.may_receive(b)
    }

    /// Up to [`SWAP_PARTNERS`] brokers other than `b` that may receive replicas, on the
    /// other side of the average: the least loaded ones under it for a `b` over the band
    /// (`below`), the most loaded ones over it for a `b` under the band.
    fn partners(&self, state: &State<'_>, b: u32, below: bool) -> Vec<u32> {
        let sign = if below { 1.0 } else { -1.0 };
        brokers_by(state, |d| sign * self.scale.now(state, d))
            .into_iter()
            .filter(|&d| {
                d != b
                    && state.may_receive(d)
                    && sign * (self.scale.now(state, d) - self.average) < 0.0
            })
            .take(SWAP_PARTNERS)
            .collect()
    }

    /// Swaps heavy replicas of the `highs` for light ones of the `lows` until `done`: what is
    /// left once every single move is refused, mostly by the replica-count goals above this
    /// one, which a swap leaves as they are. For each heavy replica (heaviest first) the light
    /// ones tried are those that bring the difference within the room both brokers have, the
    /// largest difference first, a few per low broker; the swap itself must keep both brokers
    /// within the band and be accepted by every higher goal.
    fn exchange(
        &self,
        state: &mut State<'_>,
        prior: &[Goal],
        highs: &[u32],
        lows: &[u32],
        done: impl Fn(&State<'_>) -> bool,
    ) {
        if lows.is_empty() {
            return;
        }
        // Each low broker's replicas by contribution, lightest first. Replicas leave and arrive
        // as swaps are made; one that has left is skipped, one that has arrived is not offered.
        let light: Vec<(u32, Vec<(f64, u32)>)> = lows
            .iter()
            .map(|&low| {
                let mut ps: Vec<(f64, u32)> = state
                    .partitions_on(low)
                    .map(|q| (self.contribution(state, q, low), q))
                    .collect();
                ps.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                (low, ps)
            })
            .collect();
        let within = |s: &State<'_>, a: &Action| self.within(s, a);
        for &high in highs {
            let mut fruitless = 0;
            for p in self.candidates(state, high) {
                if done(state) {
                    return;
                }
                if fruitless == MAX_FRUITLESS {
                    break;
                }
                if state.slot_of(p, high).is_none() {
                    continue;
                }
                let view: &State<'_> = state;
                let heavy = self.contribution(view, p, high);
                let swaps = light.iter().flat_map(|(low, ps)| {
                    // What `low` may gain and `high` may lose, in the metric's own units.
                    let gain = self.upper + slack(self.upper) - self.scale.now(view, *low);
                    let loss = self.scale.now(view, high) - self.lower + slack(self.lower);
                    let room = self
                        .scale
                        .unscaled(*low, gain)
                        .min(self.scale.unscaled(high, loss))
                        .max(0.0);
                    // Lightest q with heavy - q <= room, upwards: the largest fitting difference.
                    let first = ps.partition_point(|&(c, _)| c < heavy - room);
                    ps[first..]
                        .iter()
                        .take_while(move |&&(c, _)| c < heavy)
                        .filter(move |&&(_, q)| {
                            view.slot_of(q, *low).is_some()
                                && view.slot_of(q, high).is_none()
                                && view.slot_of(p, *low).is_none()
                        })
                        .take(SWAP_TRIES)
                        .map(move |&(_, q)| Action::Swap {
                            partition: p,
                            from: high,
                            other: q,
                            to: *low,
                        })
                });
                match find_first(view, prior, swaps, within) {
                    Some(action) => {
                        state.apply(&action);
                        fruitless = 0;
                    }
                    None => fruitless += 1,
                }
            }
        }
    }

    /// The partitions worth moving off `donor`, best first: for counts the smallest replicas
    /// (fewest bytes), for resources the largest contributions. Replicas that add nothing to
    /// the metric (e.g. followers for leader counts) are left out.
    fn candidates(&self, state: &State<'_>, donor: u32) -> Vec<u32> {
        let metric = self.scale.metric();
        let mut ps: Vec<(f64, u32)> = state
            .partitions_on(donor)
            .filter_map(|p| {
                let c = self.contribution(state, p, donor);
                (c > 0.0).then(|| {
                    let key = if metric.is_count() {
                        state.model().partitions[p as usize].load.disk_bytes
                    } else {
                        -c
                    };
                    (key, p)
                })
            })
            .collect();
        ps.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        ps.into_iter().map(|(_, p)| p).collect()
    }

    /// Moves load onto `b` until it is within the band, from the most loaded brokers first.
    /// `cache` keeps each donor's candidates for the whole pass: sorting them again for every
    /// receiving broker would cost donors × replicas per receiver. A partition that has left
    /// a donor since is skipped.
    fn fill(
        &self,
        state: &mut State<'_>,
        prior: &[Goal],
        b: u32,
        cache: &mut HashMap<u32, Vec<u32>>,
    ) {
        let metric = self.scale.metric();
        let done = |state: &State<'_>| self.scale.now(state, b) >= self.lower - slack(self.lower);
        let donors = brokers_by(state, |d| -self.scale.now(state, d));
        for donor in donors {
            let spent = |state: &State<'_>| {
                self.scale.now(state, donor) <= self.average + slack(self.average)
            };
            if done(state) || spent(state) {
                return;
            }
            let candidates = cache
                .entry(donor)
                .or_insert_with(|| self.candidates(state, donor));
            let mut fruitless = 0;
            for &p in candidates.iter() {
                if done(state) || spent(state) || fruitless == MAX_FRUITLESS {
                    break;
                }
                if state.slot_of(p, donor).is_none() {
                    continue;
                }
                let mut actions = Vec::with_capacity(2);
                if metric.follows_leadership()
                    && state.leader(p) == Some(donor)
                    && state.slot_of(p, b).is_some()
                {
                    actions.push(Action::Lead {
                        partition: p,
                        to: b,
                    });
                }
                actions.extend(moves_to(state, p, donor, &[b]));
                if apply_first(state, prior, actions, |s, a| self.within(s, a)) {
                    fruitless = 0;
                } else {
                    fruitless += 1;
                }
            }
        }
        if self.swaps_help(state, b) && !done(state) {
            let highs = self.partners(state, b, false);
            self.exchange(state, prior, &highs, &[b], done);
        }
    }
}

/// Brokers a broker outside the band may swap replicas with.
const SWAP_PARTNERS: usize = 8;

/// Light replicas of one partner tried per heavy replica.
const SWAP_TRIES: usize = 4;

/// Candidates in a row that found no acceptable move (or swap) before giving up on a donor:
/// they come best first, so past this many the rest would rarely succeed either, and trying
/// them all costs replicas × brokers × goals checks on the largest clusters.
const MAX_FRUITLESS: usize = 256;
