//! CPU per replica. The admin protocol tells nothing about CPU, so it comes from outside: how
//! many cores each broker keeps busy (e.g. Prometheus' `rate(process_cpu_seconds_total[5m])`).
//! Each broker's CPU is shared among its replicas by the bytes they move, weighted as Cruise
//! Control's static model weighs them — bytes produced to a leader 0.7, bytes a leader sends
//! 0.15, bytes a follower replicates 0.15 — so that a replica's CPU moves with it and with its
//! leadership.

use std::collections::BTreeMap;

use super::{ClusterModel, Load};

/// Weight of the bytes produced to a leader.
const LEADER_BYTES_IN: f64 = 0.7;
/// Weight of the bytes a leader sends (consumers and followers).
const LEADER_BYTES_OUT: f64 = 0.15;
/// Weight of the bytes a follower replicates.
const FOLLOWER_BYTES_IN: f64 = 0.15;

/// The weighted bytes of one replica of a partition with `load` and `followers` followers.
fn weight(load: &Load, followers: usize, leader: bool) -> f64 {
    if leader {
        LEADER_BYTES_IN * load.bytes_in
            + LEADER_BYTES_OUT * (load.bytes_out + load.bytes_in * followers as f64)
    } else {
        FOLLOWER_BYTES_IN * load.bytes_in
    }
}

/// Weighted bytes per broker (index), with the current leaders.
fn weighted_per_broker(model: &ClusterModel) -> Vec<f64> {
    let mut weighted = vec![0.0; model.brokers.len()];
    for p in &model.partitions {
        let followers = p.replicas.len().saturating_sub(1);
        let leader = p.leader.or(p.replicas.first().map(|r| r.broker));
        for r in &p.replicas {
            weighted[r.broker as usize] += weight(&p.load, followers, leader == Some(r.broker));
        }
    }
    weighted
}

/// Sets every partition's `cpu_leader` and `cpu_follower` from the cores each broker keeps busy
/// (`usage`, by node id). A broker without a measurement, or whose replicas move no bytes, is
/// given the cluster's average cores per weighted byte. Without any measurement nothing is
/// set: the CPU goals then have nothing to balance.
pub fn assign(model: &mut ClusterModel, usage: &BTreeMap<i32, f64>) {
    let weighted = weighted_per_broker(model);
    let measured: Vec<Option<f64>> = model
        .brokers
        .iter()
        .map(|b| {
            usage
                .get(&b.id)
                .copied()
                .filter(|c| c.is_finite() && *c >= 0.0)
        })
        .collect();
    let (cores, bytes) = measured
        .iter()
        .zip(&weighted)
        .filter_map(|(m, w)| m.map(|m| (m, *w)))
        .fold((0.0, 0.0), |(c, b), (m, w)| (c + m, b + w));
    if bytes <= 0.0 {
        return;
    }
    let average = cores / bytes;
    let factor: Vec<f64> = measured
        .iter()
        .zip(&weighted)
        .map(|(m, w)| match m {
            Some(m) if *w > 0.0 => m / w,
            _ => average,
        })
        .collect();
    set_loads(model, &factor, average);
}

/// Spreads `cores` busy over the whole cluster at one rate (generated clusters).
pub(crate) fn assign_total(model: &mut ClusterModel, cores: f64) {
    let bytes: f64 = weighted_per_broker(model).iter().sum();
    if bytes > 0.0 {
        let rate = cores / bytes;
        set_loads(model, &vec![rate; model.brokers.len()], rate);
    }
}

/// Sets each partition's CPU from the cores per weighted byte of the brokers holding it (the
/// followers' average for a follower).
fn set_loads(model: &mut ClusterModel, factor: &[f64], average: f64) {
    for p in &mut model.partitions {
        let followers = p.replicas.len().saturating_sub(1);
        let leader = p.leader.or(p.replicas.first().map(|r| r.broker));
        let (mut follower_factor, mut n) = (0.0, 0.0);
        for r in p.replicas.iter().filter(|r| Some(r.broker) != leader) {
            follower_factor += factor[r.broker as usize];
            n += 1.0;
        }
        let follower_factor = if n > 0.0 {
            follower_factor / n
        } else {
            average
        };
        let leader_factor = leader.map_or(average, |b| factor[b as usize]);
        p.load.cpu_leader = leader_factor * weight(&p.load, followers, true);
        p.load.cpu_follower = follower_factor * weight(&p.load, followers, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::generate::{generate, Spec};

    /// Each broker's CPU as the model has it, replica by replica.
    fn per_broker(model: &ClusterModel) -> Vec<f64> {
        let mut cpu = vec![0.0; model.brokers.len()];
        for p in &model.partitions {
            for r in &p.replicas {
                cpu[r.broker as usize] += if p.leader == Some(r.broker) {
                    p.load.cpu_leader
                } else {
                    p.load.cpu_follower
                };
            }
        }
        cpu
    }

    #[test]
    fn each_brokers_cpu_is_shared_among_its_replicas() {
        let mut model = generate(Spec::default());
        // Brokers busy in proportion to the bytes they move: every replica's share is exact.
        let weighted = weighted_per_broker(&model);
        let usage: BTreeMap<i32, f64> = model
            .brokers
            .iter()
            .zip(&weighted)
            .map(|(b, w)| (b.id, w * 1e-8))
            .collect();
        assign(&mut model, &usage);
        for (b, cpu) in per_broker(&model).iter().enumerate() {
            let want = weighted[b] * 1e-8;
            assert!(
                (cpu - want).abs() < 1e-9 * want.max(1.0),
                "broker {b}: {cpu} vs {want}"
            );
        }
        // Unevenly busy brokers: a follower's share is at its brokers' average rate, so the
        // sums are approximate, but the busier broker stays the busier.
        let usage: BTreeMap<i32, f64> = model
            .brokers
            .iter()
            .zip(&weighted)
            .map(|(b, w)| (b.id, w * 1e-8 * (1.0 + 0.2 * f64::from(b.id))))
            .collect();
        assign(&mut model, &usage);
        let cpu = per_broker(&model);
        let total: f64 = cpu.iter().sum();
        let want: f64 = usage.values().sum();
        assert!((total - want).abs() < 0.1 * want, "{total} vs {want}");
        let rank = |v: &[f64]| {
            let mut idx: Vec<usize> = (0..v.len()).collect();
            idx.sort_by(|&x, &y| v[x].total_cmp(&v[y]));
            idx
        };
        let measured: Vec<f64> = usage.values().copied().collect();
        assert_eq!(rank(&cpu), rank(&measured), "{cpu:?} vs {measured:?}");
    }

    #[test]
    fn without_a_measurement_nothing_is_set() {
        let mut model = generate(Spec::default());
        for p in &mut model.partitions {
            (p.load.cpu_leader, p.load.cpu_follower) = (0.0, 0.0);
        }
        assign(&mut model, &BTreeMap::new());
        assert!(model
            .partitions
            .iter()
            .all(|p| p.load.cpu_leader == 0.0 && p.load.cpu_follower == 0.0));
    }
}
