//! `sluice bench throughput`: produce and consume rates with N producers and M consumers.
//!
//! Phase 1: N producers send as fast as their clients accept for warm-up + duration; the rate
//! is acknowledged payload over the measurement window (after warm-up, before the final
//! flush). Phase 2: M consumers read everything back from the start, which a broker serves
//! from the page cache; the rate is payload over first-to-last message. With
//! `--partitions-sweep` phase 1 (and 2) repeat per partition count to expose per-partition
//! costs in the broker's CPU per MB. With `--transaction-size N` every producer commits a
//! transaction every N records and the produce rate counts committed records only.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::args::{size_label, Isolation, ThroughputArgs};
use crate::broker_proc::{broker_watcher, BrokerUsage};
use crate::client::{
    assign_manually, consumer_config, create_topic, is_queue_full, make_transactional,
    producer_config, topic_partitions,
};
use crate::error::{BenchError, Result};
use crate::progress::{window_end, window_start, BrokerMonitor, Progress};
use crate::report::{cpu_ms_per_mb, AssignmentMode, RateStats, ThroughputReport, ThroughputRun};
use crate::schedule::{sleep_until, OpenLoopSchedule};
use crate::stamp::{build_payload, now_ns};
use crate::txn::{Inflight, Transactor, TxnStats};

/// How long consumers may receive nothing (after the first message) before the phase ends.
const CONSUME_STALL: Duration = Duration::from_secs(10);

/// Message and byte counters updated by one writer and read by the coordinator.
#[derive(Default)]
struct Tally {
    msgs: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    first_ns: AtomicU64,
    last_ns: AtomicU64,
}

impl Tally {
    fn new() -> Self {
        Tally {
            first_ns: AtomicU64::new(u64::MAX),
            ..Tally::default()
        }
    }

    fn add(&self, bytes: usize) {
        self.add_many(1, bytes as u64);
    }

    fn add_many(&self, msgs: u64, bytes: u64) {
        self.msgs.fetch_add(msgs, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn snapshot(tallies: &[Arc<Tally>]) -> (u64, u64, u64) {
        tallies.iter().fold((0, 0, 0), |(m, b, e), t| {
            (
                m + t.msgs.load(Ordering::Relaxed),
                b + t.bytes.load(Ordering::Relaxed),
                e + t.errors.load(Ordering::Relaxed),
            )
        })
    }
}

/// Producer context counting acknowledged payload (and, for a transactional producer,
/// reporting deliveries to the transaction driver).
struct AckCounter {
    tally: Arc<Tally>,
    inflight: Option<Arc<Inflight>>,
}

impl ClientContext for AckCounter {}

impl ProducerContext for AckCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => self.tally.add(m.payload_len()),
            Err((e, _)) => {
                tracing::debug!(error = %e, "delivery failed");
                self.tally.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(inflight) = &self.inflight {
            inflight.delivered();
        }
    }
}

/// Pacing of one producer: `None` for as fast as possible.
type Pace = Option<OpenLoopSchedule>;

/// What one producer thread needs besides its client.
struct ProducerJob {
    topic: String,
    payload: Vec<u8>,
    pace: Pace,
    stop: Arc<AtomicBool>,
    /// Set while the measurement window is open; transaction timings are kept only then.
    measuring: Arc<AtomicBool>,
    /// For `--transaction-size`: the driver, and the tally of committed records.
    txn: Option<(Transactor, Arc<Tally>)>,
}

/// Sends until `stop` (or the schedule ends), then flushes, or commits the last transaction.
/// Returns the transaction timings of a transactional producer.
fn produce_loop(
    producer: ThreadedProducer<AckCounter>,
    mut job: ProducerJob,
) -> Result<Option<TxnStats>> {
    let mut seq = 0u64;
    while !job.stop.load(Ordering::Relaxed) {
        if let Some(schedule) = &job.pace {
            if seq >= schedule.len() {
                break;
            }
            sleep_until(schedule.due(seq));
            seq += 1;
        }
        if let Some((txn, _)) = job.txn.as_mut() {
            txn.before_send(&producer)?;
        }
        match producer.send(BaseRecord::<(), [u8]>::to(&job.topic).payload(&job.payload[..])) {
            Ok(()) => {
                if let Some((txn, committed)) = job.txn.as_mut() {
                    let measuring = job.measuring.load(Ordering::Relaxed);
                    if let Some(n) = txn.after_send(&producer, measuring)? {
                        committed.add_many(n, n * job.payload.len() as u64);
                    }
                }
            }
            Err((e, _)) if is_queue_full(&e) => std::thread::sleep(Duration::from_micros(50)),
            Err((e, _)) => {
                tracing::warn!(error = %e, "send failed");
                producer
                    .context()
                    .tally
                    .errors
                    .fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    match job.txn {
        Some((mut txn, committed)) => {
            if let Some(n) = txn.finish(&producer, false)? {
                committed.add_many(n, n * job.payload.len() as u64);
            }
            Ok(Some(txn.take_stats()))
        }
        None => {
            if let Err(e) = producer.flush(Duration::from_secs(60)) {
                tracing::warn!(error = %e, "not every message was acknowledged");
            }
            Ok(None)
        }
    }
}

fn consume_loop(consumer: BaseConsumer, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                let now = now_ns();
                tally.first_ns.fetch_min(now, Ordering::Relaxed);
                tally.last_ns.store(now, Ordering::Relaxed);
                tally.add(msg.payload_len());
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "consumer error");
                tally.errors.fetch_add(1, Ordering::Relaxed);
            }
            None => {}
        }
    }
}

