//! `sluice bench e2e`: end-to-end latency per payload size.
//!
//! One producer thread sends stamped payloads on an open-loop schedule (or as fast as possible
//! in saturation mode); one consumer thread in the same process records arrival time minus the
//! stamped due time; the producer's delivery reports give the acknowledgement latency. Sizes
//! run one after another, each with its own warm-up. With `--transaction-size N` the producer
//! is transactional and commits every N records (blocking the sender while the commit runs,
//! which the open-loop schedule counts as latency of the records due meanwhile).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::args::{size_label, E2eArgs};
use crate::broker_proc::broker_watcher;
use crate::client::{
    create_topic, is_queue_full, make_transactional, producer_config, single_consumer,
};
use crate::error::{BenchError, Result};
use crate::progress::{window_end, window_start, BrokerMonitor, Progress};
use crate::report::{E2eReport, E2eRow, LoadMode, TxnSummary};
use crate::schedule::{sleep_until, tighten_timer_slack, OpenLoopSchedule};
use crate::stamp::{build_payload, instant_ns, now_ns, Stamp};
use crate::stats::{LatencyHistogram, LatencySummary};
use crate::txn::{Inflight, Transactor};

/// How long the consumer may go without receiving anything before outstanding messages are
/// declared lost.
const DRAIN_STALL: Duration = Duration::from_secs(5);

/// librdkafka setting bounding the producer's local queue in saturation mode.
const SATURATION_BUFFER_KEY: &str = "queue.buffering.max.kbytes";
const SATURATION_BUFFER_KIB: &str = "32768";

/// Per-size counters shared by the sender, the delivery callback, the consumer and the
/// progress line. Only measured (non-warm-up) messages are counted, except errors.
struct Counters {
    sent: Vec<AtomicU64>,
    acked: Vec<AtomicU64>,
    received: Vec<AtomicU64>,
    errors: Vec<AtomicU64>,
    current: AtomicUsize,
    measuring: AtomicBool,
}

impl Counters {
    fn new(n: usize) -> Self {
        let zeros = || (0..n).map(|_| AtomicU64::new(0)).collect();
        Counters {
            sent: zeros(),
            acked: zeros(),
            received: zeros(),
            errors: zeros(),
            current: AtomicUsize::new(0),
            measuring: AtomicBool::new(false),
        }
    }

    fn bump(v: &[AtomicU64], i: usize) {
        if let Some(c) = v.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn get(v: &[AtomicU64], i: usize) -> u64 {
        v.get(i).map(|c| c.load(Ordering::Relaxed)).unwrap_or(0)
    }
}

/// Producer context that turns delivery reports into acknowledgement latencies.
struct AckRecorder {
    run_tag: u64,
    counters: Arc<Counters>,
    hists: Mutex<Vec<LatencyHistogram>>,
    /// Told of every delivery when the producer is transactional.
    inflight: Option<Arc<Inflight>>,
}

impl ClientContext for AckRecorder {}

impl ProducerContext for AckRecorder {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let now = now_ns();
        if let Some(inflight) = &self.inflight {
            inflight.delivered();
        }
        let (msg, ok) = match result {
            Ok(m) => (m, true),
            Err((e, m)) => {
                tracing::debug!(error = %e, "delivery failed");
                (m, false)
            }
        };
        let Some(stamp) = msg.payload().and_then(Stamp::read) else {
            return;
        };
        if stamp.run_tag != self.run_tag {
            return;
        }
        let idx = usize::from(stamp.size_index);
        if !ok {
            Counters::bump(&self.counters.errors, idx);
            return;
        }
        if stamp.warmup {
            return;
        }
        Counters::bump(&self.counters.acked, idx);
        if let Ok(mut hists) = self.hists.lock() {
            if let Some(h) = hists.get_mut(idx) {
                h.record_ns(now.saturating_sub(stamp.due_ns));
            }
        }
    }
}

