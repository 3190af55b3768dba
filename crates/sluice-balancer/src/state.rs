//! The assignment the optimizer changes, with the per-broker, per-log-directory and
//! per-topic aggregates every goal reads, all kept up to date in O(1) per action.
//!
//! Replicas are stored flat (`replicas[base[p]..base[p + 1]]` are partition `p`'s, preferred
//! leader first), and each broker keeps the list of flat indices it holds, so that the
//! optimizer can walk a broker's replicas and move one without searching.

use std::collections::HashMap;
use std::ops::{AddAssign, SubAssign};

use crate::model::{ClusterModel, Replica};

/// What a broker carries, or what one replica adds to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BrokerLoad {
    /// Replicas.
    pub replicas: f64,
    /// Leader replicas.
    pub leaders: f64,
    /// Disk bytes.
    pub disk: f64,
    /// Bytes per second in (produce and replication).
    pub network_in: f64,
    /// Bytes per second out (consumers and followers of its leaders).
    pub network_out: f64,
    /// Bytes per second produced to its leaders.
    pub leader_bytes_in: f64,
    /// CPU cores busy.
    pub cpu: f64,
}

impl AddAssign for BrokerLoad {
    fn add_assign(&mut self, o: Self) {
        self.replicas += o.replicas;
        self.leaders += o.leaders;
        self.disk += o.disk;
        self.network_in += o.network_in;
        self.network_out += o.network_out;
        self.leader_bytes_in += o.leader_bytes_in;
        self.cpu += o.cpu;
    }
}

impl SubAssign for BrokerLoad {
    fn sub_assign(&mut self, o: Self) {
        self.replicas -= o.replicas;
        self.leaders -= o.leaders;
        self.disk -= o.disk;
        self.network_in -= o.network_in;
        self.network_out -= o.network_out;
        self.leader_bytes_in -= o.leader_bytes_in;
        self.cpu -= o.cpu;
    }
}

/// What an action does to broker loads: `(broker, added, removed)` twice (see
/// [`State::effects`]).
pub type Effects = [(u32, BrokerLoad, BrokerLoad); 2];

/// One change to the assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Moves the replica of `partition` on broker `from` to broker `to`, log dir `to_dir`.
    Move {
        /// Partition index.
        partition: u32,
        /// Broker index it leaves.
        from: u32,
        /// Broker index it goes to.
        to: u32,
        /// Log dir on `to`.
        to_dir: u16,
    },
    /// Makes the replica on broker `to` the partition's leader (preferred replica).
    Lead {
        /// Partition index.
        partition: u32,
        /// Broker index of the new leader.
        to: u32,
    },
    /// Exchanges two replicas: `partition`'s on `from` goes to `to` and `other`'s on `to` comes
    /// to `from`, each into the log directory the other leaves and keeping its place in its
    /// partition's list (a leader stays leader). Replica counts do not change, which makes a
    /// swap the way to even a resource once the count goals refuse every single move.
    Swap {
        /// Partition of the replica leaving `from`.
        partition: u32,
        /// Broker index `partition`'s replica leaves.
        from: u32,
        /// Partition of the replica leaving `to`.
        other: u32,
        /// Broker index `other`'s replica leaves.
        to: u32,
    },
    /// Moves the replica of `partition` on `broker` to another of its log directories.
    Dir {
        /// Partition index.
        partition: u32,
        /// Broker index.
        broker: u32,
        /// Log dir it goes to.
        to_dir: u16,
    },
}

impl Action {
    /// The replicas the action moves between brokers, as `(partition, from, to)`: one for a
    /// move, two for a swap (each half judged on its own), none for the others.
    pub fn broker_moves(&self) -> impl Iterator<Item = (u32, u32, u32)> {
        let moves = match *self {
            Action::Move {
                partition,
                from,
                to,
                ..
            } => [Some((partition, from, to)), None],
            Action::Swap {
                partition,
                from,
                other,
                to,
            } => [Some((partition, from, to)), Some((other, to, from))],
            Action::Lead { .. } | Action::Dir { .. } => [None, None],
        };
        moves.into_iter().flatten()
    }
}

/// Replica counts per (topic, broker): dense when small enough, else a map.
#[derive(Debug, Clone)]
enum TopicCounts {
    Dense { brokers: usize, counts: Vec<u32> },
    Sparse(HashMap<(u32, u32), u32>),
}

/// Largest dense (topic × broker) table, in entries.
const MAX_DENSE_TOPIC_COUNTS: usize = 64 << 20;

