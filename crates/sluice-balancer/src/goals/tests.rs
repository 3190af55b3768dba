//! Swaps as the goals judge them: each half must keep what the goal guards.

use super::*;
use crate::model::{
    Broker, Capacity, ClusterModel, Load, LogDir, Partition, Replica, MODEL_VERSION,
};

fn broker(id: i32, rack: &str, dir_bytes: f64) -> Broker {
    Broker {
        id,
        rack: Some(rack.to_owned()),
        capacity: Capacity::default(),
        log_dirs: vec![LogDir {
            path: "/d0".to_owned(),
            capacity_bytes: Some(dir_bytes),
        }],
        excluded: false,
        added: false,
    }
}

fn partition(topic: u32, index: i32, brokers: &[u32], disk_bytes: f64) -> Partition {
    Partition {
        topic,
        index,
        replicas: brokers
            .iter()
            .map(|&broker| Replica { broker, log_dir: 0 })
            .collect(),
        leader: brokers.first().copied(),
        load: Load {
            disk_bytes,
            ..Load::default()
        },
    }
}

fn swap(partition: u32, from: u32, other: u32, to: u32) -> Action {
    Action::Swap {
        partition,
        from,
        other,
        to,
    }
}

/// Brokers 0 and 1 on rack a, 2 and 3 on rack b; P = 0 on [0, 2], Q = 1 on [3, 1].
fn two_racks() -> ClusterModel {
    ClusterModel {
        version: MODEL_VERSION,
        brokers: vec![
            broker(1, "a", 1e6),
            broker(2, "a", 1e6),
            broker(3, "b", 1e6),
            broker(4, "b", 1e6),
        ],
        topics: vec!["p".to_owned(), "q".to_owned()],
        partitions: vec![
            partition(0, 0, &[0, 2], 10.0),
            partition(1, 0, &[3, 1], 10.0),
        ],
    }
}

#[test]
fn rack_awareness_judges_both_halves_of_a_swap() {
    let model = two_racks();
    model.validate().expect("valid");
    let state = State::new(&model);
    let rack = [Goal::prepare(
        GoalKind::RackAwareGoal,
        &state,
        &GoalSettings::default(),
    )];
    // P from 0 (a) to 3 (b, where P is already) and Q from 3 to 0 (a, where Q is already).
    assert!(!all_accept(&rack, &state, &swap(0, 0, 1, 3)));
    // Within rack a: P from 0 to 1, Q from 1 to 0.
    assert!(all_accept(&rack, &state, &swap(0, 0, 1, 1)));
    // A swap naming a replica that is not there is no swap.
    assert!(!all_accept(&rack, &state, &swap(0, 1, 1, 0)));
}

#[test]
fn a_swap_that_would_overfill_a_directory_is_refused() {
    let mut model = two_racks();
    // Broker 0's directory holds 100 bytes (80 allowed): P (10) and R (10) are there now. Taking
    // a 75-byte replica for P would put 85 in it.
    model.brokers[0].log_dirs[0].capacity_bytes = Some(100.0);
    model.partitions[1].load.disk_bytes = 75.0;
    model.partitions.push(partition(0, 1, &[0, 3], 10.0));
    model.validate().expect("valid");
    let state = State::new(&model);
    let settings = GoalSettings::default();
    let goals = [
        Goal::prepare(GoalKind::IntraBrokerDiskCapacityGoal, &state, &settings),
        Goal::prepare(GoalKind::RackAwareGoal, &state, &settings),
    ];
    assert!(!all_accept(&goals, &state, &swap(0, 0, 1, 1)));
    // The other way round (broker 1 gives its 75 bytes, gets 10 back) is fine.
    let mut twice = State::new(&model);
    twice.apply(&swap(0, 0, 1, 1));
    assert_eq!(twice.dir_disk(0, 0), 85.0);
    assert!(all_accept(&goals, &twice, &swap(1, 0, 0, 1)));
}
