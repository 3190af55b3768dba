//! Kafka client setup shared by the benchmarks: configs, topic creation and consumers.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::args::CommonArgs;
use crate::error::{BenchError, Result};
use crate::report::AssignmentMode;

/// Room for batch and record framing on top of the largest payload.
const FRAMING_SLACK: usize = 64 * 1024;

/// How long metadata and admin requests may take before the broker is declared unresponsive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

fn base_config(common: &CommonArgs) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &common.bootstrap)
        // Nagle's algorithm would hold small requests back for up to a delayed-ACK period.
        .set("socket.nagle.disable", "true");
    c
}

fn apply_overrides(mut c: ClientConfig, common: &CommonArgs) -> ClientConfig {
    for (k, v) in &common.client_config {
        c.set(k, v);
    }
    c
}

/// Producer settings for a benchmark; `-X` overrides are applied last.
pub fn producer_config(
    common: &CommonArgs,
    linger_ms: u32,
    compression: &str,
    batch_size: Option<u32>,
    max_payload: usize,
) -> ClientConfig {
    let mut c = base_config(common);
    c.set("acks", &common.acks)
        .set("linger.ms", linger_ms.to_string())
        .set("compression.type", compression)
        .set(
            "message.max.bytes",
            (max_payload + FRAMING_SLACK).max(1_000_000).to_string(),
        );
    if let Some(b) = batch_size {
        c.set("batch.size", b.to_string());
    }
    apply_overrides(c, common)
}

/// Makes a producer config transactional under `transactional_id` (which also turns on
/// idempotence in librdkafka); a `transactional.id` given with `-X` wins.
pub fn make_transactional(config: &mut ClientConfig, transactional_id: &str) {
    if config.get("transactional.id").is_none() {
        config.set("transactional.id", transactional_id);
    }
}

/// Consumer settings; `group` is `None` for manual assignment. `-X` overrides are applied last.
pub fn consumer_config(common: &CommonArgs, group: Option<&str>, from_start: bool) -> ClientConfig {
    let mut c = base_config(common);
    // fetch.wait.max.ms stays at its default: a broker that wakes parked fetches on append
    // answers at once, and one that does not should show up in the numbers.
    c.set("fetch.min.bytes", "1")
        .set("isolation.level", common.isolation.as_config())
        .set("enable.auto.commit", "false")
        .set(
            "auto.offset.reset",
            if from_start { "earliest" } else { "latest" },
        );
    if let Some(g) = group {
        c.set("group.id", g);
    }
    apply_overrides(c, common)
}

/// Creates `topic` with `partitions` partitions (an existing topic is fine) and waits until its
/// metadata shows every partition with a leader.
pub fn create_topic(common: &CommonArgs, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = apply_overrides(base_config(common), common)
        .create()
        .map_err(|e| BenchError::kafka("creating the admin client", e))?;
    let new_topic = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(common.replication_factor),
    );
    let opts = AdminOptions::new()
        .operation_timeout(Some(REQUEST_TIMEOUT))
        .request_timeout(Some(REQUEST_TIMEOUT));
    match futures::executor::block_on(admin.create_topics([&new_topic], &opts)) {
        Ok(results) => {
            for r in results {
                match r {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((name, code)) => tracing::warn!(
                        topic = %name, error = %code,
                        "CreateTopics failed; relying on the broker to auto-create the topic"
                    ),
                }
            }
        }
        Err(e) => tracing::warn!(
            error = %e,
            "CreateTopics request failed; relying on the broker to auto-create the topic"
        ),
    }
    wait_for_partitions(common, topic, partitions)
}

