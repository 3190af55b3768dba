//! Moves between the log directories of one broker: AlterReplicaLogDirs, watched with
//! DescribeLogDirs until each copy has been switched in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sluice_admin::AdminConnection;

use super::window::{Key, Moves, Settled};
use super::{ExecuteError, ExecutionReport};

/// The log-directory moves on one broker.
pub(super) struct DirMoves {
    conn: AdminConnection,
    /// Per partition in flight: the directory it goes to.
    targets: BTreeMap<Key, String>,
}

impl DirMoves {
    /// Moves on the broker `conn` reaches.
    pub(super) fn new(conn: AdminConnection) -> Self {
        DirMoves {
            conn,
            targets: BTreeMap::new(),
        }
    }
}

impl Moves for DirMoves {
    /// `(directory, topic, partition)`.
    type Item = (String, String, i32);
    const NAME: &'static str = "log dir move";

    async fn start(
        &mut self,
        items: &[Self::Item],
        report: &mut ExecutionReport,
    ) -> Result<Vec<Key>, ExecuteError> {
        let mut started = Vec::new();
        for (t, p, outcome) in sluice_admin::alter_replica_log_dirs(&mut self.conn, items).await? {
            match outcome {
                Ok(()) => {
                    if let Some((path, ..)) = items.iter().find(|(_, it, ip)| *it == t && *ip == p)
                    {
                        self.targets.insert((t.clone(), p), path.clone());
                        started.push((t, p));
                    }
                }
                Err(e) => report.failed.push(format!("{t}-{p}: log dir move: {e}")),
            }
        }
        Ok(started)
    }

    async fn settled(&mut self, in_flight: &[Key]) -> Result<Vec<(Key, Settled)>, ExecuteError> {
        let dirs = sluice_admin::describe_log_dirs(&mut self.conn).await?;
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
        let mut out = Vec::new();
        for key in in_flight.iter().filter(|k| !future.contains(*k)) {
            let Some(target) = self.targets.remove(key) else {
                continue;
            };
            // No copy any more: switched in, or sent back (`stop`).
            let settled = if live.get(key) == Some(&target.as_str()) {
                Settled::Done
            } else {
                Settled::Cancelled
            };
            out.push((key.clone(), settled));
        }
        Ok(out)
    }

    fn count_done(report: &mut ExecutionReport) {
        report.dir_moves += 1;
    }
}
