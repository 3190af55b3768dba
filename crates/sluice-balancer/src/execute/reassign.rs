//! Moves between brokers: AlterPartitionReassignments, watched with ListPartitionReassignments
//! and checked against Metadata.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::marker::PhantomData;

use super::window::{Key, Moves, Settled};
use super::{Cluster, ExecuteError, ExecutionReport};
use crate::proposal::{PartitionChange, Placement};

/// The reassignments of one execution, of changes that live for `'c`.
pub(super) struct Reassignments<'a, 'c> {
    cluster: &'a mut Cluster,
    /// Per partition in flight: the brokers it goes to, and those it had.
    sets: HashMap<Key, (BTreeSet<i32>, BTreeSet<i32>)>,
    changes: PhantomData<&'c PartitionChange>,
}

impl<'a> Reassignments<'a, '_> {
    pub(super) fn new(cluster: &'a mut Cluster) -> Self {
        Reassignments {
            cluster,
            sets: HashMap::new(),
            changes: PhantomData,
        }
    }
}

fn brokers(v: &[Placement]) -> BTreeSet<i32> {
    v.iter().map(|a| a.broker).collect()
}

impl<'c> Moves for Reassignments<'_, 'c> {
    type Item = &'c PartitionChange;
    const NAME: &'static str = "reassignment";

    async fn start(
        &mut self,
        items: &[Self::Item],
        report: &mut ExecutionReport,
    ) -> Result<Vec<Key>, ExecuteError> {
        // New replicas are created straight in their proposed directory: a broker asked to
        // place a replica it does not host yet records the directory (and answers
        // REPLICA_NOT_AVAILABLE).
        let mut preferred: BTreeMap<i32, Vec<(String, String, i32)>> = BTreeMap::new();
        for c in items {
            for a in c.after.iter().filter(|a| !a.log_dir.is_empty()) {
                if c.before.iter().all(|b| b.broker != a.broker) {
                    preferred.entry(a.broker).or_default().push((
                        a.log_dir.clone(),
                        c.topic.clone(),
                        c.partition,
                    ));
                }
            }
        }
        for (broker, dirs) in preferred {
            let mut conn = self.cluster.broker(broker).await?;
            sluice_admin::alter_replica_log_dirs(&mut conn, &dirs).await?;
        }
        let changes: Vec<(String, i32, Option<Vec<i32>>)> = items
            .iter()
            .map(|c| {
                let after = c.after.iter().map(|a| a.broker).collect();
                (c.topic.clone(), c.partition, Some(after))
            })
            .collect();
        let mut started = Vec::new();
        for (t, p, outcome) in
            sluice_admin::alter_partition_reassignments(&mut self.cluster.bootstrap, &changes)
                .await?
        {
            match outcome {
                Ok(()) => {
                    if let Some(c) = items.iter().find(|c| c.topic == t && c.partition == p) {
                        let key = (t, p);
                        self.sets
                            .insert(key.clone(), (brokers(&c.after), brokers(&c.before)));
                        started.push(key);
                    }
                }
                Err(e) => report.failed.push(format!("{t}-{p}: reassignment: {e}")),
            }
        }
        Ok(started)
    }

    async fn settled(&mut self, in_flight: &[Key]) -> Result<Vec<(Key, Settled)>, ExecuteError> {
        let ongoing: BTreeSet<Key> =
            sluice_admin::list_partition_reassignments(&mut self.cluster.bootstrap)
                .await?
                .into_iter()
                .map(|(t, p, ..)| (t, p))
                .collect();
        let metadata = sluice_admin::cluster_metadata(&mut self.cluster.bootstrap).await?;
        let mut out = Vec::new();
        for key in in_flight.iter().filter(|k| !ongoing.contains(*k)) {
            let Some((target, original)) = self.sets.get(key) else {
                continue;
            };
            let now = metadata
                .topics
                .iter()
                .find(|t| t.name == key.0)
                .and_then(|t| t.partitions.iter().find(|p| p.index == key.1))
                .map(|p| p.replicas.iter().copied().collect::<BTreeSet<_>>());
            // A broker's metadata may lag the controller: anything but the target or the
            // original set is a reassignment still settling; look again at the next poll.
            let settled = match now {
                Some(now) if now == *target => Settled::Done,
                // Cancelled by `stop` (or by someone else).
                Some(now) if now == *original => Settled::Cancelled,
                _ => continue,
            };
            self.sets.remove(key);
            out.push((key.clone(), settled));
        }
        Ok(out)
    }

    fn count_done(report: &mut ExecutionReport) {
        report.reassigned += 1;
    }

    fn forget(&mut self, key: &Key) {
        self.sets.remove(key);
    }
}
