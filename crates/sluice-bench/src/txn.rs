//! Transactional producers (`--transaction-size N`): begin, produce N records, flush, commit,
//! in a loop, timing each step.
//!
//! `commit_transaction()` first flushes (waits until every record of the transaction is
//! acknowledged, with acks=all after its fsync; librdkafka sends at once, ignoring
//! `linger.ms`) and then sends EndTxn (the broker makes its commit decision durable and
//! writes the markers). The delivery reports ([`Inflight`]) tell when the last record was
//! acknowledged, which splits the call into **flush** and **EndTxn** without changing what
//! the client does.
//!
//! librdkafka's `rd_kafka_commit_transaction` is called directly: rdkafka's
//! `Producer::commit_transaction` first runs its own `flush`, which polls the event queue in
//! slices of up to 100 ms that do not end early, so with rdkafka 0.39 every commit that finds
//! a record still in flight takes at least 100 ms (a client artefact that would swamp what the
//! broker does; see docs/benchmarks.md, "Transactions").

use std::ffi::{c_int, CStr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::producer::{Producer, ProducerContext, ThreadedProducer};

use crate::error::{BenchError, Result};
use crate::fsync_probe::in_fsyncs;
use crate::report::TxnSummary;
use crate::stats::{LatencyHistogram, LatencySummary};

/// Longest a single transactional call (init, flush, commit, abort) may block.
const TXN_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Records handed to the client and not yet reported delivered (or failed), and when the
/// count last dropped to zero. The producer's delivery callback calls
/// [`Inflight::delivered`].
#[derive(Debug, Default)]
pub struct Inflight {
    // Signed: a delivery report may arrive before the sender counted its send.
    state: Mutex<(i64, Option<Instant>)>,
}

impl Inflight {
    /// A tracker with nothing in flight.
    pub fn new() -> Arc<Self> {
        Arc::new(Inflight::default())
    }

    fn sent(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.0 += 1;
        }
    }

    /// Called from the delivery callback for every record, delivered or failed.
    pub fn delivered(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.0 -= 1;
            if s.0 <= 0 {
                s.1 = Some(Instant::now());
            }
        }
    }

    /// When the last record in flight was reported, if none is in flight now.
    fn drained_at(&self) -> Option<Instant> {
        self.state
            .lock()
            .ok()
            .and_then(|s| if s.0 <= 0 { s.1 } else { None })
    }
}

/// Timings and counts of one producer's transactions.
#[derive(Debug, Clone, Default)]
pub struct TxnStats {
    /// Transactions committed.
    pub committed: u64,
    /// Records in committed transactions.
    pub committed_records: u64,
    /// Transactions that failed to commit and were aborted.
    pub aborted: u64,
    /// `commit_transaction()` called until its last record was acknowledged.
    pub flush: LatencyHistogram,
    /// Last record acknowledged until `commit_transaction()` returned (EndTxn).
    pub end_txn: LatencyHistogram,
    /// The whole `commit_transaction()` call (flush + EndTxn).
    pub commit: LatencyHistogram,
    /// Time from `begin_transaction()` until the commit returned.
    pub total: LatencyHistogram,
}

impl TxnStats {
    /// Adds another producer's numbers into these.
    pub fn merge(&mut self, other: &TxnStats) {
        self.committed += other.committed;
        self.committed_records += other.committed_records;
        self.aborted += other.aborted;
        self.flush.merge(&other.flush);
        self.end_txn.merge(&other.end_txn);
        self.commit.merge(&other.commit);
        self.total.merge(&other.total);
    }

    /// Percentiles for the report; `fsync` (the raw fsync baseline) expresses the median
    /// commit and EndTxn in fsyncs.
    pub fn summary(&self, fsync: Option<&LatencySummary>) -> TxnSummary {
        let commit = self.commit.summary();
        let end_txn = self.end_txn.summary();
        TxnSummary {
            committed: self.committed,
            committed_records: self.committed_records,
            aborted: self.aborted,
            flush: self.flush.summary(),
            commit_p50_fsyncs: in_fsyncs(commit.p50_ms, fsync),
            end_txn_p50_fsyncs: in_fsyncs(end_txn.p50_ms, fsync),
            commit,
            end_txn,
            total: self.total.summary(),
        }
    }
}