/// Joins the producer threads and merges their transaction timings; the first producer
/// error (e.g. a transaction that could not even be aborted) fails the run.
fn join_producers(handles: Vec<JoinHandle<Result<Option<TxnStats>>>>) -> Result<Option<TxnStats>> {
    let mut merged: Option<TxnStats> = None;
    let mut first_error = None;
    let mut panicked = false;
    for h in handles {
        match h.join() {
            Ok(Ok(Some(stats))) => merged.get_or_insert_with(TxnStats::default).merge(&stats),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(_) => panicked = true,
        }
    }
    if panicked {
        return Err(BenchError::WorkerPanicked("bench-producer"));
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(merged),
    }
}

fn join_all(handles: Vec<JoinHandle<()>>, name: &'static str) -> Result<()> {
    let mut panicked = false;
    for h in handles {
        panicked |= h.join().is_err();
    }
    if panicked {
        return Err(BenchError::WorkerPanicked(name));
    }
    Ok(())
}

/// Shared state of one throughput run, for the progress line.
struct Live {
    phase: std::sync::Mutex<String>,
    produced: Vec<Arc<Tally>>,
    /// Records in committed transactions, per producer (transactional runs only).
    committed: Vec<Arc<Tally>>,
    consumed: std::sync::Mutex<Vec<Arc<Tally>>>,
}

struct ProducePhase {
    stats: RateStats,
    broker: Option<BrokerUsage>,
    /// Records a consumer of the run's isolation level should see.
    total_visible: u64,
    txn: Option<TxnStats>,
}

/// Creates producer `i` (transactional when asked for, with its own `transactional.id`).
fn start_producer(
    args: &ThroughputArgs,
    topic: &str,
    i: usize,
    tally: &Arc<Tally>,
) -> Result<(ThreadedProducer<AckCounter>, Option<Transactor>)> {
    let mut config = producer_config(
        &args.common,
        args.linger_ms,
        args.compression.as_config(),
        Some(args.batch_size),
        args.size,
    );
    if args.common.transaction_size.is_some() {
        make_transactional(&mut config, &format!("{topic}-txn-{i}"));
    }
    let inflight = args.common.transaction_size.map(|_| Inflight::new());
    let context = AckCounter {
        tally: tally.clone(),
        inflight: inflight.clone(),
    };
    let producer: ThreadedProducer<AckCounter> = config
        .create_with_context(context)
        .map_err(|e| BenchError::kafka("creating a producer", e))?;
    let txn = match (args.common.transaction_size, inflight) {
        (Some(n), Some(inflight)) => Some(Transactor::init(&producer, n, inflight)?),
        _ => None,
    };
    Ok((producer, txn))
}

