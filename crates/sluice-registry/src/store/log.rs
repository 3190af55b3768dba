//! The `_schemas` topic through the standard Kafka protocol: appends with acks=all, and a reader
//! thread that applies every record to the [`State`] and publishes how far it got, so a write is
//! answered only once it is durable and applied (read-your-writes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{info, warn};

use super::records::Record;
use super::state::State;
use crate::error::RegistryError;

/// How long a write waits for the broker and then for the reader before giving up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long start-up waits to read the topic to its end.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Handle on the `_schemas` topic.
pub struct SchemaLog {
    producer: FutureProducer,
    /// Client used only to ask for the end of the topic.
    marks: Arc<BaseConsumer>,
    topic: String,
    applied: watch::Receiver<i64>,
    stop: Arc<AtomicBool>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

/// Reader context: the end-of-partition events the reader asks for are not errors.
struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            warn!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for ReaderContext {}

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("client.id", "sluice-registry");
    cfg
}

impl SchemaLog {
    /// Creates the topic if needed (1 partition, compacted), starts the reader and waits until it
    /// has applied everything the topic held at start-up.
    pub async fn open(
        bootstrap: &str,
        topic: &str,
        replication_factor: i32,
        state: Arc<RwLock<State>>,
    ) -> Result<Self, RegistryError> {
        ensure_topic(bootstrap, topic, replication_factor).await?;
        let producer: FutureProducer = client_config(bootstrap)
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(|e| RegistryError::Store(format!("cannot create the producer: {e}")))?;
        let consumer: BaseConsumer<ReaderContext> = client_config(bootstrap)
            .set("group.id", "sluice-registry-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "20")
            .set("fetch.error.backoff.ms", "50")
            .create_with_context(ReaderContext)
            .map_err(|e| RegistryError::Store(format!("cannot create the reader: {e}")))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .map_err(|e| RegistryError::Store(e.to_string()))?;
        consumer
            .assign(&tpl)
            .map_err(|e| RegistryError::Store(format!("cannot read {topic}: {e}")))?;
        let (tx, applied) = watch::channel(-1_i64);
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let stop = Arc::clone(&stop);
            let topic = topic.to_string();
            std::thread::Builder::new()
                .name("registry-reader".into())
                .spawn(move || read_loop(consumer, &topic, state, tx, stop))
                .map_err(|e| RegistryError::Store(format!("cannot start the reader: {e}")))?
        };
        let marks: BaseConsumer = client_config(bootstrap)
            .create()
            .map_err(|e| RegistryError::Store(format!("cannot create the reader: {e}")))?;
        let log = Self {
            producer,
            marks: Arc::new(marks),
            topic: topic.to_string(),
            applied,
            stop,
            reader: Mutex::new(Some(reader)),
        };
        let (start, end) = watermarks(bootstrap, topic).await?;
        if end > start {
            log.wait_applied(end, STARTUP_TIMEOUT).await?;
        }
        info!(topic, records_end = end, "registry state loaded");
        Ok(log)
    }