/// Records end-to-end latency of every measured message until `stop` is set.
fn consume_loop(
    consumer: BaseConsumer,
    run_tag: u64,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) -> Vec<LatencyHistogram> {
    let mut hists = vec![LatencyHistogram::new(); counters.sent.len()];
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(msg)) => {
                let now = now_ns();
                let Some(stamp) = msg.payload().and_then(Stamp::read) else {
                    continue;
                };
                if stamp.run_tag != run_tag || stamp.warmup {
                    continue;
                }
                let idx = usize::from(stamp.size_index);
                if let Some(h) = hists.get_mut(idx) {
                    h.record_ns(now.saturating_sub(stamp.due_ns));
                    Counters::bump(&counters.received, idx);
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
            None => {}
        }
    }
    hists
}

/// Hands one payload to the client, retrying while its queue is full; false on a hard error.
fn send(producer: &ThreadedProducer<AckRecorder>, topic: &str, payload: &[u8]) -> bool {
    loop {
        match producer.send(BaseRecord::<(), [u8]>::to(topic).payload(payload)) {
            Ok(()) => return true,
            Err((e, _)) if is_queue_full(&e) => std::thread::sleep(Duration::from_micros(100)),
            Err((e, _)) => {
                tracing::warn!(error = %e, "send failed");
                return false;
            }
        }
    }
}

/// What the sender observed for one payload size.
struct SizeRun {
    achieved_rate: f64,
    target_rate: Option<f64>,
    broker: Option<crate::broker_proc::BrokerUsage>,
    txn: Option<TxnSummary>,
}

/// Everything one size needs from the surrounding run.
struct RunCtx<'a> {
    args: &'a E2eArgs,
    topic: &'a str,
    run_tag: u64,
    producer: &'a ThreadedProducer<AckRecorder>,
    counters: &'a Counters,
    monitor: Option<&'a BrokerMonitor>,
    fsync_baseline: Option<&'a LatencySummary>,
}

fn run_size(
    ctx: &RunCtx<'_>,
    txn: &mut Option<Transactor>,
    idx: usize,
    size: usize,
) -> Result<SizeRun> {
    let args = ctx.args;
    let size_index = u16::try_from(idx).unwrap_or(u16::MAX);
    let mut payload = build_payload(size, ctx.run_tag ^ idx as u64);
    let target_rate = (!args.saturate).then(|| args.rate.min(args.max_mbps * 1e6 / size as f64));
    ctx.counters.current.store(idx, Ordering::Relaxed);
    ctx.counters.measuring.store(false, Ordering::Relaxed);

    let start = Instant::now() + Duration::from_millis(5);
    let warm_end = start + args.warmup;
    let end = warm_end + args.duration;
    let schedule =
        target_rate.map(|r| OpenLoopSchedule::new(start, r, args.warmup + args.duration));
    let mut broker_start = None;
    let mut first_measured: Option<Instant> = None;
    let mut seq = 0u64;
    loop {
        // Open loop: the due time comes from the schedule, and a late send keeps it. Saturation:
        // the due time is the moment of sending.
        let due = match &schedule {
            Some(s) if seq < s.len() => {
                let due = s.due(seq);
                sleep_until(due);
                due
            }
            Some(_) => break,
            None => {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                now
            }
        };
        let warmup = due < warm_end;
        if !warmup && first_measured.is_none() {
            first_measured = Some(Instant::now());
            broker_start = window_start(ctx.monitor);
            ctx.counters.measuring.store(true, Ordering::Relaxed);
        }
        let stamp = Stamp {
            run_tag: ctx.run_tag,
            size_index,
            warmup,
            seq,
            due_ns: instant_ns(due),
        };
        stamp.write(&mut payload);
        if let Some(t) = txn.as_mut() {
            t.before_send(ctx.producer)?;
        }
        if send(ctx.producer, ctx.topic, &payload) {
            if !warmup {
                Counters::bump(&ctx.counters.sent, idx);
            }
            if let Some(t) = txn.as_mut() {
                t.after_send(ctx.producer, !warmup)?;
            }
        } else {
            Counters::bump(&ctx.counters.errors, idx);
        }
        seq += 1;
    }
    let send_secs = first_measured
        .map(|f| f.elapsed().as_secs_f64())
        .unwrap_or(0.0);
    let txn_summary = match txn.as_mut() {
        Some(t) => {
            t.finish(ctx.producer, true)?;
            Some(t.take_stats().summary(ctx.fsync_baseline))
        }
        None => None,
    };
    if let Err(e) = ctx.producer.flush(Duration::from_secs(60)) {
        tracing::warn!(error = %e, size = %size_label(size), "not every message was acknowledged");
    }
    wait_for_consumer(ctx.counters, idx);
    let broker = window_end(ctx.monitor, broker_start);
    let sent = Counters::get(&ctx.counters.sent, idx);
    let achieved_rate = if send_secs > 0.0 {
        sent as f64 / send_secs
    } else {
        0.0
    };
    if let Some(t) = target_rate {
        if achieved_rate < t * 0.95 {
            tracing::warn!(
                size = %size_label(size), target = t, achieved = achieved_rate,
                "the sender fell behind its schedule; latencies include the backlog"
            );
        }
    }
    Ok(SizeRun {
        achieved_rate,
        target_rate,
        broker,
        txn: txn_summary,
    })
}

