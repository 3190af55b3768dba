//! Moves between the log directories of a broker: AlterReplicaLogDirs, watched with
//! DescribeLogDirs until each copy has been switched in. One window serves every broker, so
//! the concurrency limit and the progress count hold for the whole phase.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use sluice_admin::AdminConnection;

use super::window::{Key, Moves, Settled};
use super::{Cluster, ExecuteError, ExecutionReport};

/// One move: the broker, the directory the replica goes to, and its partition.
pub(super) type DirMove = (i32, String, Key);

/// The log-directory moves of one execution.
pub(super) struct DirMoves<'a> {
    cluster: &'a Cluster,
    /// A connection per broker with moves, opened on first use.
    conns: HashMap<i32, AdminConnection>,
    /// Per partition in flight: the broker and the directory it goes to.
    targets: BTreeMap<Key, (i32, String)>,
}

impl<'a> DirMoves<'a> {
    pub(super) fn new(cluster: &'a Cluster) -> Self {
        DirMoves {
            cluster,
            conns: HashMap::new(),
            targets: BTreeMap::new(),
        }
    }

    async fn conn(&mut self, broker: i32) -> Result<&mut AdminConnection, ExecuteError> {
        Ok(match self.conns.entry(broker) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(slot) => slot.insert(self.cluster.broker(broker).await?),
        })
    }
}

impl Moves for DirMoves<'_> {
    type Item = DirMove;
    const NAME: &'static str = "log dir move";

    async fn start(
        &mut self,
        items: &[Self::Item],
        report: &mut ExecutionReport,
    ) -> Result<Vec<Key>, ExecuteError> {
        let mut by_broker: BTreeMap<i32, Vec<(String, String, i32)>> = BTreeMap::new();
        for (broker, dir, (t, p)) in items {
            by_broker
                .entry(*broker)
                .or_default()
                .push((dir.clone(), t.clone(), *p));
        }
        let mut started = Vec::new();
        for (broker, moves) in by_broker {
            let conn = self.conn(broker).await?;
            for (t, p, outcome) in sluice_admin::alter_replica_log_dirs(conn, &moves).await? {
                match outcome {
                    Ok(()) => {
                        if let Some((dir, ..)) =
                            moves.iter().find(|(_, mt, mp)| *mt == t && *mp == p)
                        {
                            self.targets.insert((t.clone(), p), (broker, dir.clone()));
                            started.push((t, p));
                        }
                    }
                    Err(e) => report.failed.push(format!("{t}-{p}: log dir move: {e}")),
                }
            }
        }
        Ok(started)
    }

    async fn settled(&mut self, in_flight: &[Key]) -> Result<Vec<(Key, Settled)>, ExecuteError> {
        let brokers: BTreeSet<i32> = in_flight
            .iter()
            .filter_map(|k| self.targets.get(k).map(|(b, _)| *b))
            .collect();
        let mut out = Vec::new();
        for broker in brokers {
            let dirs = sluice_admin::describe_log_dirs(self.conn(broker).await?).await?;
            let mut live: HashMap<Key, &str> = HashMap::new();
            let mut future: BTreeSet<Key> = BTreeSet::new();
            for d in &dirs {
                for r in &d.replicas {
                    let key = (r.topic.clone(), r.partition);
                    if r.is_future {
                        future.insert(key);
                    } else {
                        live.insert(key, d.path.as_str());
                    }
                }
            }
            for key in in_flight.iter().filter(|k| !future.contains(*k)) {
                let target = match self.targets.get(key) {
                    Some((b, dir)) if *b == broker => dir.clone(),
                    _ => continue,
                };
                self.targets.remove(key);
                // No copy any more: switched in, or sent back (`stop`).
                let settled = if live.get(key) == Some(&target.as_str()) {
                    Settled::Done
                } else {
                    Settled::Cancelled
                };
                out.push((key.clone(), settled));
            }
        }
        Ok(out)
    }

    fn count_done(report: &mut ExecutionReport) {
        report.dir_moves += 1;
    }

    fn forget(&mut self, key: &Key) {
        self.targets.remove(key);
    }
}