/// The transaction currently open.
#[derive(Debug, Clone, Copy)]
struct OpenTxn {
    began: Instant,
    records: u64,
}

/// Drives one transactional producer: call [`Transactor::before_send`] before and
/// [`Transactor::after_send`] after every record handed to the client, and
/// [`Transactor::finish`] at the end.
#[derive(Debug)]
pub struct Transactor {
    size: u64,
    open: Option<OpenTxn>,
    inflight: Arc<Inflight>,
    stats: TxnStats,
}

/// librdkafka's commit: flushes (sending at once, whatever `linger.ms`; the delivery reports
/// are served by the `ThreadedProducer`'s polling thread), then EndTxn. Returns librdkafka's
/// error text on failure.
fn commit_transaction<C: ProducerContext + 'static>(
    producer: &ThreadedProducer<C>,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let timeout_ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
    // SAFETY: the handle is valid while `producer` is borrowed, and librdkafka's transactional
    // API may be called from any application thread.
    let error = unsafe {
        rdkafka::bindings::rd_kafka_commit_transaction(producer.client().native_ptr(), timeout_ms)
    };
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: `error` is a live error object owned by us: its text is copied out before it is
    // destroyed, exactly once.
    let reason = unsafe {
        let text = rdkafka::bindings::rd_kafka_error_string(error);
        let reason = if text.is_null() {
            "unknown error".to_string()
        } else {
            CStr::from_ptr(text).to_string_lossy().into_owned()
        };
        rdkafka::bindings::rd_kafka_error_destroy(error);
        reason
    };
    Err(reason)
}

fn elapsed_ns(since: Instant, until: Instant) -> u64 {
    u64::try_from(until.saturating_duration_since(since).as_nanos()).unwrap_or(u64::MAX)
}