impl TopicCounts {
    fn new(topics: usize, brokers: usize) -> Self {
        match topics.checked_mul(brokers) {
            Some(n) if n <= MAX_DENSE_TOPIC_COUNTS => TopicCounts::Dense {
                brokers,
                counts: vec![0; n],
            },
            _ => TopicCounts::Sparse(HashMap::new()),
        }
    }

    fn get(&self, topic: u32, broker: u32) -> u32 {
        match self {
            TopicCounts::Dense { brokers, counts } => {
                counts[topic as usize * brokers + broker as usize]
            }
            TopicCounts::Sparse(map) => map.get(&(topic, broker)).copied().unwrap_or(0),
        }
    }

    fn add(&mut self, topic: u32, broker: u32, delta: i32) {
        let slot = match self {
            TopicCounts::Dense { brokers, counts } => {
                &mut counts[topic as usize * *brokers + broker as usize]
            }
            TopicCounts::Sparse(map) => map.entry((topic, broker)).or_insert(0),
        };
        *slot = slot.saturating_add_signed(delta);
    }
}

/// The assignment being optimized and its aggregates.
#[derive(Debug, Clone)]
pub struct State<'m> {
    model: &'m ClusterModel,
    base: Vec<u32>,
    replicas: Vec<Replica>,
    /// Partition of each flat replica.
    owner: Vec<u32>,
    /// Position of each flat replica in its broker's list.
    pos: Vec<u32>,
    /// Flat replica indices per broker.
    lists: Vec<Vec<u32>>,
    brokers: Vec<BrokerLoad>,
    /// Disk bytes per broker per log dir.
    dirs: Vec<Vec<f64>>,
    topic_counts: TopicCounts,
    /// Replicas per topic, all brokers together.
    topic_totals: Vec<u32>,
    /// Some brokers were just added: replicas move only onto them.
    only_onto_added: bool,
    /// Set once preferred leaders are to be elected: every partition is then led by its
    /// first replica.
    elect_preferred: bool,
}

impl<'m> State<'m> {
    /// The model's current assignment.
    pub fn new(model: &'m ClusterModel) -> Self {
        let total: usize = model.partitions.iter().map(|p| p.replicas.len()).sum();
        let mut state = State {
            model,
            base: Vec::with_capacity(model.partitions.len() + 1),
            replicas: Vec::with_capacity(total),
            owner: Vec::with_capacity(total),
            pos: Vec::with_capacity(total),
            lists: vec![Vec::new(); model.brokers.len()],
            brokers: vec![BrokerLoad::default(); model.brokers.len()],
            dirs: model
                .brokers
                .iter()
                .map(|b| vec![0.0; b.log_dirs.len()])
                .collect(),
            topic_counts: TopicCounts::new(model.topics.len(), model.brokers.len()),
            topic_totals: vec![0; model.topics.len()],
            elect_preferred: false,
            only_onto_added: model.brokers.iter().any(|b| b.added),
        };
        for (p, partition) in model.partitions.iter().enumerate() {
            state.base.push(state.replicas.len() as u32);
            for r in &partition.replicas {
                let k = state.replicas.len() as u32;
                state.replicas.push(*r);
                state.owner.push(p as u32);
                let list = &mut state.lists[r.broker as usize];
                state.pos.push(list.len() as u32);
                list.push(k);
                state.topic_counts.add(partition.topic, r.broker, 1);
                state.topic_totals[partition.topic as usize] += 1;
            }
            for (slot, r) in partition.replicas.iter().enumerate() {
                let c = state.contribution(p as u32, slot == 0);
                state.brokers[r.broker as usize] += c;
                state.dirs[r.broker as usize][usize::from(r.log_dir)] += c.disk;
            }
        }
        state.base.push(state.replicas.len() as u32);
        state
    }

    /// True if broker `b` may receive replicas: not being removed, and — while brokers are
    /// being added — one of those.
    pub fn may_receive(&self, b: u32) -> bool {
        let broker = &self.model.brokers[b as usize];
        !broker.excluded && (!self.only_onto_added || broker.added)
    }

    /// Elects every partition's preferred replica (when the proposal is executed).
    pub fn elect_preferred_leaders(&mut self) {
        self.elect_preferred = true;
    }

    /// The leader partition `p` will have: its first replica once preferred leaders are
    /// elected, else the leader it has now.
    pub fn leader_after(&self, p: u32) -> Option<u32> {
        if self.elect_preferred {
            self.replicas(p).first().map(|r| r.broker)
        } else {
            self.model.partitions[p as usize].leader
        }
    }

