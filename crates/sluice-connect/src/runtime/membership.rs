//! The workers of one Connect cluster (`group.id`) find each other through the Kafka group
//! protocol, as Kafka Connect's distributed mode does: every worker is a member of the group
//! (protocol type `connect`), the coordinator notices a worker that stops heartbeating, and
//! the elected leader hands every member its place in the sorted member list. Each worker
//! then runs the tasks whose position in the sorted task list falls on its place, so the
//! workers share tasks evenly and take over a dead worker's within the session timeout.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use sluice_admin::{GroupMember, GroupMemberInfo, GroupTimeouts, Heartbeat};
use tokio::sync::watch;

use super::kafka::KafkaSettings;

/// Kafka's group protocol type for Connect workers.
const PROTOCOL_TYPE: &str = "connect";
/// This runtime's assignment protocol (Sluice workers only share a group with each other).
const PROTOCOL: &str = "sluice-v1";
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUTS: GroupTimeouts = GroupTimeouts {
    session_ms: 10_000,
    rebalance_ms: 30_000,
};

/// This worker's place in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// Its index among the workers.
    pub(crate) index: usize,
    /// Every worker's URL, in member order.
    pub(crate) workers: Vec<String>,
}

impl Assignment {
    /// Whether the `position`-th item of a sorted list is this worker's.
    pub(crate) fn owns(&self, position: usize) -> bool {
        !self.workers.is_empty() && position % self.workers.len() == self.index
    }
}

/// The leader's rule: members in member-id order, each told its index.
fn assign(members: &[GroupMemberInfo]) -> Vec<(String, Bytes)> {
    let mut sorted: Vec<&GroupMemberInfo> = members.iter().collect();
    sorted.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let workers: Vec<String> = sorted
        .iter()
        .map(|m| String::from_utf8_lossy(&m.metadata).into_owned())
        .collect();
    sorted
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let body = json!({ "index": i, "workers": workers });
            (m.member_id.clone(), Bytes::from(body.to_string()))
        })
        .collect()
}

fn parse(assignment: &[u8]) -> Option<Assignment> {
    let v: Value = serde_json::from_slice(assignment).ok()?;
    let index = usize::try_from(v.get("index")?.as_u64()?).ok()?;
    let workers: Vec<String> = v
        .get("workers")?
        .as_array()?
        .iter()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect();
    (index < workers.len()).then_some(Assignment { index, workers })
}

/// Keeps this worker in group `group` until `stop` turns true, publishing its assignment
/// (`None` while it is not a member, e.g. when the coordinator cannot be reached for longer
/// than the session timeout: its tasks may already run elsewhere).
pub(crate) async fn run(
    kafka: KafkaSettings,
    group: String,
    worker_url: String,
    out: watch::Sender<Option<Assignment>>,
    mut stop: watch::Receiver<bool>,
) {
    let session = Duration::from_millis(TIMEOUTS.session_ms as u64);
    let mut last_ok = Instant::now();
    let mut backoff = Duration::from_millis(200);
    while !*stop.borrow() {
        let member = async {
            let config = kafka
                .admin_config(&kafka.bootstrap)
                .map_err(|e| sluice_admin::AdminError::Config(e.to_string()))?;
            GroupMember::connect(
                &config,
                &group,
                PROTOCOL_TYPE,
                PROTOCOL,
                Bytes::from(worker_url.clone()),
                TIMEOUTS,
            )
            .await
        };
        let mut member = match member.await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(group, "cannot reach the group coordinator: {e}");
                if last_ok.elapsed() > session {
                    out.send_replace(None);
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        // Joined and heartbeating until an error; a rebalance only means joining again.
        let error = loop {
            let membership = match member.join(&assign).await {
                Ok(m) => m,
                Err(e) => break e,
            };
            last_ok = Instant::now();
            let assignment = parse(&membership.assignment);
            tracing::info!(
                group,
                generation = membership.generation,
                ?assignment,
                "joined the Connect cluster"
            );
            out.send_replace(assignment);
            let rebalance = loop {
                tokio::select! {
                    _ = tokio::time::sleep(HEARTBEAT_INTERVAL) => {}
                    _ = stop.changed() => {
                        let _ = member.leave().await;
                        return;
                    }
                }
                match member.heartbeat().await {
                    Ok(Heartbeat::Stable) => last_ok = Instant::now(),
                    Ok(Heartbeat::Rebalance) => break None,
                    Err(e) => break Some(e),
                }
            };
            if let Some(e) = rebalance {
                break e;
            }
        };
        tracing::warn!(group, "lost the group coordinator: {error}");
        if last_ok.elapsed() > session {
            out.send_replace(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_get_their_places() {
        let members = vec![
            GroupMemberInfo {
                member_id: "b".into(),
                metadata: Bytes::from_static(b"http://w2"),
            },
            GroupMemberInfo {
                member_id: "a".into(),
                metadata: Bytes::from_static(b"http://w1"),
            },
        ];
        let out = assign(&members);
        let b = out
            .iter()
            .find(|(m, _)| m == "b")
            .map(|(_, a)| parse(a).unwrap())
            .unwrap();
        assert_eq!(
            b,
            Assignment {
                index: 1,
                workers: vec!["http://w1".into(), "http://w2".into()]
            }
        );
        assert!(b.owns(1) && b.owns(3) && !b.owns(2));
        assert_eq!(parse(b"{\"index\": 5, \"workers\": []}"), None);
    }
}