impl Transactor {
    /// Registers `producer`'s `transactional.id` with the broker (`init_transactions`, which
    /// fences earlier producers with the same id) and returns a driver committing every
    /// `size` records. `inflight` must be the tracker the producer's delivery callback
    /// reports to.
    pub fn init<C: ProducerContext + 'static>(
        producer: &ThreadedProducer<C>,
        size: u64,
        inflight: Arc<Inflight>,
    ) -> Result<Self> {
        producer
            .init_transactions(TXN_CALL_TIMEOUT)
            .map_err(|e| BenchError::kafka("initializing transactions (InitProducerId)", e))?;
        Ok(Transactor {
            size: size.max(1),
            open: None,
            inflight,
            stats: TxnStats::default(),
        })
    }

    /// Begins a transaction unless one is open.
    pub fn before_send<C: ProducerContext + 'static>(
        &mut self,
        producer: &ThreadedProducer<C>,
    ) -> Result<()> {
        if self.open.is_some() {
            return Ok(());
        }
        producer
            .begin_transaction()
            .map_err(|e| BenchError::kafka("beginning a transaction", e))?;
        self.open = Some(OpenTxn {
            began: Instant::now(),
            records: 0,
        });
        Ok(())
    }

    /// Counts one record handed to the client and commits once the transaction is full.
    /// Returns the number of records committed (`None` if nothing was committed now). The
    /// commit's timings are kept only when `record` is true (not during warm-up).
    pub fn after_send<C: ProducerContext + 'static>(
        &mut self,
        producer: &ThreadedProducer<C>,
        record: bool,
    ) -> Result<Option<u64>> {
        self.inflight.sent();
        let full = match self.open.as_mut() {
            Some(open) => {
                open.records += 1;
                open.records >= self.size
            }
            None => false,
        };
        if full {
            self.commit(producer, record)
        } else {
            Ok(None)
        }
    }

    /// Commits the transaction still open, if any (the end of a run).
    pub fn finish<C: ProducerContext + 'static>(
        &mut self,
        producer: &ThreadedProducer<C>,
        record: bool,
    ) -> Result<Option<u64>> {
        match self.open {
            Some(open) if open.records > 0 => self.commit(producer, record),
            Some(_) => self.abort(producer).map(|()| None),
            None => Ok(None),
        }
    }

    /// The numbers so far, leaving zeroes behind (one size of an e2e run after another).
    pub fn take_stats(&mut self) -> TxnStats {
        std::mem::take(&mut self.stats)
    }

    /// Flushes and commits the open transaction; a commit that fails is aborted and counted,
    /// and only an abort that fails too ends the run.
    fn commit<C: ProducerContext + 'static>(
        &mut self,
        producer: &ThreadedProducer<C>,
        record: bool,
    ) -> Result<Option<u64>> {
        let Some(open) = self.open.take() else {
            return Ok(None);
        };
        let commit_start = Instant::now();
        let committed = commit_transaction(producer, TXN_CALL_TIMEOUT);
        let done = Instant::now();
        match committed {
            Ok(()) => {
                self.stats.committed += 1;
                self.stats.committed_records += open.records;
                if record {
                    // Acknowledged before the call (or no report seen): no flush time.
                    let drained = self
                        .inflight
                        .drained_at()
                        .unwrap_or(commit_start)
                        .clamp(commit_start, done);
                    self.stats
                        .flush
                        .record_ns(elapsed_ns(commit_start, drained));
                    self.stats.end_txn.record_ns(elapsed_ns(drained, done));
                    self.stats.commit.record_ns(elapsed_ns(commit_start, done));
                    self.stats.total.record_ns(elapsed_ns(open.began, done));
                }
                Ok(Some(open.records))
            }
            Err(e) => {
                tracing::warn!(error = %e, records = open.records, "commit failed; aborting the transaction");
                self.stats.aborted += 1;
                self.open = Some(open);
                self.abort(producer).map(|()| None)
            }
        }
    }

    fn abort<C: ProducerContext + 'static>(
        &mut self,
        producer: &ThreadedProducer<C>,
    ) -> Result<()> {
        self.open = None;
        producer
            .abort_transaction(TXN_CALL_TIMEOUT)
            .map_err(|e| BenchError::kafka("aborting a failed transaction", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflight_knows_when_the_last_record_was_acknowledged() {
        let inflight = Inflight::new();
        assert_eq!(inflight.drained_at(), None, "nothing reported yet");
        inflight.delivered(); // a report may beat the sender's count
        inflight.sent();
        let first = inflight.drained_at();
        assert!(first.is_some());
        inflight.sent();
        inflight.sent();
        inflight.delivered();
        assert_eq!(inflight.drained_at(), None, "one still in flight");
        inflight.delivered();
        let last = inflight.drained_at();
        assert!(last.is_some() && last >= first, "{first:?} {last:?}");
    }

    #[test]
    fn stats_merge_and_summarize_in_fsyncs() {
        let mut a = TxnStats {
            committed: 2,
            committed_records: 200,
            ..TxnStats::default()
        };
        a.commit.record_ns(1_000_000);
        a.commit.record_ns(1_000_000);
        let mut b = TxnStats {
            committed: 1,
            committed_records: 100,
            aborted: 1,
            ..TxnStats::default()
        };
        b.commit.record_ns(1_000_000);
        b.end_txn.record_ns(250_000);
        a.merge(&b);
        let fsync = LatencySummary {
            count: 10,
            p50_ms: 0.5,
            ..LatencySummary::default()
        };
        let s = a.summary(Some(&fsync));
        assert_eq!((s.committed, s.committed_records, s.aborted), (3, 300, 1));
        assert_eq!(s.commit.count, 3);
        let ratio = s.commit_p50_fsyncs.unwrap_or(0.0);
        assert!((ratio - 2.0).abs() < 0.01, "{ratio}");
        let end_txn = s.end_txn_p50_fsyncs.unwrap_or(0.0);
        assert!((end_txn - 0.5).abs() < 0.01, "{end_txn}");
        assert_eq!(a.summary(None).commit_p50_fsyncs, None);
    }
}