fn produce_phase(
    args: &ThroughputArgs,
    topic: &str,
    live: &Live,
    monitor: Option<&BrokerMonitor>,
) -> Result<ProducePhase> {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let producers = live.produced.len().max(1);
    let start = Instant::now();
    // The schedule outlasts the run; the stop flag ends it. A paced send that falls behind
    // simply sends at once, so the achieved rate shows whether the target was reachable.
    let pace_len = (args.warmup + args.duration) * 2 + Duration::from_secs(60);
    for (i, tally) in live.produced.iter().enumerate() {
        let pace = (args.rate > 0.0)
            .then(|| OpenLoopSchedule::new(start, args.rate / producers as f64, pace_len));
        let (producer, transactor) = start_producer(args, topic, i, tally)?;
        let job = ProducerJob {
            topic: topic.to_string(),
            payload: build_payload(args.size, 0x5eed + i as u64),
            pace,
            stop: stop.clone(),
            measuring: measuring.clone(),
            txn: transactor.zip(live.committed.get(i).cloned()),
        };
        handles.push(
            std::thread::Builder::new()
                .name(format!("bench-producer-{i}"))
                .spawn(move || produce_loop(producer, job))
                .map_err(|e| BenchError::io("producer thread", e))?,
        );
    }
    // Transactional runs count committed records, plain ones acknowledged records.
    let counted = if args.common.transaction_size.is_some() {
        &live.committed
    } else {
        &live.produced
    };
    set_phase(live, "produce warm-up");
    std::thread::sleep(args.warmup);
    set_phase(live, "produce");
    let broker_start = window_start(monitor);
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    let (m0, b0, _) = Tally::snapshot(counted);
    let (_, _, e0) = Tally::snapshot(&live.produced);
    std::thread::sleep(args.duration);
    let (m1, b1, _) = Tally::snapshot(counted);
    let (_, _, e1) = Tally::snapshot(&live.produced);
    let secs = t0.elapsed().as_secs_f64();
    measuring.store(false, Ordering::Relaxed);
    let broker = window_end(monitor, broker_start);
    stop.store(true, Ordering::Relaxed);
    set_phase(live, "produce flush");
    let txn = join_producers(handles)?;
    let (total_acked, _, _) = Tally::snapshot(&live.produced);
    let (total_committed, _, _) = Tally::snapshot(&live.committed);
    let total_visible = match (txn.is_some(), args.common.isolation) {
        (true, Isolation::ReadCommitted) => total_committed,
        _ => total_acked,
    };
    Ok(ProducePhase {
        stats: RateStats::new(m1 - m0, b1 - b0, secs, e1 - e0),
        broker,
        total_visible,
        txn,
    })
}

/// Outcome of the consume phase; `GroupDidNotForm` asks the caller to retry with manual
/// assignment.
enum ConsumeOutcome {
    Done(RateStats, Option<BrokerUsage>),
    GroupDidNotForm,
}

