//! What the optimizer proposes: the partitions whose replicas, log directories or leader
//! change, what that costs (replicas and bytes to move, leadership changes), and each goal's
//! score and each broker's load before and after. Serializable for review, and applicable to
//! the model it came from.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::{ClusterModel, Replica};
use crate::optimizer::GoalOutcome;
use crate::state::{BrokerLoad, State};

/// One replica, by node id and log directory path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Node id.
    pub broker: i32,
    /// Log directory path.
    pub log_dir: String,
}

/// One partition whose placement changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionChange {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Replicas now, preferred leader first.
    pub before: Vec<Placement>,
    /// Replicas proposed, preferred leader first.
    pub after: Vec<Placement>,
    /// The current leader's node id.
    pub leader_before: Option<i32>,
    /// Elect the first replica of `after` as leader.
    pub elect_leader: bool,
}

impl PartitionChange {
    /// True if the replica set changes brokers (AlterPartitionReassignments).
    pub fn moves_brokers(&self) -> bool {
        let ids = |v: &[Placement]| v.iter().map(|p| p.broker).collect::<Vec<_>>();
        ids(&self.before) != ids(&self.after)
    }

    /// Replicas that stay on their broker but change directory (AlterReplicaLogDirs).
    pub fn dir_moves(&self) -> Vec<&Placement> {
        self.after
            .iter()
            .filter(|a| {
                self.before
                    .iter()
                    .any(|b| b.broker == a.broker && b.log_dir != a.log_dir)
            })
            .collect()
    }

    /// True if the leader changes.
    pub fn changes_leader(&self) -> bool {
        self.elect_leader && self.leader_before != self.after.first().map(|p| p.broker)
    }
}

/// The cost of a proposal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Partitions with any change.
    pub partitions_changed: usize,
    /// Replicas that move to another broker.
    pub replica_moves: usize,
    /// Bytes those carry.
    pub bytes_to_move: f64,
    /// Replicas that move between directories of one broker.
    pub intra_broker_moves: usize,
    /// Bytes those carry.
    pub intra_broker_bytes: f64,
    /// Partitions whose leader changes.
    pub leadership_changes: usize,
}

/// One broker's load before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerOutcome {
    /// Node id.
    pub broker: i32,
    /// Load now.
    pub before: BrokerLoad,
    /// Load proposed.
    pub after: BrokerLoad,
}

/// A proposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Changed partitions.
    pub changes: Vec<PartitionChange>,
    /// What it costs.
    pub summary: Summary,
    /// Each goal, in priority order.
    pub goals: Vec<GoalOutcome>,
    /// Each broker.
    pub brokers: Vec<BrokerOutcome>,
    /// Time the optimization took.
    pub millis: u64,
}

fn placements(model: &ClusterModel, replicas: &[Replica]) -> Vec<Placement> {
    replicas
        .iter()
        .map(|r| {
            let broker = &model.brokers[r.broker as usize];
            Placement {
                broker: broker.id,
                log_dir: broker
                    .log_dirs
                    .get(usize::from(r.log_dir))
                    .map_or_else(String::new, |d| d.path.clone()),
            }
        })
        .collect()
}

impl Proposal {
    /// The difference between `model` and the optimized `state`.
    pub(crate) fn new(
        model: &ClusterModel,
        state: &State<'_>,
        goals: Vec<GoalOutcome>,
        millis: u64,
    ) -> Self {
        let mut summary = Summary::default();
        let mut changes = Vec::new();
        for (p, partition) in model.partitions.iter().enumerate() {
            let now = state.replicas(p as u32);
            // The model's loads assume every partition is led by its first replica, so the
            // proposal elects it wherever another replica leads now.
            let leader_changes = partition.leader != now.first().map(|r| r.broker);
            if now == partition.replicas.as_slice() && !leader_changes {
                continue;
            }
            let disk = partition.load.disk_bytes;
            for r in now {
                match partition.replicas.iter().find(|o| o.broker == r.broker) {
                    None => {
                        summary.replica_moves += 1;
                        summary.bytes_to_move += disk;
                    }
                    Some(o) if o.log_dir != r.log_dir => {
                        summary.intra_broker_moves += 1;
                        summary.intra_broker_bytes += disk;
                    }
                    Some(_) => {}
                }
            }
            if leader_changes {
                summary.leadership_changes += 1;
            }
            changes.push(PartitionChange {
                topic: model.topics[partition.topic as usize].clone(),
                partition: partition.index,
                before: placements(model, &partition.replicas),
                after: placements(model, now),
                leader_before: partition.leader.map(|b| model.brokers[b as usize].id),
                elect_leader: leader_changes,
            });
        }
        summary.partitions_changed = changes.len();
        let initial = State::new(model);
        let brokers = model
            .brokers
            .iter()
            .enumerate()
            .map(|(b, broker)| BrokerOutcome {
                broker: broker.id,
                before: *initial.broker(b as u32),
                after: *state.broker(b as u32),
            })
            .collect();
        Proposal {
            changes,
            summary,
            goals,
            brokers,
            millis,
        }
    }

    /// `model` with the proposal applied (replicas, directories and leaders).
    pub fn apply_to(&self, model: &ClusterModel) -> ClusterModel {
        let mut out = model.clone();
        let brokers: HashMap<i32, u32> = model
            .brokers
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id, i as u32))
            .collect();
        let broker_index = |id: i32| brokers.get(&id).copied();
        let topics: HashMap<&str, u32> = model
            .topics
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect();
        let partitions: HashMap<(u32, i32), usize> = model
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.topic, p.index), i))
            .collect();
        for change in &self.changes {
            let Some(&topic) = topics.get(change.topic.as_str()) else {
                continue;
            };
            let Some(&at) = partitions.get(&(topic, change.partition)) else {
                continue;
            };
            let partition = &mut out.partitions[at];
            partition.replicas = change
                .after
                .iter()
                .filter_map(|a| {
                    let b = broker_index(a.broker)?;
                    let dir = model.brokers[b as usize]
                        .log_dirs
                        .iter()
                        .position(|d| d.path == a.log_dir)?;
                    Some(Replica {
                        broker: b,
                        log_dir: dir as u16,
                    })
                })
                .collect();
            let kept = partition
                .leader
                .filter(|l| partition.replicas.iter().any(|r| r.broker == *l));
            partition.leader = if change.elect_leader || kept.is_none() {
                partition.replicas.first().map(|r| r.broker)
            } else {
                kept
            };
        }
        out
    }
}
