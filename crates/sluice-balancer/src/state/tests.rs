//! The aggregates after any sequence of actions equal those computed from scratch.

use proptest::prelude::*;

use super::*;
use crate::model::generate::{generate, Spec};

/// A model whose assignment is `state`'s.
fn rebuilt(model: &ClusterModel, state: &State<'_>) -> ClusterModel {
    let mut out = model.clone();
    for (p, partition) in out.partitions.iter_mut().enumerate() {
        partition.replicas = state.replicas(p as u32).to_vec();
        partition.leader = partition.replicas.first().map(|r| r.broker);
    }
    out
}

/// Equal up to rounding: sums of loads of about `scale` differ in their last bits.
fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-9 * scale.max(a.abs()).max(b.abs()).max(1.0)
}

proptest! {
    #[test]
    fn aggregates_follow_any_actions(seed in 0u64..1000, steps in proptest::collection::vec((0u32..60, 0u32..6, 0u32..6, 0u16..2, 0u8..4, 0u32..60), 1..80)) {
        let model = generate(Spec { brokers: 6, partitions: 60, seed, ..Spec::default() });
        let mut state = State::new(&model);
        for (p, a, b, d, kind, q) in steps {
            let action = match kind {
                0 => Action::Move { partition: p, from: a, to: b, to_dir: d },
                1 => Action::Lead { partition: p, to: b },
                2 => Action::Swap { partition: p, from: a, other: q, to: b },
                _ => Action::Dir { partition: p, broker: a, to_dir: d },
            };
            if state.is_valid(&action) {
                state.apply(&action);
            }
        }
        let model2 = rebuilt(&model, &state);
        prop_assert!(model2.validate().is_ok());
        let fresh = State::new(&model2);
        let scale: f64 = model.partitions.iter().map(|p| p.load.disk_bytes * 3.0).sum();
        for b in 0..6u32 {
            let (x, y) = (state.broker(b), fresh.broker(b));
            for (u, v) in [(x.replicas, y.replicas), (x.leaders, y.leaders), (x.disk, y.disk),
                           (x.network_in, y.network_in), (x.network_out, y.network_out), (x.cpu, y.cpu),
                           (x.leader_bytes_in, y.leader_bytes_in)] {
                prop_assert!(close(u, v, scale), "broker {b}: {x:?} vs {y:?}");
            }
            for d in 0..2u16 {
                prop_assert!(close(state.dir_disk(b, d), fresh.dir_disk(b, d), scale));
            }
            let mut on: Vec<u32> = state.partitions_on(b).collect();
            let mut expected: Vec<u32> = fresh.partitions_on(b).collect();
            on.sort_unstable();
            expected.sort_unstable();
            prop_assert_eq!(on, expected);
            for t in 0..model.topics.len() as u32 {
                prop_assert_eq!(state.topic_count(t, b), fresh.topic_count(t, b));
            }
        }
    }
}
