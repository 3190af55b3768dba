//! Goals, as Cruise Control has them: hard goals (rack awareness, capacities) that a proposal
//! must satisfy, and soft goals (distributions) it improves as far as the higher-priority goals
//! allow. The optimizer works through them in priority order; once a goal is optimized, every
//! later action must be [accepted](Goal::accepts) by it, so a lower-priority goal never undoes
//! a higher one.

mod capacity;
mod distribution;
mod intra_broker;
mod metric;
mod rack;
mod topic;

use serde::{Deserialize, Serialize};

pub use metric::Metric;

use crate::state::{Action, Effects, State};

/// Every goal, by Cruise Control's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GoalKind {
    /// Hard: replicas of a partition on distinct racks (as evenly as racks allow).
    RackAwareGoal,
    /// Hard: at most `max_replicas_per_broker` replicas per broker; none on a removed broker.
    ReplicaCapacityGoal,
    /// Hard: disk use under `capacity_threshold` of each broker's disk.
    DiskCapacityGoal,
    /// Hard: inbound bytes under `capacity_threshold` of each broker's network.
    NetworkInboundCapacityGoal,
    /// Hard: outbound bytes under `capacity_threshold` of each broker's network.
    NetworkOutboundCapacityGoal,
    /// Hard: CPU use under `capacity_threshold` of each broker's cores.
    CpuCapacityGoal,
    /// Soft: replica counts within `balance_threshold` of the average.
    ReplicaDistributionGoal,
    /// Soft: disk utilization within `balance_threshold` of the average.
    DiskUsageDistributionGoal,
    /// Soft: inbound network utilization within `balance_threshold` of the average.
    NetworkInboundUsageDistributionGoal,
    /// Soft: outbound network utilization within `balance_threshold` of the average.
    NetworkOutboundUsageDistributionGoal,
    /// Soft: CPU utilization within `balance_threshold` of the average.
    CpuUsageDistributionGoal,
    /// Soft: each topic's replicas spread evenly over the brokers.
    TopicReplicaDistributionGoal,
    /// Soft: leader counts within `balance_threshold` of the average.
    LeaderReplicaDistributionGoal,
    /// Soft: bytes produced to each broker's leaders within `balance_threshold` of the average.
    LeaderBytesInDistributionGoal,
    /// Soft: every partition led by its preferred (first) replica.
    PreferredLeaderElectionGoal,
    /// Hard: each log directory's disk use under `capacity_threshold` of its size.
    IntraBrokerDiskCapacityGoal,
    /// Soft: log directories of a broker within `balance_threshold` of its average use.
    IntraBrokerDiskUsageDistributionGoal,
}

impl GoalKind {
    /// Cruise Control's default priority order, highest first.
    pub const DEFAULT_ORDER: [GoalKind; 17] = [
        GoalKind::RackAwareGoal,
        GoalKind::ReplicaCapacityGoal,
        GoalKind::DiskCapacityGoal,
        GoalKind::NetworkInboundCapacityGoal,
        GoalKind::NetworkOutboundCapacityGoal,
        GoalKind::CpuCapacityGoal,
        GoalKind::IntraBrokerDiskCapacityGoal,
        GoalKind::ReplicaDistributionGoal,
        GoalKind::DiskUsageDistributionGoal,
        GoalKind::NetworkInboundUsageDistributionGoal,
        GoalKind::NetworkOutboundUsageDistributionGoal,
        GoalKind::CpuUsageDistributionGoal,
        GoalKind::TopicReplicaDistributionGoal,
        GoalKind::LeaderReplicaDistributionGoal,
        GoalKind::LeaderBytesInDistributionGoal,
        GoalKind::IntraBrokerDiskUsageDistributionGoal,
        GoalKind::PreferredLeaderElectionGoal,
    ];

    /// True for a goal a proposal must satisfy.
    pub fn is_hard(self) -> bool {
        matches!(
            self,
            GoalKind::RackAwareGoal
                | GoalKind::ReplicaCapacityGoal
                | GoalKind::DiskCapacityGoal
                | GoalKind::NetworkInboundCapacityGoal
                | GoalKind::NetworkOutboundCapacityGoal
                | GoalKind::CpuCapacityGoal
                | GoalKind::IntraBrokerDiskCapacityGoal
        )
    }

    /// The goal named `name` (Cruise Control's class name, with or without the `Goal` suffix,
    /// any case).
    pub fn parse(name: &str) -> Option<GoalKind> {
        let wanted = name.trim().to_ascii_lowercase();
        let wanted = wanted.strip_suffix("goal").unwrap_or(&wanted);
        GoalKind::DEFAULT_ORDER.into_iter().find(|g| {
            let own = format!("{g:?}").to_ascii_lowercase();
            own.strip_suffix("goal") == Some(wanted)
        })
    }

