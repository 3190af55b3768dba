//! Goals between the log directories of one broker: no directory above `capacity_threshold`
//! of its size (hard), and the directories of a broker within `balance_threshold` of their
//! average use (soft). Optimized with moves between directories (AlterReplicaLogDirs); the
//! hard goal also moves a replica to another broker when a broker's directories cannot help
//! each other.
//!
//! The distribution band follows the broker's total: replicas moving between brokers change
//! it, so it is computed from the state each time, not fixed when the goal is prepared.

use super::{Goal, GoalKind, GoalSettings, Violation};
use crate::search::{apply_first, brokers_by, moves_to, slack, EPS};
use crate::state::{Action, State};

/// One intra-broker goal.
#[derive(Debug, Clone)]
pub struct IntraBrokerGoal {
    pub(crate) kind: GoalKind,
    /// Per broker per dir: its size (1.0 each when any size of the broker is unknown).
    sizes: Vec<Vec<f64>>,
    /// Capacity goal: per broker per dir, the limit in bytes (infinite when unknown).
    limits: Vec<Vec<f64>>,
    /// Distribution goal: how far above (and below) the broker's average ratio a dir may be.
    threshold: f64,
}

/// One dir's band: `(lower, upper)` in bytes.
type Band = (f64, f64);

impl IntraBrokerGoal {
    fn new(kind: GoalKind, state: &State<'_>, settings: &GoalSettings) -> Self {
        let brokers = &state.model().brokers;
        let sizes = brokers
            .iter()
            .map(|b| {
                if b.log_dirs
                    .iter()
                    .all(|d| d.capacity_bytes.is_some_and(|c| c > 0.0))
                {
                    b.log_dirs
                        .iter()
                        .map(|d| d.capacity_bytes.unwrap_or(1.0))
                        .collect()
                } else {
                    vec![1.0; b.log_dirs.len()]
                }
            })
            .collect();
        let limits = brokers
            .iter()
            .map(|b| {
                b.log_dirs
                    .iter()
                    .map(|d| {
                        d.capacity_bytes
                            .filter(|c| *c > 0.0)
                            .map_or(f64::INFINITY, |c| c * settings.capacity_threshold)
                    })
                    .collect()
            })
            .collect();
        IntraBrokerGoal {
            kind,
            sizes,
            limits,
            threshold: settings.balance_threshold.max(1.0),
        }
    }

    pub(crate) fn capacity(state: &State<'_>, settings: &GoalSettings) -> Self {
        Self::new(GoalKind::IntraBrokerDiskCapacityGoal, state, settings)
    }

    pub(crate) fn distribution(state: &State<'_>, settings: &GoalSettings) -> Self {
        Self::new(
            GoalKind::IntraBrokerDiskUsageDistributionGoal,
            state,
            settings,
        )
    }

    fn is_capacity(&self) -> bool {
        self.kind == GoalKind::IntraBrokerDiskCapacityGoal
    }

    /// The band of dir `d` of broker `b` if the broker's total changed by `delta` bytes.
    fn band(&self, state: &State<'_>, b: u32, d: u16, delta: f64) -> Band {
        let (b, d) = (b as usize, usize::from(d));
        if self.is_capacity() {
            return (0.0, self.limits[b][d]);
        }
        let total_size: f64 = self.sizes[b].iter().sum();
        let ratio = (state.broker(b as u32).disk + delta) / total_size.max(EPS);
        let size = self.sizes[b][d];
        (
            ratio * (2.0 - self.threshold).max(0.0) * size,
            ratio * self.threshold * size,
        )
    }

    /// How far `used` is outside `band` (0 inside); the capacity goal ignores the lower end.
    fn outside(&self, used: f64, (lower, upper): Band) -> f64 {
        let over = (used - upper - slack(upper)).max(0.0);
        if self.is_capacity() {
            over
        } else {
            over + (lower - slack(lower) - used).max(0.0)
        }
    }

    fn dirs(&self, b: u32) -> u16 {
        self.sizes[b as usize].len() as u16
    }

    pub(crate) fn score(&self, state: &State<'_>) -> f64 {
        let mut total = 0.0;
        for b in 0..self.sizes.len() as u32 {
            for d in 0..self.dirs(b) {
                let band = self.band(state, b, d, 0.0);
                let scale = if band.1.is_finite() && band.1 > 0.0 {
                    band.1
                } else {
                    1.0
                };
                total += self.outside(state.dir_disk(b, d), band) / scale;
            }
        }
        total
    }

