//! Benchmark results: the data model, the Markdown tables and the JSON file.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::args::{size_label, Isolation};
use crate::broker_proc::BrokerUsage;
use crate::error::{BenchError, Result};
use crate::stats::LatencySummary;

/// How sends were paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadMode {
    /// Fixed-rate schedule; latency counted from the due time.
    OpenLoop,
    /// As fast as the client accepts; latency counted from the actual send.
    Saturation,
}

/// How consumers got their partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentMode {
    /// Consumer group (subscribe, broker-coordinated assignment).
    Group,
    /// Manual assignment of all partitions (no group coordinator needed).
    Manual,
}

/// Results of `sluice bench e2e`.
#[derive(Debug, Clone, Serialize)]
pub struct E2eReport {
    /// Broker bootstrap address.
    pub bootstrap: String,
    /// Topic the messages went through.
    pub topic: String,
    /// Partitions of the topic.
    pub partitions: i32,
    /// Producer acks setting.
    pub acks: String,
    /// Producer linger.ms.
    pub linger_ms: u32,
    /// Open loop or saturation.
    pub mode: LoadMode,
    /// Consumer group or manual assignment.
    pub assignment: AssignmentMode,
    /// Consumer isolation level.
    pub isolation: Isolation,
    /// Records per transaction; `None` for a plain (non-transactional) producer.
    pub transaction_size: Option<u64>,
    /// Raw fsync (4 KB write + fdatasync) on the broker's disk, measured before the run.
    pub fsync_baseline: Option<LatencySummary>,
    /// Warm-up per size, seconds (excluded).
    pub warmup_secs: f64,
    /// Measured duration per size, seconds.
    pub duration_secs: f64,
    /// One row per payload size.
    pub rows: Vec<E2eRow>,
}

/// End-to-end results for one payload size.
#[derive(Debug, Clone, Serialize)]
pub struct E2eRow {
    /// Payload size in bytes.
    pub size_bytes: usize,
    /// Human label of the size.
    pub size_label: String,
    /// Scheduled send rate (messages/s); `None` in saturation mode.
    pub target_rate: Option<f64>,
    /// Measured messages actually sent per second.
    pub achieved_rate: f64,
    /// Measured (non-warm-up) messages handed to the client.
    pub sent: u64,
    /// Measured messages the broker acknowledged.
    pub acked: u64,
    /// Measured messages the consumer received.
    pub received: u64,
    /// Sends refused by the client or failed deliveries.
    pub errors: u64,
    /// Send to consumer arrival.
    pub e2e: LatencySummary,
    /// Send to producer acknowledgement.
    pub ack: LatencySummary,
    /// Broker CPU and memory while this size was measured, if the broker is local.
    pub broker: Option<BrokerUsage>,
    /// Transaction timings, for a transactional producer.
    pub txn: Option<TxnSummary>,
}

/// Timings of a transactional producer's measured transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TxnSummary {
    /// Transactions committed (including warm-up).
    pub committed: u64,
    /// Records in committed transactions (including warm-up).
    pub committed_records: u64,
    /// Transactions whose commit failed and that were aborted.
    pub aborted: u64,
    /// The whole `commit_transaction()` call: flush, then EndTxn.
    pub commit: LatencySummary,
    /// Its first part: until the transaction's last record was acknowledged.
    pub flush: LatencySummary,
    /// Its second part: last acknowledgement until the call returned (the EndTxn round trip).
    pub end_txn: LatencySummary,
    /// `begin_transaction()` until the commit returned.
    pub total: LatencySummary,
    /// Median `commit_transaction()` in units of the median raw fsync, if a baseline was
    /// measured.
    pub commit_p50_fsyncs: Option<f64>,
    /// Median EndTxn part in units of the median raw fsync.
    pub end_txn_p50_fsyncs: Option<f64>,
}

