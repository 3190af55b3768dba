//! Applies a [`Proposal`] to a live cluster through the standard admin protocol: replica moves
//! between brokers with AlterPartitionReassignments, moves between the log directories of a
//! broker with AlterReplicaLogDirs, both with at most `concurrency` partitions moving at once and
//! tracked until done (ListPartitionReassignments, DescribeLogDirs); then preferred leader
//! elections. With a throttle, the replication and log-dir copy rates are capped for the
//! duration (`leader/follower.replication.throttled.rate` and `.replicas`,
//! `replica.alter.log.dirs.io.max.bytes.per.second`) and put back as they were at the end (see
//! `execute/throttle.rs`), also when the execution fails or is stopped.
//!
//! Stopping ([`stop`], `sluice balance stop`) needs no state of its own: it cancels every
//! reassignment in progress and sends every copy between log directories back to where its
//! partition lives, as Cruise Control's `stop_proposal_execution` does. A running execution
//! sees its moves cancelled and ends, reporting itself stopped.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use sluice_admin::{AdminConfig, AdminConnection, AdminError, ConfigResourceKind};

use crate::proposal::{PartitionChange, Proposal};

mod dirs;
mod reassign;
mod throttle;
mod window;

use dirs::{DirMove, DirMoves};
use reassign::Reassignments;

/// How to execute.
#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    /// Partitions moving at once.
    pub concurrency: usize,
    /// Bytes per second replication and log-dir copies may use, if capped.
    pub throttle: Option<u64>,
    /// How often progress is checked.
    pub poll: Duration,
    /// Longest wait for one move.
    pub move_timeout: Duration,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        ExecuteOptions {
            concurrency: 10,
            throttle: None,
            poll: Duration::from_millis(500),
            move_timeout: Duration::from_secs(3600),
        }
    }
}

/// Progress of an execution.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    /// What is being done.
    pub phase: &'static str,
    /// Partitions done in this phase.
    pub done: usize,
    /// Partitions in this phase.
    pub total: usize,
}

/// What an execution did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExecutionReport {
    /// Partitions moved to other brokers.
    pub reassigned: usize,
    /// Replicas moved between log directories.
    pub dir_moves: usize,
    /// Preferred leaders elected.
    pub leaders_elected: usize,
    /// Partitions that failed, with why.
    pub failed: Vec<String>,
    /// True if stopped before the end.
    pub stopped: bool,
    /// Throttles set for the execution.
    pub throttles: Vec<String>,
    /// True once they were put back as they were.
    pub throttles_restored: bool,
}

/// Why an execution could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// An admin request failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// The brokers' addresses, by node id, with a connection factory.
struct Cluster {
    config: AdminConfig,
    addresses: HashMap<i32, String>,
    bootstrap: AdminConnection,
}

impl Cluster {
    async fn open(config: &AdminConfig) -> Result<Self, AdminError> {
        let mut bootstrap = AdminConnection::connect(config).await?;
        let metadata = sluice_admin::cluster_metadata(&mut bootstrap).await?;
        Ok(Cluster {
            config: config.clone(),
            addresses: metadata
                .brokers
                .iter()
                .map(|b| (b.id, b.address()))
                .collect(),
            bootstrap,
        })
    }

    /// A connection to change `name`'s configs: the broker itself for a broker resource
    /// (brokers apply their own dynamic configs), any broker for a topic.
    async fn for_resource(
        &self,
        kind: ConfigResourceKind,
        name: &str,
    ) -> Result<AdminConnection, AdminError> {
        match (kind, name.parse::<i32>()) {
            (ConfigResourceKind::Broker, Ok(id)) => self.broker(id).await,
            _ => AdminConnection::connect(&self.config).await,
        }
    }

    async fn broker(&self, id: i32) -> Result<AdminConnection, AdminError> {
        let address =
            self.addresses.get(&id).cloned().ok_or_else(|| {
                AdminError::NotFound(format!("broker {id} is not in the cluster"))
            })?;
        AdminConnection::connect(&AdminConfig {
            bootstrap: address,
            ..self.config.clone()
        })
        .await
    }
}

