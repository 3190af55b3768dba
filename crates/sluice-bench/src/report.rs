//! Benchmark results: the data model, the Markdown tables and the JSON file.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::args::size_label;
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
        "End-to-end latency, {mode}; acks={}, linger.ms={}, {} partition(s), {assignment}; \
         {}s measured per size after {}s warm-up. Times in ms.\n",
        r.acks, r.linger_ms, r.partitions, r.duration_secs, r.warmup_secs
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
    out
}

/// The throughput results as a Markdown table.
pub fn throughput_markdown(r: &ThroughputReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Throughput: {} producer(s), {} consumer(s), {} messages, acks={}, compression={}, \
         linger.ms={}, batch.size={}. MB = 10^6 B of payload.\n",
        r.producers,
        r.consumers,
        size_label(r.size_bytes),
        r.acks,
        r.compression,
        r.linger_ms,
        r.batch_size
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
                    rss_end_mib: 30.0,
                    rss_peak_mib: 31.0,
                }),
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
            runs: vec![ThroughputRun {
                topic: "t".into(),
                partitions: 10,
                produce,
                consume: Some(RateStats::new(1_000_000, 1_000_000_000, 2.0, 1)),
                broker_produce: Some(broker),
                broker_consume: None,
                broker_cpu_ms_per_mb: per_mb,
            }],
        };
        let md = throughput_markdown(&report);
        assert!(
            md.contains("| 10 | 100.0 | 100000 | 500.0 | 500000 | 1 | 0.20 | 2.00 | 12 |"),
            "{md}"
        );
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