/// Waits until the consumer has every acknowledged message of size `idx`, or stops receiving.
fn wait_for_consumer(counters: &Counters, idx: usize) {
    let mut last = Counters::get(&counters.received, idx);
    let mut last_change = Instant::now();
    loop {
        let received = Counters::get(&counters.received, idx);
        if received >= Counters::get(&counters.acked, idx) {
            return;
        }
        if received != last {
            last = received;
            last_change = Instant::now();
        } else if last_change.elapsed() > DRAIN_STALL {
            tracing::warn!(
                missing = Counters::get(&counters.acked, idx).saturating_sub(received),
                "consumer stopped receiving; counting the rest as lost"
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn progress_line(
    counters: &Counters,
    sizes: &[usize],
    monitor: Option<&BrokerMonitor>,
    last_cpu: &mut Option<(Instant, f64)>,
) -> String {
    let i = counters.current.load(Ordering::Relaxed);
    let phase = if counters.measuring.load(Ordering::Relaxed) {
        "measure"
    } else {
        "warm-up"
    };
    let mut line = format!(
        "e2e {} ({}/{}) {phase}: sent {} acked {} received {} errors {}",
        sizes.get(i).map(|s| size_label(*s)).unwrap_or_default(),
        i + 1,
        sizes.len(),
        Counters::get(&counters.sent, i),
        Counters::get(&counters.acked, i),
        Counters::get(&counters.received, i),
        Counters::get(&counters.errors, i),
    );
    if let Some(s) = monitor.and_then(BrokerMonitor::latest) {
        if let Some((t, cpu)) = *last_cpu {
            let wall = s.at.saturating_duration_since(t).as_secs_f64();
            if wall > 0.0 {
                line += &format!(" | broker {:.2} cores", (s.cpu_secs - cpu) / wall);
            }
        }
        line += &format!(" {:.0} MiB", s.rss_bytes as f64 / 1048576.0);
        *last_cpu = Some((s.at, s.cpu_secs));
    }
    line
}

/// Runs `sluice bench e2e` and returns its report.
pub fn run(args: &E2eArgs) -> Result<E2eReport> {
    let common = &args.common;
    let sizes = &args.sizes.0;
    let paced = args.rate > 0.0 && args.max_mbps > 0.0;
    if !args.saturate && !paced {
        return Err(BenchError::InvalidArg {
            what: "rate",
            value: format!("--rate {} --max-mbps {}", args.rate, args.max_mbps),
            reason: "both must be positive; use --saturate to send as fast as possible".into(),
        });
    }
    common.validate()?;
    let fsync_baseline = crate::fsync_probe::baseline(common.fsync_baseline.as_deref())?;
    let run_tag = uuid::Uuid::new_v4().as_u64_pair().0;
    let topic = match &common.topic {
        Some(t) => t.clone(),
        None => format!("sluice-bench-e2e-{run_tag:016x}"),
    };
    let fresh_topic = common.topic.is_none();
    create_topic(common, &topic, args.partitions)?;

    let counters = Arc::new(Counters::new(sizes.len()));
    let (consumer, assignment) = single_consumer(
        common,
        &topic,
        &format!("sluice-bench-{run_tag:016x}"),
        fresh_topic,
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let consumer_thread = {
        let (counters, stop) = (counters.clone(), stop.clone());
        std::thread::Builder::new()
            .name("bench-consumer".into())
            .spawn(move || consume_loop(consumer, run_tag, counters, stop))
            .map_err(|e| BenchError::io("consumer thread", e))?
    };

    let max_size = sizes.iter().copied().max().unwrap_or(0);
    let inflight = common.transaction_size.map(|_| Inflight::new());
    let recorder = AckRecorder {
        run_tag,
        counters: counters.clone(),
        hists: Mutex::new(vec![LatencyHistogram::new(); sizes.len()]),
        inflight: inflight.clone(),
    };
    let mut config = producer_config(common, args.linger_ms, "none", None, max_size);
    if args.saturate && config.get(SATURATION_BUFFER_KEY).is_none() {
        // librdkafka buffers up to 1 GB by default, so a saturated run would only measure how
        // long that queue takes to drain; 32 MiB matches the Java client's buffer.memory. A -X
        // setting for it wins.
        config.set(SATURATION_BUFFER_KEY, SATURATION_BUFFER_KIB);
    }
    if common.transaction_size.is_some() {
        make_transactional(&mut config, &format!("sluice-bench-e2e-{run_tag:016x}-txn"));
    }
    let producer: ThreadedProducer<AckRecorder> = config
        .create_with_context(recorder)
        .map_err(|e| BenchError::kafka("creating the producer", e))?;
    let mut txn = match (common.transaction_size, inflight) {
        (Some(n), Some(inflight)) => Some(Transactor::init(&producer, n, inflight)?),
        _ => None,
    };

    let monitor = broker_watcher(&common.bootstrap, common.broker_pid)
        .map(|w| Arc::new(BrokerMonitor::start(w)));
    let progress = {
        let (counters, sizes, monitor) = (counters.clone(), sizes.clone(), monitor.clone());
        let mut last_cpu = None;
        Progress::start(!common.quiet, move || {
            progress_line(&counters, &sizes, monitor.as_deref(), &mut last_cpu)
        })
    };

    tighten_timer_slack();
    let ctx = RunCtx {
        args,
        topic: &topic,
        run_tag,
        producer: &producer,
        counters: &counters,
        monitor: monitor.as_deref(),
        fsync_baseline: fsync_baseline.as_ref(),
    };
    let runs: Result<Vec<SizeRun>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| run_size(&ctx, &mut txn, i, size))
        .collect();
    drop(progress);

    stop.store(true, Ordering::Relaxed);
    let e2e_hists = consumer_thread
        .join()
        .map_err(|_| BenchError::WorkerPanicked("bench-consumer"))?;
    let runs = runs?;
    let ack_hists = producer
        .context()
        .hists
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();

    let rows = sizes
        .iter()
        .zip(runs)
        .enumerate()
        .map(|(i, (&size, run))| E2eRow {
            size_bytes: size,
            size_label: size_label(size),
            target_rate: run.target_rate,
            achieved_rate: run.achieved_rate,
            sent: Counters::get(&counters.sent, i),
            acked: Counters::get(&counters.acked, i),
            received: Counters::get(&counters.received, i),
            errors: Counters::get(&counters.errors, i),
            e2e: e2e_hists.get(i).map(|h| h.summary()).unwrap_or_default(),
            ack: ack_hists.get(i).map(|h| h.summary()).unwrap_or_default(),
            broker: run.broker,
            txn: run.txn,
        })
        .collect();

    Ok(E2eReport {
        bootstrap: common.bootstrap.clone(),
        topic,
        partitions: args.partitions,
        acks: common.acks.clone(),
        linger_ms: args.linger_ms,
        mode: if args.saturate {
            LoadMode::Saturation
        } else {
            LoadMode::OpenLoop
        },
        assignment,
        isolation: common.isolation,
        transaction_size: common.transaction_size,
        fsync_baseline,
        warmup_secs: args.warmup.as_secs_f64(),
        duration_secs: args.duration.as_secs_f64(),
        rows,
    })
}