    /// Appends `records` in order with acks=all and returns once the reader has applied them.
    pub async fn append(&self, records: Vec<Record>) -> Result<(), RegistryError> {
        let mut last = -1;
        for r in records {
            let mut fr: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&self.topic).partition(0).key(&r.key[..]);
            if let Some(v) = r.value.as_deref() {
                fr = fr.payload(v);
            }
            let delivery = self
                .producer
                .send(fr, WRITE_TIMEOUT)
                .await
                .map_err(|(e, _)| {
                    RegistryError::Store(format!("cannot write to {}: {e}", self.topic))
                })?;
            last = delivery.offset;
        }
        if last >= 0 {
            self.wait_applied(last + 1, WRITE_TIMEOUT).await?;
        }
        Ok(())
    }

    /// Waits until the reader has applied everything the topic holds now, so a new leader (or
    /// a leader that lost a race) decides on the latest state.
    pub async fn catch_up(&self) -> Result<(), RegistryError> {
        let marks = Arc::clone(&self.marks);
        let topic = self.topic.clone();
        let (low, high) =
            tokio::task::spawn_blocking(move || marks.fetch_watermarks(&topic, 0, WRITE_TIMEOUT))
                .await
                .map_err(|e| RegistryError::Store(e.to_string()))?
                .map_err(|e| {
                    RegistryError::Store(format!("cannot find the end of {}: {e}", self.topic))
                })?;
        if high > low {
            self.wait_applied(high, WRITE_TIMEOUT).await?;
        }
        Ok(())
    }

    /// Waits until the reader has applied every record before `next_offset`.
    async fn wait_applied(&self, next_offset: i64, timeout: Duration) -> Result<(), RegistryError> {
        let mut rx = self.applied.clone();
        let waited = tokio::time::timeout(timeout, async {
            rx.wait_for(|applied| *applied >= next_offset)
                .await
                .map(|_| ())
        })
        .await;
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(RegistryError::Store(
                "the _schemas reader stopped; restart the registry".into(),
            )),
            Err(_) => Err(RegistryError::Timeout(format!(
                "the registry did not read {} up to offset {next_offset} within {timeout:?}; check the Kafka cluster",
                self.topic
            ))),
        }
    }

    /// Stops the reader thread.
    pub fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.reader.lock().take() {
            if handle.join().is_err() {
                warn!("the _schemas reader thread panicked");
            }
        }
    }
}

impl Drop for SchemaLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_loop(
    consumer: BaseConsumer<ReaderContext>,
    topic: &str,
    state: Arc<RwLock<State>>,
    applied: watch::Sender<i64>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                if let Some(key) = msg.key() {
                    state.write().apply(key, msg.payload());
                }
                let next = msg.offset() + 1;
                applied.send_if_modified(|a| {
                    let grew = next > *a;
                    *a = (*a).max(next);
                    grew
                });
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {
                // Compaction can leave the last offsets without records: the position is the
                // truth at the end of the partition.
                if let Ok(pos) = consumer.position() {
                    if let Some(Offset::Offset(o)) =
                        pos.find_partition(topic, 0).map(|p| p.offset())
                    {
                        applied.send_if_modified(|a| {
                            let grew = o > *a;
                            *a = (*a).max(o);
                            grew
                        });
                    }
                }
            }
            Some(Err(e)) => {
                warn!("error reading {topic}: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            None => {}
        }
    }
}

async fn ensure_topic(
    bootstrap: &str,
    topic: &str,
    replication_factor: i32,
) -> Result<(), RegistryError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap)
        .create()
        .map_err(|e| RegistryError::Store(format!("cannot create the admin client: {e}")))?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(replication_factor))
        .set("cleanup.policy", "compact");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin.create_topics([&new], &opts).await.map_err(|e| {
        RegistryError::Store(format!("cannot create topic {topic} at {bootstrap}: {e}"))
    })?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(RegistryError::Store(format!(
                    "cannot create topic {name}: {code}; create it with 1 partition and cleanup.policy=compact"
                )))
            }
        }
    }
    Ok(())
}

async fn watermarks(bootstrap: &str, topic: &str) -> Result<(i64, i64), RegistryError> {
    let bootstrap = bootstrap.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client_config(&bootstrap)
            .create()
            .map_err(|e| RegistryError::Store(e.to_string()))?;
        let mut last_err = String::new();
        // A just-created topic may need a moment before its leader is known.
        for _ in 0..60 {
            match consumer.fetch_watermarks(&topic, 0, Duration::from_secs(5)) {
                Ok(marks) => return Ok(marks),
                Err(e) => last_err = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(RegistryError::Store(format!(
            "cannot find the end of {topic}: {last_err}"
        )))
    })
    .await
    .map_err(|e| RegistryError::Store(e.to_string()))?
}