    /// Its name.
    pub fn name(self) -> String {
        format!("{self:?}")
    }
}

/// Thresholds, with Cruise Control's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GoalSettings {
    /// Share of a capacity the capacity goals allow (0.8).
    pub capacity_threshold: f64,
    /// How far above (and below) the average the distribution goals allow: 1.10 is ±10 %.
    pub balance_threshold: f64,
    /// The same for each topic's replicas per broker (3.0; Cruise's default).
    pub topic_balance_threshold: f64,
    /// Most replicas one broker may hold (10,000).
    pub max_replicas_per_broker: u32,
}

impl Default for GoalSettings {
    fn default() -> Self {
        GoalSettings {
            capacity_threshold: 0.8,
            balance_threshold: 1.10,
            topic_balance_threshold: 3.0,
            max_replicas_per_broker: 10_000,
        }
    }
}

/// A goal made ready for one model: its limits computed from the model's totals, which no
/// action changes.
#[derive(Debug, Clone)]
pub enum Goal {
    /// [`GoalKind::RackAwareGoal`].
    Rack(rack::RackAware),
    /// A capacity goal.
    Capacity(capacity::CapacityGoal),
    /// A distribution goal on a per-broker metric.
    Distribution(distribution::DistributionGoal),
    /// [`GoalKind::TopicReplicaDistributionGoal`].
    Topic(topic::TopicDistribution),
    /// [`GoalKind::IntraBrokerDiskCapacityGoal`] or
    /// [`GoalKind::IntraBrokerDiskUsageDistributionGoal`].
    IntraBroker(intra_broker::IntraBrokerGoal),
    /// [`GoalKind::PreferredLeaderElectionGoal`].
    PreferredLeader,
}

/// A broker a hard goal could not satisfy, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// The broker's node id, when the violation is a broker's.
    pub broker: Option<i32>,
    /// What is wrong.
    pub reason: String,
}

impl Goal {
    /// `kind` prepared for `state`'s model.
    pub fn prepare(kind: GoalKind, state: &State<'_>, settings: &GoalSettings) -> Goal {
        use GoalKind as K;
        match kind {
            K::RackAwareGoal => Goal::Rack(rack::RackAware::new(state)),
            K::ReplicaCapacityGoal => Goal::Capacity(capacity::CapacityGoal::new(
                kind,
                Metric::Replicas,
                state,
                settings,
            )),
            K::DiskCapacityGoal => Goal::Capacity(capacity::CapacityGoal::new(
                kind,
                Metric::Disk,
                state,
                settings,
            )),
            K::NetworkInboundCapacityGoal => Goal::Capacity(capacity::CapacityGoal::new(
                kind,
                Metric::NetworkIn,
                state,
                settings,
            )),
            K::NetworkOutboundCapacityGoal => Goal::Capacity(capacity::CapacityGoal::new(
                kind,
                Metric::NetworkOut,
                state,
                settings,
            )),
            K::CpuCapacityGoal => Goal::Capacity(capacity::CapacityGoal::new(
                kind,
                Metric::Cpu,
                state,
                settings,
            )),
            K::CpuUsageDistributionGoal => Goal::Distribution(distribution::DistributionGoal::new(
                kind,
                Metric::Cpu,
                state,
                settings,
            )),
            K::ReplicaDistributionGoal => Goal::Distribution(distribution::DistributionGoal::new(
                kind,
                Metric::Replicas,
                state,
                settings,
            )),
            K::DiskUsageDistributionGoal => Goal::Distribution(
                distribution::DistributionGoal::new(kind, Metric::Disk, state, settings),
            ),
            K::NetworkInboundUsageDistributionGoal => Goal::Distribution(
                distribution::DistributionGoal::new(kind, Metric::NetworkIn, state, settings),
            ),
            K::NetworkOutboundUsageDistributionGoal => Goal::Distribution(
                distribution::DistributionGoal::new(kind, Metric::NetworkOut, state, settings),
            ),
            K::LeaderReplicaDistributionGoal => Goal::Distribution(
                distribution::DistributionGoal::new(kind, Metric::Leaders, state, settings),
            ),
            K::LeaderBytesInDistributionGoal => Goal::Distribution(
                distribution::DistributionGoal::new(kind, Metric::LeaderBytesIn, state, settings),
            ),
            K::TopicReplicaDistributionGoal => {
                Goal::Topic(topic::TopicDistribution::new(state, settings))
            }
            K::IntraBrokerDiskCapacityGoal => {
                Goal::IntraBroker(intra_broker::IntraBrokerGoal::capacity(state, settings))
            }
            K::IntraBrokerDiskUsageDistributionGoal => {
                Goal::IntraBroker(intra_broker::IntraBrokerGoal::distribution(state, settings))
            }
            K::PreferredLeaderElectionGoal => Goal::PreferredLeader,
        }
    }