    /// The directories an action changes: `(broker, dir, bytes added, broker total change)`.
    fn changes(state: &State<'_>, action: &Action) -> Option<[(u32, u16, f64, f64); 2]> {
        let (partition, from, from_dir, to, to_dir) = match *action {
            Action::Move {
                partition,
                from,
                to,
                to_dir,
            } => {
                let from_dir = state.replica_on(partition, from)?.log_dir;
                (partition, from, from_dir, to, to_dir)
            }
            Action::Dir {
                partition,
                broker,
                to_dir,
            } => {
                let from_dir = state.replica_on(partition, broker)?.log_dir;
                (partition, broker, from_dir, broker, to_dir)
            }
            Action::Swap {
                partition,
                from,
                other,
                to,
            } => {
                // Each replica takes the other's directory: one net change on each broker.
                let out_dir = state.replica_on(partition, from)?.log_dir;
                let back_dir = state.replica_on(other, to)?.log_dir;
                let disk = |p: u32| state.model().partitions[p as usize].load.disk_bytes;
                let delta = disk(partition) - disk(other);
                return Some([
                    (from, out_dir, -delta, -delta),
                    (to, back_dir, delta, delta),
                ]);
            }
            Action::Lead { .. } => return None,
        };
        let disk = state.model().partitions[partition as usize].load.disk_bytes;
        let moved = if from == to { 0.0 } else { disk };
        Some([(from, from_dir, -disk, -moved), (to, to_dir, disk, moved)])
    }

    /// Accepts unless a directory ends up further outside its band than before. A move
    /// between brokers shifts the band of every directory of both, so all of them are checked.
    pub(crate) fn accepts(&self, state: &State<'_>, action: &Action) -> bool {
        let Some(changes) = Self::changes(state, action) else {
            return true;
        };
        changes.iter().all(|&(b, changed, _, total)| {
            (0..self.dirs(b)).all(|d| {
                let added: f64 = changes
                    .iter()
                    .filter(|c| c.0 == b && c.1 == d)
                    .map(|c| c.2)
                    .sum();
                if added == 0.0 && (total == 0.0 || self.is_capacity()) && d != changed {
                    return true;
                }
                let before = state.dir_disk(b, d);
                let was = self.outside(before, self.band(state, b, d, 0.0));
                let will = self.outside(before + added, self.band(state, b, d, total));
                will <= was + slack(was)
            })
        })
    }

    /// The optimizing goal's own test: the receiving directory ends up within its band.
    fn within(&self, state: &State<'_>, action: &Action) -> bool {
        let Some([_, (b, d, added, total)]) = Self::changes(state, action) else {
            return false;
        };
        let (_, upper) = self.band(state, b, d, total);
        state.dir_disk(b, d) + added <= upper + slack(upper)
    }

    pub(crate) fn optimize(&self, state: &mut State<'_>, prior: &[Goal]) {
        for b in 0..self.sizes.len() as u32 {
            let dirs = self.dirs(b);
            if dirs < 2 && !self.is_capacity() {
                continue;
            }
            for d in 0..dirs {
                let over = |state: &State<'_>| {
                    let (_, upper) = self.band(state, b, d, 0.0);
                    state.dir_disk(b, d) > upper + slack(upper)
                };
                if !over(state) {
                    continue;
                }
                // Largest replicas first: fewest moves.
                let mut here: Vec<(f64, u32)> = state
                    .partitions_on(b)
                    .filter(|&p| {
                        state
                            .slot_of(p, b)
                            .is_some_and(|s| state.replicas(p)[s].log_dir == d)
                    })
                    .map(|p| (state.model().partitions[p as usize].load.disk_bytes, p))
                    .collect();
                here.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
                for (_, p) in here {
                    if !over(state) {
                        break;
                    }
                    let mut targets: Vec<u16> = (0..dirs).filter(|&t| t != d).collect();
                    targets.sort_by(|&x, &y| {
                        let room = |t: u16| self.band(state, b, t, 0.0).1 - state.dir_disk(b, t);
                        room(y).total_cmp(&room(x)).then(x.cmp(&y))
                    });
                    let mut actions: Vec<Action> = targets
                        .into_iter()
                        .map(|to_dir| Action::Dir {
                            partition: p,
                            broker: b,
                            to_dir,
                        })
                        .collect();
                    // A full broker's directories cannot help each other: only then is a
                    // replica moved to another broker, the least full first.
                    if self.is_capacity() {
                        let dests = brokers_by(state, |x| state.broker(x).disk);
                        actions.extend(moves_to(state, p, b, &dests));
                    }
                    apply_first(state, prior, actions, |s, a| self.within(s, a));
                }
            }
        }
    }

    pub(crate) fn violations(&self, state: &State<'_>) -> Vec<Violation> {
        let model = state.model();
        let mut out = Vec::new();
        for b in 0..self.sizes.len() as u32 {
            for d in 0..self.dirs(b) {
                let used = state.dir_disk(b, d);
                let band = self.band(state, b, d, 0.0);
                if self.outside(used, band) > 0.0 {
                    let broker = &model.brokers[b as usize];
                    out.push(Violation {
                        broker: Some(broker.id),
                        reason: format!(
                            "log directory {} of broker {} holds {used:.0} bytes, over its limit of {:.0}, and neither its other directories nor other brokers can take enough",
                            broker.log_dirs[usize::from(d)].path, broker.id, band.1
                        ),
                    });
                }
            }
        }
        out
    }
}
