//! The replication throttles of an execution: set before the first move and put back as they
//! were after the last, so that an operator's own throttles survive a rebalance.
//!
//! Rates (`leader/follower.replication.throttled.rate` on the brokers that send or receive
//! replicas, `replica.alter.log.dirs.io.max.bytes.per.second` on those copying between
//! directories) are the execution's for its duration. The throttled-replica lists of topics
//! (`leader/follower.replication.throttled.replicas`) get the moving replicas added to whatever
//! they held; a list of `*` throttles every replica already and is left alone. At the end each
//! config gets back the value set on that resource before (DescribeConfigs), or is deleted when
//! it had none, so an inherited default applies again.

use std::collections::{BTreeMap, BTreeSet};

use sluice_admin::{AdminError, ConfigResourceKind};

use super::{Cluster, ExecuteOptions, ExecutionReport};
use crate::proposal::Proposal;

/// A config the execution set: `(kind, resource, key, value it had before)`.
pub(super) type Throttle = (ConfigResourceKind, String, String, Option<String>);

const LEADER_RATE: &str = "leader.replication.throttled.rate";
const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
const DIR_RATE: &str = "replica.alter.log.dirs.io.max.bytes.per.second";
const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// What the execution wants: `(kind, resource, key, value)`.
type Wanted = (ConfigResourceKind, String, &'static str, String);

/// The throttles `proposal` needs at `rate` bytes per second.
fn wanted(proposal: &Proposal, rate: u64) -> Vec<Wanted> {
    let mut brokers: BTreeSet<i32> = BTreeSet::new();
    let mut leaders: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut followers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut dir_brokers: BTreeSet<i32> = BTreeSet::new();
    for c in &proposal.changes {
        if c.moves_brokers() {
            for b in &c.before {
                brokers.insert(b.broker);
                leaders
                    .entry(&c.topic)
                    .or_default()
                    .push(format!("{}:{}", c.partition, b.broker));
            }
            for a in c
                .after
                .iter()
                .filter(|a| c.before.iter().all(|b| b.broker != a.broker))
            {
                brokers.insert(a.broker);
                followers
                    .entry(&c.topic)
                    .or_default()
                    .push(format!("{}:{}", c.partition, a.broker));
            }
        }
        for a in c.dir_moves() {
            dir_brokers.insert(a.broker);
        }
    }
    let broker = |b: &i32, key| {
        (
            ConfigResourceKind::Broker,
            b.to_string(),
            key,
            rate.to_string(),
        )
    };
    let mut out: Vec<Wanted> = Vec::new();
    for b in &brokers {
        out.push(broker(b, LEADER_RATE));
        out.push(broker(b, FOLLOWER_RATE));
    }
    out.extend(dir_brokers.iter().map(|b| broker(b, DIR_RATE)));
    for (key, lists) in [(LEADER_REPLICAS, leaders), (FOLLOWER_REPLICAS, followers)] {
        for (topic, list) in lists {
            out.push((
                ConfigResourceKind::Topic,
                topic.to_owned(),
                key,
                list.join(","),
            ));
        }
    }
    out
}

/// The value to set for `key` given the one it has (`previous`); `None` to leave it alone.
fn merged(key: &str, previous: Option<&str>, ours: &str) -> Option<String> {
    if key != LEADER_REPLICAS && key != FOLLOWER_REPLICAS {
        return Some(ours.to_owned());
    }
    let previous = previous.map(str::trim).filter(|p| !p.is_empty());
    match previous {
        Some("*") => None,
        None => Some(ours.to_owned()),
        Some(previous) => {
            let mut seen = BTreeSet::new();
            let all: Vec<&str> = previous
                .split(',')
                .chain(ours.split(','))
                .map(str::trim)
                .filter(|r| !r.is_empty() && seen.insert(*r))
                .collect();
            Some(all.join(","))
        }
    }
}

/// Sets the throttles of `proposal` (if `options` has a rate); returns those set, with the
/// values to put back. A throttle whose current value cannot be read is not set, and says so
/// in the report: setting it blind could lose an operator's value.
pub(super) async fn set(
    cluster: &mut Cluster,
    proposal: &Proposal,
    options: &ExecuteOptions,
    report: &mut ExecutionReport,
) -> Vec<Throttle> {
    let Some(rate) = options.throttle else {
        return Vec::new();
    };
    let mut set = Vec::new();
    for (kind, name, key, value) in wanted(proposal, rate) {
        let result = match cluster.for_resource(kind, &name).await {
            Ok(mut conn) => set_one(&mut conn, kind, &name, key, &value).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(Some(previous)) => {
                report.throttles.push(format!("{kind:?} {name}: {key}"));
                set.push((kind, name, key.to_owned(), previous));
            }
            Ok(None) => report
                .throttles
                .push(format!("{kind:?} {name}: {key} (already *)")),
            Err(e) => report.failed.push(format!("throttle {key} on {name}: {e}")),
        }
    }
    set
}

/// Sets one throttle; returns the value it had (`Some(None)`: none), or `None` if it was
/// left alone.
async fn set_one(
    conn: &mut sluice_admin::AdminConnection,
    kind: ConfigResourceKind,
    name: &str,
    key: &str,
    value: &str,
) -> Result<Option<Option<String>>, AdminError> {
    let current = sluice_admin::describe_configs(conn, kind, name, &[key]).await?;
    let previous = current
        .into_iter()
        .find(|c| c.name == key && c.set_here)
        .and_then(|c| c.value);
    let Some(value) = merged(key, previous.as_deref(), value) else {
        return Ok(None);
    };
    sluice_admin::alter_configs(conn, kind, name, &[(key.to_owned(), Some(value))]).await?;
    Ok(Some(previous))
}

/// What putting `throttles` back means, for an operator who must do it by hand:
/// `Broker 1 key=value` or `Topic t key deleted`.
pub(super) fn describe_restore(throttles: &[Throttle]) -> String {
    throttles
        .iter()
        .map(|(kind, name, key, previous)| match previous {
            Some(value) => format!("{kind:?} {name} {key}={value}"),
            None => format!("{kind:?} {name} {key} deleted"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Puts every throttle back as it was; returns the first error, having tried them all.
pub(super) async fn restore(
    cluster: &mut Cluster,
    throttles: Vec<Throttle>,
) -> Result<(), AdminError> {
    let mut first_error = None;
    for (kind, name, key, previous) in throttles {
        let result = match cluster.for_resource(kind, &name).await {
            Ok(mut conn) => {
                sluice_admin::alter_configs(&mut conn, kind, &name, &[(key, previous)]).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_lists_are_joined_and_rates_replaced() {
        assert_eq!(merged(LEADER_RATE, Some("100"), "5"), Some("5".to_owned()));
        assert_eq!(
            merged(LEADER_REPLICAS, Some("0:1, 1:2"), "1:2,3:4"),
            Some("0:1,1:2,3:4".to_owned())
        );
        assert_eq!(merged(FOLLOWER_REPLICAS, Some("*"), "0:1"), None);
        assert_eq!(
            merged(FOLLOWER_REPLICAS, Some(""), "0:1"),
            Some("0:1".to_owned())
        );
        assert_eq!(
            merged(FOLLOWER_REPLICAS, None, "0:1"),
            Some("0:1".to_owned())
        );
    }
}