    /// Which goal this is.
    pub fn kind(&self) -> GoalKind {
        match self {
            Goal::Rack(_) => GoalKind::RackAwareGoal,
            Goal::Capacity(g) => g.kind,
            Goal::Distribution(g) => g.kind,
            Goal::Topic(_) => GoalKind::TopicReplicaDistributionGoal,
            Goal::IntraBroker(g) => g.kind,
            Goal::PreferredLeader => GoalKind::PreferredLeaderElectionGoal,
        }
    }

    /// How far `state` is from satisfying the goal: 0 when satisfied, larger is worse.
    pub fn score(&self, state: &State<'_>) -> f64 {
        match self {
            Goal::Rack(g) => g.score(state),
            Goal::Capacity(g) => g.score(state),
            Goal::Distribution(g) => g.score(state),
            Goal::Topic(g) => g.score(state),
            Goal::IntraBroker(g) => g.score(state),
            Goal::PreferredLeader => preferred_leader_score(state),
        }
    }

    /// True if `action` (whose load `effects` are given) leaves this goal no worse off.
    pub fn accepts(&self, state: &State<'_>, action: &Action, effects: &Effects) -> bool {
        match self {
            Goal::Rack(g) => g.accepts(state, action),
            Goal::Capacity(g) => g.accepts_effects(state, action, effects),
            Goal::Distribution(g) => g.accepts_effects(state, effects),
            Goal::Topic(g) => g.accepts(state, action),
            Goal::IntraBroker(g) => g.accepts(state, action),
            Goal::PreferredLeader => true,
        }
    }

    /// Improves `state` for this goal with actions every goal in `prior` accepts.
    pub fn optimize(&self, state: &mut State<'_>, prior: &[Goal]) {
        match self {
            Goal::Rack(g) => g.optimize(state, prior),
            Goal::Capacity(g) => g.optimize(state, prior),
            Goal::Distribution(g) => g.optimize(state, prior),
            Goal::Topic(g) => g.optimize(state, prior),
            Goal::IntraBroker(g) => g.optimize(state, prior),
            // Executing the proposal elects them.
            Goal::PreferredLeader => state.elect_preferred_leaders(),
        }
    }

    /// What keeps a hard goal from being satisfied, per broker.
    pub fn violations(&self, state: &State<'_>) -> Vec<Violation> {
        match self {
            Goal::Rack(g) => g.violations(state),
            Goal::Capacity(g) => g.violations(state),
            Goal::IntraBroker(g) => g.violations(state),
            _ => Vec::new(),
        }
    }
}

/// Partitions that will not be led by their preferred replica.
fn preferred_leader_score(state: &State<'_>) -> f64 {
    (0..state.model().partitions.len() as u32)
        .filter(|&p| state.leader_after(p) != state.replicas(p).first().map(|r| r.broker))
        .count() as f64
}

/// True if every goal in `goals` accepts `action`, which must also be valid and must not put
/// anything on a broker being removed (nor, while brokers are being added, on any other).
pub fn all_accept(goals: &[Goal], state: &State<'_>, action: &Action) -> bool {
    let refused_destination = match *action {
        Action::Lead { to, .. } => state.model().brokers[to as usize].excluded,
        _ => action
            .broker_moves()
            .any(|(_, _, to)| !state.may_receive(to)),
    };
    if refused_destination || !state.is_valid(action) {
        return false;
    }
    let effects = state.effects(action);
    goals.iter().all(|g| g.accepts(state, action, &effects))
}

/// The least used log directory of broker `b` (relative to its size when known).
pub fn emptiest_dir(state: &State<'_>, b: u32) -> u16 {
    let dirs = &state.model().brokers[b as usize].log_dirs;
    (0..dirs.len() as u16)
        .min_by(|&x, &y| {
            let use_of = |d: u16| {
                let used = state.dir_disk(b, d);
                dirs[usize::from(d)]
                    .capacity_bytes
                    .filter(|c| *c > 0.0)
                    .map_or(used, |c| used / c)
            };
            use_of(x).total_cmp(&use_of(y)).then(x.cmp(&y))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