/// Results of `sluice bench throughput`.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputReport {
    /// Broker bootstrap address.
    pub bootstrap: String,
    /// Producer clients.
    pub producers: u32,
    /// Consumer clients.
    pub consumers: u32,
    /// Message payload size in bytes.
    pub size_bytes: usize,
    /// Producer acks setting.
    pub acks: String,
    /// Producer compression codec.
    pub compression: String,
    /// Producer linger.ms.
    pub linger_ms: u32,
    /// Producer batch.size.
    pub batch_size: u32,
    /// Consumer group or manual assignment.
    pub assignment: AssignmentMode,
    /// Consumer isolation level.
    pub isolation: Isolation,
    /// Records per transaction; `None` for plain (non-transactional) producers.
    pub transaction_size: Option<u64>,
    /// Raw fsync (4 KB write + fdatasync) on the broker's disk, measured before the run.
    pub fsync_baseline: Option<LatencySummary>,
    /// One run per partition count.
    pub runs: Vec<ThroughputRun>,
}

/// Throughput at one partition count.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRun {
    /// Topic used.
    pub topic: String,
    /// Partitions of the topic.
    pub partitions: i32,
    /// Acknowledged production during the measurement window.
    pub produce: RateStats,
    /// Consumption of everything produced, read back from the start; `None` if skipped.
    pub consume: Option<RateStats>,
    /// Broker resources during the produce window.
    pub broker_produce: Option<BrokerUsage>,
    /// Broker resources during the consume phase.
    pub broker_consume: Option<BrokerUsage>,
    /// Broker CPU milliseconds per produced MB (10^6 B of payload).
    pub broker_cpu_ms_per_mb: Option<f64>,
    /// Transaction timings of all producers during the measurement window.
    pub txn: Option<TxnSummary>,
}

/// Messages and bytes moved over a time window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RateStats {
    /// Messages moved.
    pub messages: u64,
    /// Payload bytes moved.
    pub bytes: u64,
    /// Length of the window, seconds.
    pub secs: f64,
    /// Messages per second.
    pub msgs_per_sec: f64,
    /// Payload MB (10^6 B) per second.
    pub mb_per_sec: f64,
    /// Failed sends or consume errors.
    pub errors: u64,
}

impl RateStats {
    /// Rates for `messages` and `bytes` moved in `secs` seconds.
    pub fn new(messages: u64, bytes: u64, secs: f64, errors: u64) -> Self {
        let per = |x: u64| if secs > 0.0 { x as f64 / secs } else { 0.0 };
        RateStats {
            messages,
            bytes,
            secs,
            msgs_per_sec: per(messages),
            mb_per_sec: per(bytes) / 1e6,
            errors,
        }
    }
}