fn wait_for_partitions(common: &CommonArgs, topic: &str, partitions: i32) -> Result<()> {
    let mut config = consumer_config(common, None, true);
    // Lets brokers without CreateTopics (or where it is not allowed) auto-create the topic.
    config.set("allow.auto.create.topics", "true");
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| BenchError::kafka("creating a metadata client", e))?;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    loop {
        let ready = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(2))
            .ok()
            .and_then(|md| {
                md.topics().iter().find(|t| t.name() == topic).map(|t| {
                    t.error().is_none()
                        && t.partitions().len() >= partitions as usize
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            })
            .unwrap_or(false);
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Timeout(format!(
                "waiting for topic {topic} to have {partitions} partition(s) with leaders \
                 (if the broker cannot create topics, create it yourself and pass --topic)"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Partition ids of `topic` according to the broker's metadata.
pub fn topic_partitions(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>> {
    let md = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(|e| BenchError::kafka(format!("fetching metadata of {topic}"), e))?;
    let ids: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if ids.is_empty() {
        return Err(BenchError::Timeout(format!(
            "finding partitions of topic {topic}"
        )));
    }
    Ok(ids)
}

/// Assigns `partitions` of `topic` to a consumer, starting at the beginning or at the current
/// end (high watermark, read synchronously so no later message can be missed).
pub fn assign_manually(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    from_start: bool,
) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        let offset = if from_start {
            Offset::Beginning
        } else {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
                .map_err(|e| {
                    BenchError::kafka(format!("reading the end offset of {topic}/{p}"), e)
                })?;
            Offset::Offset(high)
        };
        tpl.add_partition_offset(topic, p, offset)
            .map_err(|e| BenchError::kafka("building the assignment", e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| BenchError::kafka(format!("assigning partitions of {topic}"), e))
}

/// Polls a subscribed consumer until the group assigns it at least one partition. Messages
/// polled meanwhile are dropped: callers subscribe before producing.
pub fn wait_for_assignment(consumer: &BaseConsumer, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
            tracing::debug!(error = %e, "consumer error while joining the group");
        }
        if consumer
            .assignment()
            .map(|a| a.count() > 0)
            .unwrap_or(false)
        {
            return true;
        }
    }
    false
}

/// A consumer of all partitions of `topic`: in consumer group `group` unless `no_group` is set
/// or the group does not assign partitions within `group_timeout`, in which case it falls back
/// to manual assignment (and says so). Reads from the start when `from_start`, else from the
/// current end of each partition.
pub fn single_consumer(
    common: &CommonArgs,
    topic: &str,
    group: &str,
    from_start: bool,
) -> Result<(BaseConsumer, AssignmentMode)> {
    // librdkafka needs a group.id even for manual assignment; without subscribe() the group is
    // never joined, and with auto-commit off and explicit offsets it is never asked for offsets.
    let consumer: BaseConsumer = consumer_config(common, Some(group), from_start)
        .create()
        .map_err(|e| BenchError::kafka("creating the consumer", e))?;
    if !common.no_group {
        consumer
            .subscribe(&[topic])
            .map_err(|e| BenchError::kafka(format!("subscribing to {topic}"), e))?;
        if wait_for_assignment(&consumer, common.group_timeout) {
            if !from_start {
                seek_to_end(&consumer)?;
            }
            return Ok((consumer, AssignmentMode::Group));
        }
        tracing::warn!(
            group,
            timeout = ?common.group_timeout,
            "consumer group did not assign partitions in time; falling back to manual assignment (use --no-group to skip the attempt)"
        );
        consumer.unsubscribe();
    }
    let partitions = topic_partitions(&consumer, topic)?;
    assign_manually(&consumer, topic, &partitions, from_start)?;
    Ok((consumer, AssignmentMode::Manual))
}

/// Moves every assigned partition to its current high watermark. `auto.offset.reset=latest`
/// alone is resolved asynchronously, so messages produced right after the group forms could
/// be skipped.
fn seek_to_end(consumer: &BaseConsumer) -> Result<()> {
    let assignment = consumer
        .assignment()
        .map_err(|e| BenchError::kafka("reading the group assignment", e))?;
    for el in assignment.elements() {
        let (_, high) = consumer
            .fetch_watermarks(el.topic(), el.partition(), REQUEST_TIMEOUT)
            .map_err(|e| BenchError::kafka("reading end offsets", e))?;
        seek_when_ready(consumer, el.topic(), el.partition(), high)?;
    }
    Ok(())
}

/// Seeks `topic`/`partition` to `offset`. Right after a group assignment librdkafka may not
/// have started the partition's fetcher yet and refuses the seek with "Erroneous state"
/// (`__STATE`); polling lets it finish, so the seek is retried until `REQUEST_TIMEOUT`.
fn seek_when_ready(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<()> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    loop {
        match consumer.seek(topic, partition, Offset::Offset(offset), REQUEST_TIMEOUT) {
            Ok(()) => return Ok(()),
            Err(e) if is_not_ready(&e) && Instant::now() < deadline => {
                tracing::debug!(topic, partition, error = %e, "partition not ready to seek; polling");
                // Callers subscribe before producing, so nothing polled here is lost.
                if let Some(Err(e)) = consumer.poll(Duration::from_millis(50)) {
                    tracing::debug!(error = %e, "consumer error while waiting to seek");
                }
            }
            Err(e) => {
                return Err(BenchError::kafka(
                    "seeking to the end of the assigned partitions",
                    e,
                ))
            }
        }
    }
}

/// The error librdkafka gives a seek on a partition whose fetcher is not started yet.
fn is_not_ready(e: &rdkafka::error::KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::State))
}

/// Error kinds that mean the client's local queue is full and the send should be retried.
pub fn is_queue_full(e: &rdkafka::error::KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::QueueFull))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn common(args: &[&str]) -> CommonArgs {
        let mut all = vec!["test"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all) {
            Ok(c) => c.common,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn overrides_win_and_defaults_are_latency_friendly() {
        let c = common(&["-b", "127.0.0.1:1", "--acks", "1", "-X", "linger.ms=7"]);
        let p = producer_config(&c, 0, "lz4", None, 1_000_000);
        assert_eq!(p.get("bootstrap.servers"), Some("127.0.0.1:1"));
        assert_eq!(p.get("acks"), Some("1"));
        assert_eq!(
            p.get("linger.ms"),
            Some("7"),
            "-X overrides the bench default"
        );
        assert_eq!(p.get("compression.type"), Some("lz4"));
        assert_eq!(p.get("socket.nagle.disable"), Some("true"));
        assert_eq!(p.get("message.max.bytes"), Some("1065536"));
        let k = consumer_config(&c, Some("g"), false);
        assert_eq!(k.get("group.id"), Some("g"));
        assert_eq!(k.get("auto.offset.reset"), Some("latest"));
        assert_eq!(k.get("fetch.min.bytes"), Some("1"));
        assert_eq!(consumer_config(&c, None, true).get("group.id"), None);
        assert_eq!(k.get("isolation.level"), Some("read_committed"));
    }

    #[test]
    fn transactional_producers_and_isolation() {
        let c = common(&[
            "--isolation",
            "read_uncommitted",
            "--transaction-size",
            "100",
        ]);
        assert_eq!(
            consumer_config(&c, None, true).get("isolation.level"),
            Some("read_uncommitted")
        );
        let mut p = producer_config(&c, 5, "none", None, 1000);
        make_transactional(&mut p, "bench-0");
        assert_eq!(p.get("transactional.id"), Some("bench-0"));
        let c = common(&["-X", "transactional.id=mine"]);
        let mut p = producer_config(&c, 5, "none", None, 1000);
        make_transactional(&mut p, "bench-0");
        assert_eq!(p.get("transactional.id"), Some("mine"), "-X wins");
    }

    #[test]
    fn acks_default_to_all() {
        let c = common(&[]);
        assert_eq!(c.acks, "all");
        assert!(!c.no_group);
    }
}