    /// The model this state started from.
    pub fn model(&self) -> &'m ClusterModel {
        self.model
    }

    /// The replicas of partition `p`, leader first.
    pub fn replicas(&self, p: u32) -> &[Replica] {
        &self.replicas[self.base[p as usize] as usize..self.base[p as usize + 1] as usize]
    }

    /// What broker `b` carries.
    pub fn broker(&self, b: u32) -> &BrokerLoad {
        &self.brokers[b as usize]
    }

    /// Disk bytes in log dir `d` of broker `b`.
    pub fn dir_disk(&self, b: u32, d: u16) -> f64 {
        self.dirs[b as usize][usize::from(d)]
    }

    /// Replicas of topic `t` on broker `b`.
    pub fn topic_count(&self, t: u32, b: u32) -> u32 {
        self.topic_counts.get(t, b)
    }

    /// Replicas of topic `t` in all.
    pub fn topic_total(&self, t: u32) -> u32 {
        self.topic_totals[t as usize]
    }

    /// The partitions with a replica on broker `b`, in no particular order.
    pub fn partitions_on(&self, b: u32) -> impl Iterator<Item = u32> + '_ {
        self.lists[b as usize]
            .iter()
            .map(|&k| self.owner[k as usize])
    }

    /// The broker of partition `p`'s first replica: the leader once the proposal is executed.
    pub fn leader(&self, p: u32) -> Option<u32> {
        self.replicas(p).first().map(|r| r.broker)
    }

    /// Partition `p`'s replica on broker `b`, if it has one there.
    pub fn replica_on(&self, p: u32, b: u32) -> Option<Replica> {
        self.replicas(p).iter().copied().find(|r| r.broker == b)
    }

    /// The slot of broker `b` among partition `p`'s replicas.
    pub fn slot_of(&self, p: u32, b: u32) -> Option<usize> {
        self.replicas(p).iter().position(|r| r.broker == b)
    }

    /// What one replica of partition `p` adds to its broker, as leader or follower.
    pub fn contribution(&self, p: u32, leader: bool) -> BrokerLoad {
        let partition = &self.model.partitions[p as usize];
        let load = &partition.load;
        let followers = partition.replicas.len().saturating_sub(1) as f64;
        BrokerLoad {
            replicas: 1.0,
            leaders: if leader { 1.0 } else { 0.0 },
            disk: load.disk_bytes,
            network_in: load.bytes_in,
            network_out: if leader {
                load.bytes_out + load.bytes_in * followers
            } else {
                0.0
            },
            leader_bytes_in: if leader { load.bytes_in } else { 0.0 },
            cpu: if leader {
                load.cpu_leader
            } else {
                load.cpu_follower
            },
        }
    }

    /// The load changes `action` makes: `(broker, added)` and `(broker, removed)` pairs.
    pub fn effects(&self, action: &Action) -> Effects {
        let none = BrokerLoad::default();
        match *action {
            Action::Move {
                partition,
                from,
                to,
                ..
            } => {
                let leader = self.replicas(partition).first().map(|r| r.broker) == Some(from);
                let c = self.contribution(partition, leader);
                [(from, none, c), (to, c, none)]
            }
            Action::Lead { partition, to } => {
                let from = self.replicas(partition).first().map_or(to, |r| r.broker);
                let (lead, follow) = (
                    self.contribution(partition, true),
                    self.contribution(partition, false),
                );
                [(from, follow, lead), (to, lead, follow)]
            }
            Action::Swap {
                partition,
                from,
                other,
                to,
            } => {
                let out = self.contribution(partition, self.leader(partition) == Some(from));
                let back = self.contribution(other, self.leader(other) == Some(to));
                [(from, back, out), (to, out, back)]
            }
            Action::Dir { broker, .. } => [(broker, none, none), (broker, none, none)],
        }
    }

    /// Applies `action`; an invalid one (see [`State::is_valid`]) is ignored, so the
    /// aggregates can never be corrupted.
    pub fn apply(&mut self, action: &Action) {
        if !self.is_valid(action) {
            debug_assert!(false, "invalid action {action:?}");
            return;
        }
        for (b, added, removed) in self.effects(action) {
            self.brokers[b as usize] += added;
            self.brokers[b as usize] -= removed;
        }
        match *action {
            Action::Move {
                partition,
                from,
                to,
                to_dir,
            } => self.move_replica(partition, from, to, to_dir),
            Action::Swap {
                partition,
                from,
                other,
                to,
            } => {
                let (Some(out), Some(back)) =
                    (self.replica_on(partition, from), self.replica_on(other, to))
                else {
                    return;
                };
                self.move_replica(partition, from, to, back.log_dir);
                self.move_replica(other, to, from, out.log_dir);
            }
            Action::Lead { partition, to } => {
                let Some(slot) = self.slot_of(partition, to) else {
                    return;
                };
                let first = self.base[partition as usize];
                let k = first + slot as u32;
                self.swap_slots(first, k);
            }
            Action::Dir {
                partition,
                broker,
                to_dir,
            } => {
                let Some(slot) = self.slot_of(partition, broker) else {
                    return;
                };
                let k = (self.base[partition as usize] + slot as u32) as usize;
                let disk = self.model.partitions[partition as usize].load.disk_bytes;
                self.dirs[broker as usize][usize::from(self.replicas[k].log_dir)] -= disk;
                self.dirs[broker as usize][usize::from(to_dir)] += disk;
                self.replicas[k].log_dir = to_dir;
            }
        }
    }

    /// True if `action` can be applied: it names an existing replica and moves nothing onto
    /// a broker that already holds the partition.
    pub fn is_valid(&self, action: &Action) -> bool {
        match *action {
            Action::Move {
                partition,
                from,
                to,
                to_dir,
            } => {
                from != to
                    && self.slot_of(partition, from).is_some()
                    && self.slot_of(partition, to).is_none()
                    && usize::from(to_dir) < self.dirs[to as usize].len()
            }
            Action::Lead { partition, to } => self.slot_of(partition, to).is_some_and(|s| s > 0),
            Action::Swap {
                partition,
                from,
                other,
                to,
            } => {
                partition != other
                    && from != to
                    && self.slot_of(partition, from).is_some()
                    && self.slot_of(partition, to).is_none()
                    && self.slot_of(other, to).is_some()
                    && self.slot_of(other, from).is_none()
            }
            Action::Dir {
                partition,
                broker,
                to_dir,
            } => {
                usize::from(to_dir) < self.dirs[broker as usize].len()
                    && self
                        .slot_of(partition, broker)
                        .is_some_and(|s| self.replicas(partition)[s].log_dir != to_dir)
            }
        }
    }

    /// Moves `partition`'s replica on `from` to directory `to_dir` of `to`, in the same slot,
    /// keeping every aggregate but the broker loads (which [`State::apply`] updates from the
    /// action's effects).
    fn move_replica(&mut self, partition: u32, from: u32, to: u32, to_dir: u16) {
        let Some(slot) = self.slot_of(partition, from) else {
            return;
        };
        let k = self.base[partition as usize] + slot as u32;
        let old = self.replicas[k as usize];
        let disk = self.model.partitions[partition as usize].load.disk_bytes;
        self.dirs[from as usize][usize::from(old.log_dir)] -= disk;
        self.dirs[to as usize][usize::from(to_dir)] += disk;
        self.unlist(k, from);
        self.replicas[k as usize] = Replica {
            broker: to,
            log_dir: to_dir,
        };
        let list = &mut self.lists[to as usize];
        self.pos[k as usize] = list.len() as u32;
        list.push(k);
        let topic = self.model.partitions[partition as usize].topic;
        self.topic_counts.add(topic, from, -1);
        self.topic_counts.add(topic, to, 1);
    }

    fn unlist(&mut self, k: u32, broker: u32) {
        let list = &mut self.lists[broker as usize];
        let at = self.pos[k as usize] as usize;
        list.swap_remove(at);
        if let Some(&moved) = list.get(at) {
            self.pos[moved as usize] = at as u32;
        }
    }

    /// Swaps two replicas of one partition (flat indices), keeping the broker lists right.
    fn swap_slots(&mut self, a: u32, b: u32) {
        if a == b {
            return;
        }
        let (ra, rb) = (self.replicas[a as usize], self.replicas[b as usize]);
        let (pa, pb) = (self.pos[a as usize], self.pos[b as usize]);
        self.lists[ra.broker as usize][pa as usize] = b;
        self.lists[rb.broker as usize][pb as usize] = a;
        self.pos.swap(a as usize, b as usize);
        self.replicas.swap(a as usize, b as usize);
    }
}

#[cfg(test)]
mod tests;