/// Broker CPU milliseconds per MB of payload, if both are known and non-zero.
pub fn cpu_ms_per_mb(broker: Option<&BrokerUsage>, bytes: u64) -> Option<f64> {
    let b = broker?;
    (bytes > 0).then(|| b.cpu_secs * 1e3 / (bytes as f64 / 1e6))
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn opt_broker(b: Option<&BrokerUsage>) -> (String, String) {
    match b {
        Some(b) => (
            format!("{:.2}", b.cpu_cores),
            format!("{:.0}", b.rss_peak_mib),
        ),
        None => ("–".to_string(), "–".to_string()),
    }
}

fn producer_mode(transaction_size: Option<u64>) -> String {
    match transaction_size {
        Some(n) => format!("transactional, {n} record(s) per transaction"),
        None => "non-transactional".to_string(),
    }
}

fn fsync_line(out: &mut String, baseline: Option<&LatencySummary>) {
    if let Some(b) = baseline {
        let _ = writeln!(
            out,
            "\nRaw fsync baseline (4 KB write + fdatasync, {} writes before the run): p50 {} ms, \
             mean {} ms, p99 {} ms.",
            b.count,
            ms(b.p50_ms),
            ms(b.mean_ms),
            ms(b.p99_ms)
        );
    }
}

/// A Markdown table of transaction timings, one row per `(label, summary)`.
fn txn_table<'a>(
    out: &mut String,
    first_column: &str,
    rows: impl Iterator<Item = (String, &'a TxnSummary)>,
) {
    let _ = writeln!(
        out,
        "\nTransactions (commit = the commit_transaction() call, split into flush = until the \
         last record was acknowledged and EndTxn = the rest; txn = begin until the commit \
         returned). Times in ms.\n"
    );
    let _ = writeln!(
        out,
        "| {first_column} | committed | aborted | commit p50 | commit p99 | flush p50 | EndTxn p50 | EndTxn p99 | txn p50 | txn p99 | commit p50 in fsyncs | EndTxn p50 in fsyncs |"
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let ratio = |v: Option<f64>| v.map_or_else(|| "–".to_string(), |v| format!("{v:.2}"));
    for (label, t) in rows {
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            t.committed,
            t.aborted,
            ms(t.commit.p50_ms),
            ms(t.commit.p99_ms),
            ms(t.flush.p50_ms),
            ms(t.end_txn.p50_ms),
            ms(t.end_txn.p99_ms),
            ms(t.total.p50_ms),
            ms(t.total.p99_ms),
            ratio(t.commit_p50_fsyncs),
            ratio(t.end_txn_p50_fsyncs),
        );
    }
}

/// The e2e results as a Markdown table (latencies in milliseconds).
pub fn e2e_markdown(r: &E2eReport) -> String {
    let mut out = String::new();
    let mode = match r.mode {
        LoadMode::OpenLoop => "open loop (latency from scheduled send time)",
        LoadMode::Saturation => "saturation (latency from actual send time)",
    };
    let assignment = match r.assignment {
        AssignmentMode::Group => "consumer group",
        AssignmentMode::Manual => "manual assignment",
    };
    let _ = writeln!(
        out,
        "End-to-end latency, {mode}; acks={}, linger.ms={}, {} producer, {} partition(s), \
         {assignment}, {}; {}s measured per size after {}s warm-up. Times in ms.\n",
        r.acks,
        r.linger_ms,
        producer_mode(r.transaction_size),
        r.partitions,
        r.isolation.as_config(),
        r.duration_secs,
        r.warmup_secs
    );
    out.push_str(
        "| size | rate msg/s | e2e p50 | e2e p90 | e2e p99 | e2e p99.9 | e2e max | ack p50 | ack p99 | ack max | received/sent | errors | broker cores | broker RSS MiB |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in &r.rows {
        let (cores, rss) = opt_broker(row.broker.as_ref());
        let rate = match row.target_rate {
            Some(t) => format!("{:.0} ({:.0})", row.achieved_rate, t),
            None => format!("{:.0}", row.achieved_rate),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} | {} | {} | {} |",
            row.size_label,
            rate,
            ms(row.e2e.p50_ms),
            ms(row.e2e.p90_ms),
            ms(row.e2e.p99_ms),
            ms(row.e2e.p999_ms),
            ms(row.e2e.max_ms),
            ms(row.ack.p50_ms),
            ms(row.ack.p99_ms),
            ms(row.ack.max_ms),
            row.received,
            row.sent,
            row.errors,
            cores,
            rss,
        );
    }
    let txns = r
        .rows
        .iter()
        .filter_map(|row| row.txn.as_ref().map(|t| (row.size_label.clone(), t)));
    if r.rows.iter().any(|row| row.txn.is_some()) {
        txn_table(&mut out, "size", txns);
    }
    fsync_line(&mut out, r.fsync_baseline.as_ref());
    out
}

