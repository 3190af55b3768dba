//! Following a compacted Kafka topic (configs, status, offsets): a thread reads it from the
//! start and hands every record to the owner's closure; [`TopicTail::catch_up`] waits until
//! everything written before the call has been applied (read-your-writes across workers).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::kafka::KafkaSettings;
use crate::error::ConnectError;

/// How often a tail that keeps failing to read says so.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// One record of the topic.
pub(crate) struct LogRecord<'a> {
    /// Key bytes.
    pub(crate) key: Option<&'a [u8]>,
    /// Value bytes; `None` is a tombstone.
    pub(crate) value: Option<&'a [u8]>,
}

type Apply = Box<dyn FnMut(LogRecord<'_>) + Send>;

/// A running follower of one topic.
pub(crate) struct TopicTail {
    topic: String,
    /// Asks for end offsets. Not the reading consumer: a broker answers one request per
    /// connection at a time, so queries behind its long-polling fetches would wait for them.
    ends: Arc<BaseConsumer>,
    /// Next offset per partition whose record has been applied.
    applied: Arc<Mutex<HashMap<i32, i64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TopicTail {
    /// Starts following every partition of `topic` from the beginning.
    pub(crate) fn start(
        kafka: &KafkaSettings,
        topic: &str,
        mut apply: Apply,
    ) -> Result<Self, ConnectError> {
        let consumer: BaseConsumer = kafka
            .client_config()
            .set("group.id", format!("sluice-connect-tail-{topic}"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("isolation.level", "read_committed")
            .create()
            .map_err(|e| ConnectError::Kafka(format!("cannot read {topic}: {e}")))?;
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .map_err(|e| ConnectError::Kafka(format!("cannot describe {topic}: {e}")))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(ConnectError::Kafka(format!(
                "topic {topic} has no partitions"
            )));
        }
        let mut assignment = TopicPartitionList::new();
        for p in &partitions {
            assignment
                .add_partition_offset(topic, *p, Offset::Beginning)
                .map_err(|e| ConnectError::Kafka(e.to_string()))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|e| ConnectError::Kafka(format!("cannot read {topic}: {e}")))?;
        let consumer = Arc::new(consumer);
        let ends: BaseConsumer = kafka
            .client_config()
            .set("group.id", format!("sluice-connect-tail-{topic}"))
            .create()
            .map_err(|e| ConnectError::Kafka(format!("cannot read {topic}: {e}")))?;
        let applied = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (consumer, applied, stop) = (consumer.clone(), applied.clone(), stop.clone());
            let topic = topic.to_owned();
            let name = format!("tail-{topic}");
            std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    // While the cluster is unreachable every poll reports it: one line per
                    // ERROR_LOG_INTERVAL, with how many were left out.
                    let mut last_logged: Option<Instant> = None;
                    let mut unlogged = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        match consumer.poll(Duration::from_millis(100)) {
                            Some(Ok(msg)) => apply(LogRecord {
                                key: msg.key(),
                                value: msg.payload(),
                            }),
                            Some(Err(e)) => {
                                if last_logged.is_some_and(|t| t.elapsed() < ERROR_LOG_INTERVAL) {
                                    unlogged += 1;
                                } else {
                                    tracing::warn!(topic, "reading failed: {e} ({unlogged} similar errors since the last report)");
                                    last_logged = Some(Instant::now());
                                    unlogged = 0;
                                }
                            }
                            None => {}
                        }
                        // After apply: a position reported here has been applied.
                        if let Ok(positions) = consumer.position() {
                            let mut applied = applied.lock();
                            for e in positions.elements() {
                                if let Offset::Offset(o) = e.offset() {
                                    applied.insert(e.partition(), o);
                                }
                            }
                        }
                    }
                })
                .map_err(|e| ConnectError::Kafka(format!("cannot start a reader thread: {e}")))?
        };
        Ok(Self {
            topic: topic.to_owned(),
            ends: Arc::new(ends),
            applied,
            stop,
            thread: Some(thread),
        })
    }

    /// Waits until every record written to the topic before this call has been applied.
    pub(crate) async fn catch_up(&self, timeout: Duration) -> Result<(), ConnectError> {
        let deadline = Instant::now() + timeout;
        let consumer = self.ends.clone();
        let topic = self.topic.clone();
        let ends = tokio::task::spawn_blocking(move || -> Result<Vec<(i32, i64)>, ConnectError> {
            let metadata = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .map_err(|e| ConnectError::Kafka(e.to_string()))?;
            let mut ends = Vec::new();
            for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
                let (_, high) = consumer
                    .fetch_watermarks(&topic, p.id(), Duration::from_secs(10))
                    .map_err(|e| ConnectError::Kafka(format!("end offsets of {topic}: {e}")))?;
                ends.push((p.id(), high));
            }
            Ok(ends)
        })
        .await
        .map_err(|e| ConnectError::Kafka(e.to_string()))??;
        loop {
            let behind = {
                let applied = self.applied.lock();
                ends.iter()
                    .any(|(p, end)| *end > 0 && applied.get(p).is_none_or(|a| a < end))
            };
            if !behind {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ConnectError::Kafka(format!(
                    "timed out reading {} to its end",
                    self.topic
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for TopicTail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
