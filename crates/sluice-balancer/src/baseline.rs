//! A greedy baseline to compare proposals against, and the balance statistics both are judged
//! by. The baseline repeatedly moves the largest replica that fits from the fullest broker (by
//! disk) to the emptiest one that does not hold the partition, ignoring racks and every other
//! goal — what an operator scripting `kafka-reassign-partitions.sh` by hand would do.

use serde::Serialize;

use crate::goals::{Goal, GoalKind, GoalSettings, Metric};
use crate::model::ClusterModel;
use crate::state::{Action, State};

/// How evenly load is spread.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Balance {
    /// Standard deviation of replica counts over the brokers, relative to their mean.
    pub replica_spread: f64,
    /// The same for leader counts.
    pub leader_spread: f64,
    /// The same for disk utilization.
    pub disk_spread: f64,
    /// Largest disk utilization over the mean.
    pub disk_peak: f64,
    /// The same spread for CPU utilization.
    pub cpu_spread: f64,
    /// Partitions with more replicas on one rack than rack awareness allows.
    pub rack_violations: f64,
}

/// The balance of `state` (over the brokers that are not being removed).
pub fn balance(state: &State<'_>) -> Balance {
    let model = state.model();
    let brokers: Vec<u32> = (0..model.brokers.len() as u32)
        .filter(|&b| !model.brokers[b as usize].excluded)
        .collect();
    let spread = |f: &dyn Fn(u32) -> f64| {
        let values: Vec<f64> = brokers.iter().map(|&b| f(b)).collect();
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let peak = values.iter().cloned().fold(0.0, f64::max);
        if mean > 0.0 {
            (var.sqrt() / mean, peak / mean)
        } else {
            (0.0, 0.0)
        }
    };
    // Utilization where the capacity is known, else the raw load.
    let utilization = |b: u32, metric: Metric| {
        let used = metric.of(state.broker(b));
        metric
            .capacity(&model.brokers[b as usize])
            .map_or(used, |c| used / c)
    };
    let (disk_spread, disk_peak) = spread(&|b| utilization(b, Metric::Disk));
    Balance {
        replica_spread: spread(&|b| state.broker(b).replicas).0,
        leader_spread: spread(&|b| state.broker(b).leaders).0,
        disk_spread,
        disk_peak,
        cpu_spread: spread(&|b| utilization(b, Metric::Cpu)).0,
        rack_violations: Goal::prepare(GoalKind::RackAwareGoal, state, &GoalSettings::default())
            .score(state),
    }
}

/// The greedy baseline's assignment of `model`, with how many replicas it moved.
pub fn greedy(model: &ClusterModel) -> (State<'_>, usize) {
    let mut state = State::new(model);
    let mut moves = 0;
    let eligible: Vec<u32> = (0..model.brokers.len() as u32)
        .filter(|&b| !model.brokers[b as usize].excluded)
        .collect();
    // Bounded: every move lowers the fullest broker; stop when no move helps.
    for _ in 0..model.partitions.len().saturating_mul(4) {
        let util = |s: &State<'_>, b: u32| {
            let used = s.broker(b).disk;
            model.brokers[b as usize]
                .capacity
                .disk_bytes
                .map_or(used, |c| used / c)
        };
        let (Some(&full), Some(&empty)) = (
            eligible
                .iter()
                .max_by(|&&x, &&y| util(&state, x).total_cmp(&util(&state, y)).then(y.cmp(&x))),
            eligible
                .iter()
                .min_by(|&&x, &&y| util(&state, x).total_cmp(&util(&state, y)).then(x.cmp(&y))),
        ) else {
            break;
        };
        let gap = state.broker(full).disk - state.broker(empty).disk;
        // The largest replica smaller than half the gap: it narrows the gap without flipping it.
        let candidate = state
            .partitions_on(full)
            .filter(|&p| state.slot_of(p, empty).is_none())
            .map(|p| (model.partitions[p as usize].load.disk_bytes, p))
            .filter(|(size, _)| *size > 0.0 && *size <= gap / 2.0)
            .max_by(|x, y| x.0.total_cmp(&y.0).then(y.1.cmp(&x.1)));
        let Some((_, p)) = candidate else {
            break;
        };
        state.apply(&Action::Move {
            partition: p,
            from: full,
            to: empty,
            to_dir: crate::goals::emptiest_dir(&state, empty),
        });
        moves += 1;
    }
    (state, moves)
}