/// The throughput results as a Markdown table.
pub fn throughput_markdown(r: &ThroughputReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Throughput: {} {} producer(s), {} {} consumer(s), {} messages, acks={}, \
         compression={}, linger.ms={}, batch.size={}. MB = 10^6 B of payload{}.\n",
        r.producers,
        producer_mode(r.transaction_size),
        r.consumers,
        r.isolation.as_config(),
        size_label(r.size_bytes),
        r.acks,
        r.compression,
        r.linger_ms,
        r.batch_size,
        if r.transaction_size.is_some() {
            "; produce counts committed records only"
        } else {
            ""
        }
    );
    out.push_str(
        "| partitions | produce MB/s | produce msg/s | consume MB/s | consume msg/s | errors | broker cores (produce) | broker CPU ms/MB | broker RSS MiB |\n",
    );
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for run in &r.runs {
        let (cores, rss) = opt_broker(run.broker_produce.as_ref());
        let (c_mb, c_msgs, c_err) = match &run.consume {
            Some(c) => (
                format!("{:.1}", c.mb_per_sec),
                format!("{:.0}", c.msgs_per_sec),
                c.errors,
            ),
            None => ("–".to_string(), "–".to_string(), 0),
        };
        let per_mb = run
            .broker_cpu_ms_per_mb
            .map(|v| format!("{v:.2}"))
            .unwrap_or_else(|| "–".to_string());
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.0} | {} | {} | {} | {} | {} | {} |",
            run.partitions,
            run.produce.mb_per_sec,
            run.produce.msgs_per_sec,
            c_mb,
            c_msgs,
            run.produce.errors + c_err,
            cores,
            per_mb,
            rss
        );
    }
    if r.runs.iter().any(|run| run.txn.is_some()) {
        let txns = r.runs.iter().filter_map(|run| {
            run.txn
                .as_ref()
                .map(|t| (format!("{} partition(s)", run.partitions), t))
        });
        txn_table(&mut out, "run", txns);
    }
    fsync_line(&mut out, r.fsync_baseline.as_ref());
    out
}

