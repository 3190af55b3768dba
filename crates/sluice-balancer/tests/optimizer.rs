//! Properties of proposals on generated clusters.

use proptest::prelude::*;
use sluice_balancer::model::generate::{generate, Spec};
use sluice_balancer::model::{
    Broker, ClusterModel, Load, LogDir, Partition, Replica, MODEL_VERSION,
};
use sluice_balancer::{optimize, GoalKind, GoalSettings, OptimizationError};

const ORDER: &[GoalKind] = &GoalKind::DEFAULT_ORDER;

fn spec(seed: u64, brokers: u32, racks: u32, partitions: u32) -> Spec {
    Spec {
        brokers,
        racks,
        topics: 7,
        partitions,
        replication: 3.min(brokers),
        log_dirs: 2,
        seed,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn proposals_keep_higher_goals_and_apply_to_the_reported_balance(
        seed in 0u64..10_000, brokers in 3u32..12, racks in 0u32..4, partitions in 10u32..400,
    ) {
        let model = generate(spec(seed, brokers, racks, partitions));
        let settings = GoalSettings::default();
        // Any order and any subset of the goals (every third case), not just the default.
        let mut order = ORDER.to_vec();
        if seed % 3 == 0 {
            let mut rng = sluice_balancer::model::generate::Rng::new(seed);
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
            order.truncate(3 + rng.below(order.len() as u64 - 2) as usize);
        }
        let proposal = match optimize(&model, &order, &settings) {
            Ok(p) => p,
            // A generated cluster may be impossible to make rack aware (e.g. 2 racks of
            // unequal size); the error must then name the goal and why.
            Err(OptimizationError::HardGoal { goal, violations }) => {
                prop_assert!(goal.is_hard() && !violations.is_empty());
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        for g in &proposal.goals {
            if g.hard {
                prop_assert!(g.after == 0.0, "hard goal {:?} violated: {}", g.goal, g.after);
            }
            // A lower-priority goal never undoes a higher one.
            prop_assert!(g.after <= g.after_own_turn + 1e-6,
                "{:?} went from {} to {} after lower goals", g.goal, g.after_own_turn, g.after);
        }
        // The proposal applied to the model gives the loads it reports.
        let applied = proposal.apply_to(&model);
        prop_assert!(applied.validate().is_ok());
        let again = optimize(&applied, &[], &settings).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (reported, actual) in proposal.brokers.iter().zip(&again.brokers) {
            prop_assert!((reported.after.disk - actual.before.disk).abs() < 1e-3 * reported.after.disk.max(1.0));
            prop_assert_eq!(reported.after.replicas, actual.before.replicas);
            prop_assert_eq!(reported.after.leaders, actual.before.leaders);
        }
        // Deterministic for the same input.
        let twice = optimize(&model, &order, &settings).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&twice.changes, &proposal.changes);
    }
}

#[test]
fn a_skewed_cluster_gets_balanced() {
    let model = generate(spec(7, 12, 3, 3000));
    let proposal = optimize(&model, ORDER, &GoalSettings::default()).expect("proposal");
    let counts: Vec<f64> = proposal.brokers.iter().map(|b| b.after.replicas).collect();
    let before: Vec<f64> = proposal.brokers.iter().map(|b| b.before.replicas).collect();
    let spread = |v: &[f64]| {
        v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min)
    };
    assert!(
        spread(&before) > 200.0,
        "the generated cluster is skewed: {before:?}"
    );
    assert!(
        spread(&counts) <= 0.25 * 750.0,
        "replica counts balanced: {counts:?}"
    );
    assert!(proposal.summary.replica_moves > 0);
    let replica_goal = proposal
        .goals
        .iter()
        .find(|g| g.goal == GoalKind::ReplicaDistributionGoal)
        .expect("goal");
    assert_eq!(replica_goal.after, 0.0, "{proposal:#?}");
}

#[test]
fn an_unsatisfiable_hard_goal_names_the_brokers() {
    let mut model = generate(spec(3, 4, 0, 200));
    for b in &mut model.brokers {
        b.capacity.disk_bytes = Some(1.0);
    }
    match optimize(&model, ORDER, &GoalSettings::default()) {
        Err(OptimizationError::HardGoal { goal, violations }) => {
            assert_eq!(goal, GoalKind::DiskCapacityGoal);
            assert!(
                violations[0].reason.contains("all brokers together"),
                "{violations:?}"
            );
            let brokers: Vec<i32> = violations.iter().filter_map(|v| v.broker).collect();
            assert_eq!(brokers, [1, 2, 3, 4], "each broker over its limit is named");
            assert!(violations[1].reason.contains("over its limit"));
        }
        other => panic!("expected a hard-goal failure, got {other:?}"),
    }
}

#[test]
fn a_removed_broker_is_drained() {
    // 9 brokers on 3 racks: the removed broker's rack keeps two others to take its replicas
    // (with one, rack awareness would force all of them onto it).
    let mut model = generate(spec(5, 9, 3, 600));
    model.brokers[1].excluded = true;
    let proposal = optimize(&model, ORDER, &GoalSettings::default()).expect("proposal");
    let drained = &proposal.brokers[1];
    assert!(drained.before.replicas > 0.0);
    assert_eq!(drained.after.replicas, 0.0);
}

#[test]
fn goals_parse_by_cruise_control_names() {
    assert_eq!(
        GoalKind::parse("RackAwareGoal"),
        Some(GoalKind::RackAwareGoal)
    );
    assert_eq!(GoalKind::parse("rackaware"), Some(GoalKind::RackAwareGoal));
    assert_eq!(GoalKind::parse("nonsense"), None);
}

#[test]
fn added_brokers_receive_replicas_and_no_other_broker_does() {
    let mut model = generate(spec(11, 6, 3, 900));
    for id in [7, 8, 9] {
        let mut broker = model.brokers[0].clone();
        broker.id = id;
        broker.rack = Some(format!("rack-{}", id % 3));
        broker.added = true;
        model.brokers.push(broker);
    }
    let proposal = optimize(&model, ORDER, &GoalSettings::default()).expect("proposal");
    for change in &proposal.changes {
        for a in &change.after {
            if change.before.iter().all(|b| b.broker != a.broker) {
                assert!(
                    a.broker >= 7,
                    "{change:?} moves a replica onto an old broker"
                );
            }
        }
    }
    for added in &proposal.brokers[6..] {
        assert_eq!(added.before.replicas, 0.0);
        assert!(added.after.replicas > 100.0, "{added:?}");
    }
}

/// Two brokers with two replicas each, one holding the large ones. With a balance threshold of
/// 1.0 the replica counts may not change at all, so no single move is accepted: only swapping
/// a large replica for a small one evens the disks.
#[test]
fn pinned_replica_counts_leave_swaps_to_even_the_disks() {
    let broker = |id| Broker {
        id,
        rack: None,
        capacity: Default::default(),
        log_dirs: vec![LogDir {
            path: "/data".to_owned(),
            capacity_bytes: None,
        }],
        excluded: false,
        added: false,
    };
    let partition = |index, broker, disk_bytes| Partition {
        topic: 0,
        index,
        replicas: vec![Replica { broker, log_dir: 0 }],
        leader: Some(broker),
        load: Load {
            disk_bytes,
            ..Load::default()
        },
    };
    let model = ClusterModel {
        version: MODEL_VERSION,
        brokers: vec![broker(1), broker(2)],
        topics: vec!["t".to_owned()],
        partitions: vec![
            partition(0, 0, 10.0),
            partition(1, 0, 10.0),
            partition(2, 1, 1.0),
            partition(3, 1, 1.0),
        ],
    };
    model.validate().expect("valid");
    let settings = GoalSettings {
        balance_threshold: 1.0,
        ..GoalSettings::default()
    };
    let order = [
        GoalKind::ReplicaDistributionGoal,
        GoalKind::DiskUsageDistributionGoal,
    ];
    let proposal = optimize(&model, &order, &settings).expect("proposal");
    let after: Vec<(f64, f64)> = proposal
        .brokers
        .iter()
        .map(|b| (b.after.replicas, b.after.disk))
        .collect();
    assert_eq!(after, [(2.0, 11.0), (2.0, 11.0)], "{proposal:#?}");
    assert_eq!(proposal.summary.replica_moves, 2);
}

/// A broker with fewer cores than its share of the cluster's CPU: the CPU capacity goal moves
/// load (leadership first) off it until it is under the threshold.
#[test]
fn a_broker_short_of_cores_is_relieved() {
    let mut model = generate(spec(9, 6, 3, 600));
    let busy = |model: &ClusterModel, b: u32| -> f64 {
        model
            .partitions
            .iter()
            .flat_map(|p| p.replicas.iter().map(move |r| (p, r)))
            .filter(|(_, r)| r.broker == b)
            .map(|(p, r)| {
                if p.leader == Some(r.broker) {
                    p.load.cpu_leader
                } else {
                    p.load.cpu_follower
                }
            })
            .sum()
    };
    let before = busy(&model, 0);
    assert!(before > 0.0, "generated clusters carry CPU load");
    // 80 % of these cores is well under what broker 0 carries now.
    model.brokers[0].capacity.cpu_cores = Some(before / 2.0);
    let proposal = optimize(&model, ORDER, &GoalSettings::default()).expect("proposal");
    let cpu = proposal
        .goals
        .iter()
        .find(|g| g.goal == GoalKind::CpuCapacityGoal)
        .expect("goal");
    assert!(cpu.before > 0.0 && cpu.after == 0.0, "{cpu:?}");
    let after = proposal.brokers[0].after.cpu;
    assert!(after <= 0.8 * before / 2.0 + 1e-9, "{after} of {before}");
    let applied = proposal.apply_to(&model);
    assert!((busy(&applied, 0) - after).abs() < 1e-6 * after.max(1.0));
}