fn consume_phase(
    args: &ThroughputArgs,
    topic: &str,
    target: u64,
    mode: AssignmentMode,
    group: &str,
    live: &Live,
    monitor: Option<&BrokerMonitor>,
) -> Result<ConsumeOutcome> {
    let common = &args.common;
    let m = args.consumers.max(1) as usize;
    let tallies: Vec<Arc<Tally>> = (0..m).map(|_| Arc::new(Tally::new())).collect();
    if let Ok(mut c) = live.consumed.lock() {
        c.clone_from(&tallies);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut partitions = Vec::new();
    for (i, tally) in tallies.iter().enumerate() {
        // Manual assignment also needs a group.id in librdkafka; it is never joined.
        let consumer: BaseConsumer = consumer_config(common, Some(group), true)
            .create()
            .map_err(|e| BenchError::kafka("creating a consumer", e))?;
        match mode {
            AssignmentMode::Group => consumer
                .subscribe(&[topic])
                .map_err(|e| BenchError::kafka(format!("subscribing to {topic}"), e))?,
            AssignmentMode::Manual => {
                if partitions.is_empty() {
                    partitions = topic_partitions(&consumer, topic)?;
                }
                let mine: Vec<i32> = partitions.iter().copied().skip(i).step_by(m).collect();
                if mine.is_empty() {
                    continue;
                }
                assign_manually(&consumer, topic, &mine, true)?;
            }
        }
        let (tally, stop) = (tally.clone(), stop.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("bench-consumer-{i}"))
                .spawn(move || consume_loop(consumer, tally, stop))
                .map_err(|e| BenchError::io("consumer thread", e))?,
        );
    }
    set_phase(live, "consume");
    let broker_start = window_start(monitor);
    let started = Instant::now();
    let mut last_count = 0;
    let mut last_change = Instant::now();
    let group_failed = loop {
        std::thread::sleep(Duration::from_millis(20));
        let (count, _, _) = Tally::snapshot(&tallies);
        if count >= target {
            break false;
        }
        if count != last_count {
            last_count = count;
            last_change = Instant::now();
        }
        if count == 0 && mode == AssignmentMode::Group && started.elapsed() > common.group_timeout {
            break true;
        }
        if count > 0 && last_change.elapsed() > CONSUME_STALL {
            tracing::warn!(
                missing = target - count,
                "consumers stopped receiving before reading everything produced"
            );
            break false;
        }
    };
    stop.store(true, Ordering::Relaxed);
    let broker = window_end(monitor, broker_start);
    join_all(handles, "bench-consumer")?;
    if group_failed {
        return Ok(ConsumeOutcome::GroupDidNotForm);
    }
    let (msgs, bytes, errors) = Tally::snapshot(&tallies);
    let first = tallies
        .iter()
        .map(|t| t.first_ns.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0);
    let last = tallies
        .iter()
        .map(|t| t.last_ns.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    let secs = last.saturating_sub(first) as f64 / 1e9;
    Ok(ConsumeOutcome::Done(
        RateStats::new(msgs, bytes, secs, errors),
        broker,
    ))
}

fn set_phase(live: &Live, phase: &str) {
    if let Ok(mut p) = live.phase.lock() {
        phase.clone_into(&mut p);
    }
}

fn progress_line(live: &Live, last: &mut (Instant, u64, u64)) -> String {
    let phase = live.phase.lock().map(|p| p.clone()).unwrap_or_default();
    let consumed = live.consumed.lock().map(|c| c.clone()).unwrap_or_default();
    let (pm, pb, pe) = Tally::snapshot(&live.produced);
    let (cm, cb, ce) = Tally::snapshot(&consumed);
    let committed = if live.committed.is_empty() {
        String::new()
    } else {
        let (txm, _, _) = Tally::snapshot(&live.committed);
        format!(" ({txm} committed)")
    };
    let now = Instant::now();
    let dt = now
        .saturating_duration_since(last.0)
        .as_secs_f64()
        .max(1e-3);
    let rate = |b: u64, prev: u64| b.saturating_sub(prev) as f64 / dt / 1e6;
    let line = format!(
        "throughput {phase}: produced {pm} msgs{committed} ({:.1} MB/s now), consumed {cm} msgs ({:.1} MB/s now), errors {}",
        rate(pb, last.1),
        rate(cb, last.2),
        pe + ce
    );
    *last = (now, pb, cb);
    line
}

/// Runs `sluice bench throughput` and returns its report.
pub fn run(args: &ThroughputArgs) -> Result<ThroughputReport> {
    let common = &args.common;
    common.validate()?;
    let fsync_baseline = crate::fsync_probe::baseline(common.fsync_baseline.as_deref())?;
    let run_tag = uuid::Uuid::new_v4().as_u64_pair().0;
    let counts = if args.partitions_sweep.is_empty() {
        vec![args.partitions]
    } else {
        args.partitions_sweep.clone()
    };
    let monitor = broker_watcher(&common.bootstrap, common.broker_pid).map(BrokerMonitor::start);
    let mut assignment = if common.no_group {
        AssignmentMode::Manual
    } else {
        AssignmentMode::Group
    };
    let mut runs = Vec::new();
    for partitions in counts {
        let topic = match &common.topic {
            Some(t) => t.clone(),
            None => format!("sluice-bench-tput-{run_tag:016x}-p{partitions}"),
        };
        create_topic(common, &topic, partitions)?;
        let live = Arc::new(Live {
            phase: std::sync::Mutex::new(String::new()),
            produced: (0..args.producers.max(1))
                .map(|_| Arc::new(Tally::new()))
                .collect(),
            committed: match common.transaction_size {
                Some(_) => (0..args.producers.max(1))
                    .map(|_| Arc::new(Tally::new()))
                    .collect(),
                None => Vec::new(),
            },
            consumed: std::sync::Mutex::new(Vec::new()),
        });
        let progress = {
            let live = live.clone();
            let mut last = (Instant::now(), 0, 0);
            Progress::start(!common.quiet, move || progress_line(&live, &mut last))
        };
        tracing::info!(topic, partitions, size = %size_label(args.size), "producing");
        let produced = produce_phase(args, &topic, &live, monitor.as_ref())?;
        let mut consume = None;
        let mut broker_consume = None;
        if args.consumers > 0 && produced.total_visible > 0 {
            let group = format!("sluice-bench-tput-{run_tag:016x}-p{partitions}");
            loop {
                match consume_phase(
                    args,
                    &topic,
                    produced.total_visible,
                    assignment,
                    &group,
                    &live,
                    monitor.as_ref(),
                )? {
                    ConsumeOutcome::Done(stats, broker) => {
                        consume = Some(stats);
                        broker_consume = broker;
                        break;
                    }
                    ConsumeOutcome::GroupDidNotForm => {
                        tracing::warn!(
                            "consumer group delivered nothing within --group-timeout; retrying with manual assignment"
                        );
                        assignment = AssignmentMode::Manual;
                    }
                }
            }
        }
        drop(progress);
        runs.push(ThroughputRun {
            topic,
            partitions,
            broker_cpu_ms_per_mb: cpu_ms_per_mb(produced.broker.as_ref(), produced.stats.bytes),
            txn: produced
                .txn
                .as_ref()
                .map(|t| t.summary(fsync_baseline.as_ref())),
            produce: produced.stats,
            consume,
            broker_produce: produced.broker,
            broker_consume,
        });
    }
    Ok(ThroughputReport {
        bootstrap: common.bootstrap.clone(),
        producers: args.producers.max(1),
        consumers: args.consumers,
        size_bytes: args.size,
        acks: common.acks.clone(),
        compression: args.compression.as_config().to_string(),
        linger_ms: args.linger_ms,
        batch_size: args.batch_size,
        assignment,
        isolation: common.isolation,
        transaction_size: common.transaction_size,
        fsync_baseline,
        runs,
    })
}