/// Writes any report as pretty JSON to `path`.
pub fn write_json<T: Serialize>(path: &Path, report: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").map_err(|e| BenchError::io(path, e))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_e2e() -> E2eReport {
        let lat = |base: f64| LatencySummary {
            count: 1000,
            p50_ms: base,
            p90_ms: base * 1.5,
            p99_ms: base * 3.0,
            p999_ms: base * 5.0,
            max_ms: base * 9.0,
            mean_ms: base * 1.1,
        };
        let rows = [100usize, 1000, 100_000]
            .iter()
            .enumerate()
            .map(|(i, &size)| E2eRow {
                size_bytes: size,
                size_label: size_label(size),
                target_rate: Some(1000.0),
                achieved_rate: 999.0,
                sent: 10_000,
                acked: 10_000,
                received: 9_999,
                errors: i as u64,
                e2e: lat(0.4 * (i + 1) as f64),
                ack: lat(0.3 * (i + 1) as f64),
                broker: (i == 0).then_some(BrokerUsage {
                    pid: 42,
                    cpu_secs: 1.0,
                    cpu_cores: 0.25,
                    user_cpu_secs: 0.4,
                    system_cpu_secs: 0.6,
                    rss_end_mib: 30.0,
                    rss_peak_mib: 31.0,
                }),
                txn: None,
            })
            .collect();
        E2eReport {
            bootstrap: "127.0.0.1:9092".into(),
            topic: "t".into(),
            partitions: 1,
            acks: "all".into(),
            linger_ms: 0,
            mode: LoadMode::OpenLoop,
            assignment: AssignmentMode::Manual,
            isolation: Isolation::ReadCommitted,
            transaction_size: None,
            fsync_baseline: None,
            warmup_secs: 2.0,
            duration_secs: 10.0,
            rows,
        }
    }

    #[test]
    fn e2e_table_has_one_row_per_size() {
        let md = e2e_markdown(&sample_e2e());
        let table_rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(table_rows.len(), 4, "{md}"); // header + 3 sizes
        assert!(md.contains("| 1 KB | 999 (1000) | 0.800 | 1.200 | 2.400 | 4.000 | 7.200 |"));
        assert!(md.contains("| 0.25 | 31 |"), "{md}");
        assert!(md.contains("9999/10000"));
        assert!(md.contains("open loop"));
    }

    #[test]
    fn throughput_table_and_cost_per_mb() {
        let broker = BrokerUsage {
            pid: 1,
            cpu_secs: 2.0,
            cpu_cores: 0.2,
            user_cpu_secs: 0.5,
            system_cpu_secs: 1.5,
            rss_end_mib: 10.0,
            rss_peak_mib: 12.0,
        };
        let produce = RateStats::new(1_000_000, 1_000_000_000, 10.0, 0);
        assert!((produce.mb_per_sec - 100.0).abs() < 1e-9);
        assert!((produce.msgs_per_sec - 100_000.0).abs() < 1e-9);
        let per_mb = cpu_ms_per_mb(Some(&broker), produce.bytes);
        assert_eq!(per_mb, Some(2.0));
        assert_eq!(cpu_ms_per_mb(None, 5), None);
        assert_eq!(cpu_ms_per_mb(Some(&broker), 0), None);
        let report = ThroughputReport {
            bootstrap: "b".into(),
            producers: 1,
            consumers: 1,
            size_bytes: 1000,
            acks: "all".into(),
            compression: "none".into(),
            linger_ms: 5,
            batch_size: 1_000_000,
            assignment: AssignmentMode::Group,
            isolation: Isolation::ReadCommitted,
            transaction_size: None,
            fsync_baseline: None,
            runs: vec![ThroughputRun {
                topic: "t".into(),
                partitions: 10,
                produce,
                consume: Some(RateStats::new(1_000_000, 1_000_000_000, 2.0, 1)),
                broker_produce: Some(broker),
                broker_consume: None,
                broker_cpu_ms_per_mb: per_mb,
                txn: None,
            }],
        };
        let md = throughput_markdown(&report);
        assert!(
            md.contains("| 10 | 100.0 | 100000 | 500.0 | 500000 | 1 | 0.20 | 2.00 | 12 |"),
            "{md}"
        );
    }

    #[test]
    fn transaction_table_and_baseline() {
        let lat = |p50: f64| LatencySummary {
            count: 10,
            p50_ms: p50,
            p99_ms: p50 * 2.0,
            mean_ms: p50,
            max_ms: p50 * 3.0,
            ..LatencySummary::default()
        };
        let mut r = sample_e2e();
        r.transaction_size = Some(1);
        r.fsync_baseline = Some(lat(0.5));
        r.rows.truncate(1);
        if let Some(row) = r.rows.first_mut() {
            row.txn = Some(TxnSummary {
                committed: 12,
                committed_records: 12,
                aborted: 0,
                commit: lat(1.0),
                flush: lat(0.6),
                end_txn: lat(0.4),
                total: lat(1.7),
                commit_p50_fsyncs: Some(2.0),
                end_txn_p50_fsyncs: Some(0.8),
            });
        }
        let md = e2e_markdown(&r);
        assert!(
            md.contains("transactional, 1 record(s) per transaction"),
            "{md}"
        );
        assert!(
            md.contains(
                "| 100 B | 12 | 0 | 1.000 | 2.000 | 0.600 | 0.400 | 0.800 | 1.700 | 3.400 | 2.00 | 0.80 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("p50 0.500 ms, mean 0.500 ms, p99 1.000 ms"),
            "{md}"
        );
        let plain = e2e_markdown(&sample_e2e());
        assert!(!plain.contains("Transactions ("), "{plain}");
        assert!(plain.contains("non-transactional"), "{plain}");
    }

    #[test]
    fn json_file_roundtrips_as_value() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { return };
        let path = dir.path().join("r.json");
        assert!(write_json(&path, &sample_e2e()).is_ok());
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["mode"], "open_loop");
        assert_eq!(v["assignment"], "manual");
        assert_eq!(v["rows"].as_array().map(|a| a.len()), Some(3));
        assert_eq!(v["rows"][1]["size_bytes"], 1000);
        assert!(v["rows"][1]["e2e"]["p99_ms"].as_f64().is_some());
    }
}