/// Executes `proposal`, calling `progress` as it goes.
pub async fn execute(
    config: &AdminConfig,
    proposal: &Proposal,
    options: &ExecuteOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<ExecutionReport, ExecuteError> {
    let mut cluster = Cluster::open(config).await?;
    let mut report = ExecutionReport::default();
    let throttled = throttle::set(&mut cluster, proposal, options, &mut report).await;
    let outcome = run(&mut cluster, proposal, options, &mut report, &mut progress).await;
    // Throttles go once nothing moves any more: removing them under a reassignment that still
    // runs (after a timeout or an error) would let it use all the bandwidth.
    if !throttled.is_empty() && moves_in_flight(&mut cluster).await.unwrap_or(true) {
        // A later execution would take these for the operator's own values, so say what to
        // put back.
        report.failed.push(format!(
            "moves are still in progress, so the throttles stay; once they are done (or \
             `sluice balance stop` cancelled them) put back with IncrementalAlterConfigs: {}",
            throttle::describe_restore(&throttled)
        ));
        outcome?;
        return Ok(report);
    }
    let restored = throttle::restore(&mut cluster, throttled).await;
    report.throttles_restored = restored.is_ok();
    outcome?;
    restored?;
    Ok(report)
}

/// True while any reassignment or log-dir copy runs in the cluster.
async fn moves_in_flight(cluster: &mut Cluster) -> Result<bool, AdminError> {
    if !sluice_admin::list_partition_reassignments(&mut cluster.bootstrap)
        .await?
        .is_empty()
    {
        return Ok(true);
    }
    let mut ids: Vec<i32> = cluster.addresses.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let mut conn = cluster.broker(id).await?;
        let dirs = sluice_admin::describe_log_dirs(&mut conn).await?;
        if dirs.iter().any(|d| d.replicas.iter().any(|r| r.is_future)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// True if `failed` has an entry for the partition of `change`.
fn went_wrong(failed: &[String], change: &PartitionChange) -> bool {
    let prefix = format!("{}-{}:", change.topic, change.partition);
    failed.iter().any(|f| f.starts_with(&prefix))
}

async fn run(
    cluster: &mut Cluster,
    proposal: &Proposal,
    options: &ExecuteOptions,
    report: &mut ExecutionReport,
    progress: &mut impl FnMut(&Progress),
) -> Result<(), ExecuteError> {
    // A proposal made for another assignment would undo what changed since: such partitions
    // are left alone.
    let metadata = sluice_admin::cluster_metadata(&mut cluster.bootstrap).await?;
    let current: HashMap<(&str, i32), &[i32]> = metadata
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| ((t.name.as_str(), p.index), p.replicas.as_slice()))
        })
        .collect();
    let changes: Vec<&PartitionChange> = proposal
        .changes
        .iter()
        .filter(|c| {
            let before: Vec<i32> = c.before.iter().map(|b| b.broker).collect();
            let fresh = current.get(&(c.topic.as_str(), c.partition)) == Some(&before.as_slice());
            if !fresh {
                report.failed.push(format!(
                    "{}-{}: its replicas changed since the proposal was made; skipped",
                    c.topic, c.partition
                ));
            }
            fresh
        })
        .collect();
    let inter: Vec<&PartitionChange> = changes
        .iter()
        .copied()
        .filter(|c| c.moves_brokers())
        .collect();
    let mut reassignments = Reassignments::new(cluster);
    let phase = "moving replicas between brokers";
    if !window::run(&mut reassignments, inter, phase, options, report, progress).await? {
        report.stopped = true;
        return Ok(());
    }
    // Every replica into its proposed directory (new replicas too: they were created in the
    // destination broker's default directory).
    let mut dir_moves: Vec<DirMove> = Vec::new();
    for c in changes.iter().filter(|c| !went_wrong(&report.failed, c)) {
        for a in c.after.iter().filter(|a| !a.log_dir.is_empty()) {
            let same = c
                .before
                .iter()
                .any(|b| b.broker == a.broker && b.log_dir == a.log_dir);
            if !same {
                dir_moves.push((a.broker, a.log_dir.clone(), (c.topic.clone(), c.partition)));
            }
        }
    }
    let mut on_brokers = DirMoves::new(cluster);
    let phase = "moving replicas between log directories";
    if !window::run(&mut on_brokers, dir_moves, phase, options, report, progress).await? {
        report.stopped = true;
        return Ok(());
    }
    let leaders: Vec<(String, i32)> = changes
        .iter()
        .filter(|c| c.changes_leader() && !went_wrong(&report.failed, c))
        .map(|c| (c.topic.clone(), c.partition))
        .collect();
    if !leaders.is_empty() {
        progress(&Progress {
            phase: "electing preferred leaders",
            done: 0,
            total: leaders.len(),
        });
        for (t, p, outcome) in
            sluice_admin::elect_preferred_leaders(&mut cluster.bootstrap, &leaders).await?
        {
            match outcome {
                Ok(()) => report.leaders_elected += 1,
                Err(e) => report.failed.push(format!("{t}-{p}: leader election: {e}")),
            }
        }
    }
    progress(&Progress {
        phase: "done",
        done: 1,
        total: 1,
    });
    Ok(())
}

/// Stops every rebalancing move in the cluster: cancels reassignments in progress and sends
/// copies between log directories back to where their partitions live. Returns how many of
/// each were stopped.
pub async fn stop(config: &AdminConfig) -> Result<(usize, usize), ExecuteError> {
    let cluster = Cluster::open(config).await?;
    let mut bootstrap = AdminConnection::connect(config).await?;
    let ongoing = sluice_admin::list_partition_reassignments(&mut bootstrap).await?;
    let cancel: Vec<(String, i32, Option<Vec<i32>>)> =
        ongoing.into_iter().map(|(t, p, ..)| (t, p, None)).collect();
    if !cancel.is_empty() {
        sluice_admin::alter_partition_reassignments(&mut bootstrap, &cancel).await?;
    }
    let mut dir_moves = 0;
    let mut ids: Vec<i32> = cluster.addresses.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let mut conn = cluster.broker(id).await?;
        let dirs = sluice_admin::describe_log_dirs(&mut conn).await?;
        let mut back = Vec::new();
        for d in &dirs {
            for r in d.replicas.iter().filter(|r| r.is_future) {
                let live = dirs.iter().find(|x| {
                    x.replicas
                        .iter()
                        .any(|y| !y.is_future && y.topic == r.topic && y.partition == r.partition)
                });
                if let Some(live) = live {
                    back.push((live.path.clone(), r.topic.clone(), r.partition));
                }
            }
        }
        if !back.is_empty() {
            dir_moves += back.len();
            sluice_admin::alter_replica_log_dirs(&mut conn, &back).await?;
        }
    }
    Ok((cancel.len(), dir_moves))
}
