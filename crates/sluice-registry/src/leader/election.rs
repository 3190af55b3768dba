//! Leader election through the Kafka group protocol, as Confluent's registry does: every
//! instance joins one consumer group subscribed to the single-partition `_schemas` topic; the
//! member the group assigns partition 0 is the leader. Each member's `client.id` is its
//! advertised URL, so followers find the leader's URL by describing the group.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tracing::{info, warn};

use crate::error::RegistryError;

/// Who leads, as this instance currently sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderView {
    /// Nobody yet (the group is forming).
    Unknown,
    /// This instance.
    Local,
    /// Another instance, by `host:port`.
    Remote(String),
}

/// A running election participant.
pub struct Election {
    view: Arc<RwLock<LeaderView>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Election {
    /// Joins `group` on `topic` with `advertised_url` (`http://host:port`) as identity.
    pub fn join(
        bootstrap: &str,
        topic: &str,
        group: &str,
        advertised_url: &str,
    ) -> Result<Self, RegistryError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("client.id", advertised_url)
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .create()
            .map_err(|e| {
                RegistryError::Store(format!("cannot join election group {group}: {e}"))
            })?;
        consumer.subscribe(&[topic]).map_err(|e| {
            RegistryError::Store(format!("cannot join election group {group}: {e}"))
        })?;
        let view = Arc::new(RwLock::new(LeaderView::Unknown));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let view = Arc::clone(&view);
            let stop = Arc::clone(&stop);
            let (topic, group) = (topic.to_string(), group.to_string());
            std::thread::Builder::new()
                .name("registry-election".into())
                .spawn(move || elect_loop(consumer, &topic, &group, view, stop))
                .map_err(|e| RegistryError::Store(format!("cannot start the election: {e}")))?
        };
        Ok(Self {
            view,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The current view of the leader.
    pub fn view(&self) -> LeaderView {
        self.view.read().clone()
    }

    /// Waits up to `timeout` for a leader to be known.
    pub async fn wait_for_leader(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.view() == LeaderView::Unknown && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Leaves the group.
    pub fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().take() {
            if t.join().is_err() {
                warn!("the election thread panicked");
            }
        }
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn elect_loop(
    consumer: BaseConsumer,
    topic: &str,
    group: &str,
    view: Arc<RwLock<LeaderView>>,
    stop: Arc<AtomicBool>,
) {
    let mut last_check = Instant::now() - Duration::from_secs(10);
    while !stop.load(Ordering::Relaxed) {
        // Polling keeps the membership alive; records are not needed here, so the assigned
        // partition is paused.
        let _ = consumer.poll(Duration::from_millis(100));
        if last_check.elapsed() < Duration::from_millis(500) {
            continue;
        }
        last_check = Instant::now();
        let holds_partition = consumer
            .assignment()
            .map(|a| a.find_partition(topic, 0).is_some())
            .unwrap_or(false);
        let next = if holds_partition {
            if let Ok(a) = consumer.assignment() {
                let _ = consumer.pause(&a);
            }
            LeaderView::Local
        } else {
            match consumer.fetch_group_list(Some(group), Duration::from_secs(2)) {
                Ok(list) => list
                    .groups()
                    .iter()
                    .flat_map(|g| g.members())
                    .find(|m| m.assignment().is_some_and(assigns_a_partition))
                    .and_then(|m| host_port(m.client_id()))
                    .map_or(LeaderView::Unknown, LeaderView::Remote),
                Err(e) => {
                    warn!("cannot describe election group {group}: {e}");
                    LeaderView::Unknown
                }
            }
        };
        let mut current = view.write();
        if *current != next {
            info!(leader = ?next, "schema registry leader changed");
            *current = next;
        }
    }
}

/// `host:port` of an `http://host:port` URL.
pub fn host_port(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?.trim_end_matches('/');
    (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
}

/// Whether a consumer-protocol assignment (version, [topic, [partition]], user data) holds
/// at least one partition.
fn assigns_a_partition(bytes: &[u8]) -> bool {
    fn read<const N: usize>(b: &[u8], at: &mut usize) -> Option<[u8; N]> {
        let out = b.get(*at..*at + N)?.try_into().ok()?;
        *at += N;
        Some(out)
    }
    let mut at = 2; // version
    let Some(topics) = read::<4>(bytes, &mut at).map(i32::from_be_bytes) else {
        return false;
    };
    for _ in 0..topics.max(0) {
        let Some(len) = read::<2>(bytes, &mut at).map(i16::from_be_bytes) else {
            return false;
        };
        at += usize::try_from(len.max(0)).unwrap_or(0);
        match read::<4>(bytes, &mut at).map(i32::from_be_bytes) {
            Some(n) if n > 0 => return true,
            Some(n) => at += usize::try_from(n.max(0)).unwrap_or(0) * 4,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_assignments() {
        // version 0, one topic "_schemas" with partition 0, no user data.
        let mut b = vec![0, 0, 0, 0, 0, 1, 0, 8];
        b.extend_from_slice(b"_schemas");
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(assigns_a_partition(&b));
        assert!(!assigns_a_partition(&[
            0, 0, 0, 0, 0, 0, 255, 255, 255, 255
        ]));
        assert!(!assigns_a_partition(&[0, 0, 0, 0, 0, 1, 0, 50]));
        assert!(!assigns_a_partition(&[]));
    }

    #[test]
    fn host_port_needs_http() {
        assert_eq!(host_port("http://h:1/"), Some("h:1".to_string()));
        assert_eq!(host_port("https://h:1"), None);
    }

    proptest::proptest! {
        #[test]
        fn assignment_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = assigns_a_partition(&bytes);
        }
    }
}
