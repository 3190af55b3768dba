//! Command-line arguments of `sluice bench` and the parsers for sizes and durations.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::error::{BenchError, Result};

/// Arguments of `sluice bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Which benchmark to run.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The benchmarks `sluice bench` can run.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// End-to-end latency (produce, store, consume) per payload size, open loop or saturated.
    E2e(E2eArgs),
    /// Produce and consume throughput with N producers and M consumers.
    Throughput(ThroughputArgs),
}

/// Options shared by every benchmark: where the broker is and where results go.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Kafka bootstrap address of the broker under test (any Kafka-protocol broker).
    #[arg(
        long,
        short = 'b',
        default_value = "127.0.0.1:9092",
        env = "SLUICE_BOOTSTRAP"
    )]
    pub bootstrap: String,
    /// Topic to use; by default a fresh topic named after the run is created.
    #[arg(long)]
    pub topic: Option<String>,
    /// Replication factor of the created topic.
    #[arg(long, default_value_t = 1)]
    pub replication_factor: i32,
    /// Producer acknowledgements: all (-1), 1 or 0.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: String,
    /// Use manual partition assignment instead of a consumer group.
    #[arg(long)]
    pub no_group: bool,
    /// How long to wait for the consumer group to assign partitions before falling back to
    /// manual assignment.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub group_timeout: Duration,
    /// Extra librdkafka client setting applied to producers and consumers (repeatable).
    #[arg(long = "client-config", short = 'X', value_parser = parse_key_value)]
    pub client_config: Vec<(String, String)>,
    /// PID of a local broker whose CPU and memory to report; detected from the bootstrap port
    /// when omitted.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Transactional producers: each producer gets a `transactional.id`, calls
    /// `init_transactions` once and then loops begin / produce N records / commit, reporting
    /// the time of each commit. Requires acks=all.
    #[arg(long, value_parser = parse_transaction_size)]
    pub transaction_size: Option<u64>,
    /// Consumer isolation level: read_committed sees transactional records once their commit
    /// marker is visible (librdkafka's default), read_uncommitted as soon as they are stored.
    #[arg(long, value_enum, default_value_t = Isolation::ReadCommitted)]
    pub isolation: Isolation,
    /// Before the run, time 4 KB write + fdatasync pairs in a scratch file in this directory
    /// (put it on the broker's disk) and express commit latencies in raw fsyncs.
    #[arg(long)]
    pub fsync_baseline: Option<PathBuf>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Do not print the progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl CommonArgs {
    /// Checks combinations of options that clap cannot: transactions need acks=all.
    pub fn validate(&self) -> Result<()> {
        if self.transaction_size.is_some() && self.acks != "all" {
            return Err(BenchError::InvalidArg {
                what: "acks",
                value: self.acks.clone(),
                reason: "transactional producers (--transaction-size) require --acks all"
                    .to_string(),
            });
        }
        Ok(())
    }
}

/// Consumer isolation level (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Only committed transactional records (and all non-transactional ones), up to the last
    /// stable offset.
    #[value(name = "read_committed", alias = "read-committed")]
    ReadCommitted,
    /// Every stored record up to the high watermark, including open and aborted transactions.
    #[value(name = "read_uncommitted", alias = "read-uncommitted")]
    ReadUncommitted,
}

impl Isolation {
    /// The librdkafka `isolation.level` value.
    pub fn as_config(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// Arguments of `sluice bench e2e`.
#[derive(Debug, Clone, Args)]
pub struct E2eArgs {
    /// Broker, topic, client and output options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Payload sizes to measure, comma separated (B, KB=1000, KiB=1024, MB, MiB).
    #[arg(long, default_value = "100B,1KB,10KB,100KB,1MB", value_parser = parse_sizes)]
    pub sizes: SizeList,
    /// Target send rate in messages per second (open loop: sends are scheduled at fixed
    /// intervals and latency counts from the scheduled time).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Cap on the scheduled byte rate in MB/s (1 MB = 10^6 B); large payloads are sent at
    /// min(rate, max-mbps / size).
    #[arg(long, default_value_t = 100.0)]
    pub max_mbps: f64,
    /// Saturation mode: send as fast as the client accepts (its queue bounded to 32 MiB),
    /// latency counted from the actual send.
    #[arg(long)]
    pub saturate: bool,
    /// Measured duration per payload size.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up per payload size, sent but excluded from the results.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Partitions of the created topic.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Producer linger.ms (batching delay); 0 for lowest latency.
    #[arg(long, default_value_t = 0)]
    pub linger_ms: u32,
    /// Write an SVG chart of latency percentiles by payload size to this file.
    #[arg(long)]
    pub chart: Option<PathBuf>,
}

/// Arguments of `sluice bench throughput`.
#[derive(Debug, Clone, Args)]
pub struct ThroughputArgs {
    /// Broker, topic, client and output options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Number of producer clients.
    #[arg(long, default_value_t = 1)]
    pub producers: u32,
    /// Number of consumer clients (0 skips the consume phase).
    #[arg(long, default_value_t = 1)]
    pub consumers: u32,
    /// Message payload size (B, KB=1000, KiB=1024, MB, MiB).
    #[arg(long, default_value = "1KB", value_parser = parse_size)]
    pub size: usize,
    /// Partitions of the created topic.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Instead of one run, run the produce phase once per partition count in this list
    /// (e.g. 1,10,100,1000) to see whether the broker's cost per byte depends on it.
    #[arg(long, value_delimiter = ',')]
    pub partitions_sweep: Vec<i32>,
    /// Total target send rate in messages per second across producers; 0 sends as fast as the
    /// clients accept. A fixed rate makes broker CPU per MB comparable across a sweep.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Producer compression codec.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// Producer linger.ms (batching delay).
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u32,
    /// Producer batch.size in bytes.
    #[arg(long, default_value_t = 1_000_000)]
    pub batch_size: u32,
    /// Measured produce duration.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up before the produce measurement window starts.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
}

/// Compression codecs a producer can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    pub fn as_config(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// A list of payload sizes in bytes, as given to `--sizes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeList(pub Vec<usize>);

/// Smallest payload: the stamp (run tag, sequence, send time) must fit.
pub const MIN_PAYLOAD: usize = crate::stamp::STAMP_LEN;

/// Parses a byte size such as `100`, `100B`, `1KB` (1000), `1KiB` (1024), `1MB`, `1MiB`.
pub fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let invalid = |reason: &str| BenchError::InvalidArg {
        what: "size",
        value: s.to_string(),
        reason: reason.to_string(),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| invalid("expected a number followed by B, KB, KiB, MB or MiB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        _ => return Err(invalid("unknown unit; use B, KB, KiB, MB or MiB")),
    };
    let bytes = (n * mult).round();
    if !(bytes >= MIN_PAYLOAD as f64 && bytes <= 100e6) {
        return Err(invalid(&format!(
            "size must be between {MIN_PAYLOAD} B (the timestamp header) and 100 MB"
        )));
    }
    Ok(bytes as usize)
}

/// Parses a comma-separated list of sizes (see [`parse_size`]).
pub fn parse_sizes(s: &str) -> Result<SizeList> {
    let sizes = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(parse_size)
        .collect::<Result<Vec<_>>>()?;
    if sizes.is_empty() {
        return Err(BenchError::InvalidArg {
            what: "sizes",
            value: s.to_string(),
            reason: "give at least one size, e.g. 1KB,100KB".to_string(),
        });
    }
    Ok(SizeList(sizes))
}

/// Parses a duration such as `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let invalid = || BenchError::InvalidArg {
        what: "duration",
        value: s.to_string(),
        reason: "expected a number followed by ms, s or m, e.g. 10s".to_string(),
    };
    let n: f64 = num.parse().map_err(|_| invalid())?;
    let secs = match unit {
        "ms" => n / 1e3,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        _ => return Err(invalid()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| invalid())
}

/// Parses `--transaction-size`: a positive number of records per transaction.
pub fn parse_transaction_size(s: &str) -> Result<u64> {
    match s.trim().replace('_', "").parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(BenchError::InvalidArg {
            what: "transaction size",
            value: s.to_string(),
            reason: "expected a positive number of records per transaction, e.g. 100".to_string(),
        }),
    }
}

/// Parses `all`, `-1`, `1` or `0` into the librdkafka `acks` value.
pub fn parse_acks(s: &str) -> Result<String> {
    match s.trim() {
        "all" | "-1" => Ok("all".to_string()),
        "1" | "0" => Ok(s.trim().to_string()),
        _ => Err(BenchError::InvalidArg {
            what: "acks",
            value: s.to_string(),
            reason: "use all, 1 or 0".to_string(),
        }),
    }
}

/// Parses a `key=value` client setting.
pub fn parse_key_value(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(BenchError::InvalidArg {
            what: "client setting",
            value: s.to_string(),
            reason: "expected key=value, e.g. -X socket.nagle.disable=true".to_string(),
        }),
    }
}

/// Human label of a byte size using decimal units (`1 KB` = 1000 B), as in the report tables.
pub fn size_label(bytes: usize) -> String {
    let (scale, unit) = match bytes {
        b if b >= 1_000_000 => (1_000_000, "MB"),
        b if b >= 1_000 => (1_000, "KB"),
        _ => (1, "B"),
    };
    if bytes / scale * scale == bytes {
        format!("{} {unit}", bytes / scale)
    } else {
        format!("{:.2} {unit}", bytes as f64 / scale as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_use_decimal_and_binary_units() {
        assert_eq!(parse_size("100B").ok(), Some(100));
        assert_eq!(parse_size("1KB").ok(), Some(1000));
        assert_eq!(parse_size("1KiB").ok(), Some(1024));
        assert_eq!(parse_size("1MB").ok(), Some(1_000_000));
        assert_eq!(parse_size("1.5 MiB").ok(), Some(1_572_864));
        assert!(parse_size("10").is_err(), "below the stamp size");
        assert!(parse_size("1GB").is_err());
        assert!(parse_size("abc").is_err());
        assert_eq!(
            parse_sizes("100B,1KB,10KB,100KB,1MB").ok(),
            Some(SizeList(vec![100, 1000, 10_000, 100_000, 1_000_000]))
        );
        assert!(parse_sizes(",").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s").ok(), Some(Duration::from_secs(10)));
        assert_eq!(
            parse_duration("250ms").ok(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_duration("2m").ok(), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3").ok(), Some(Duration::from_secs(3)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("").is_err());
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: BenchCommand,
    }

    fn parse(args: &[&str]) -> std::result::Result<BenchCommand, String> {
        use clap::Parser;
        let mut all = vec!["bench"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)
            .map(|c| c.command)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn transaction_options_parse() {
        let Ok(BenchCommand::Throughput(t)) = parse(&[
            "throughput",
            "--transaction-size",
            "10_000",
            "--isolation",
            "read_uncommitted",
            "--fsync-baseline",
            "/var/tmp",
        ]) else {
            panic!("throughput options rejected")
        };
        assert_eq!(t.common.transaction_size, Some(10_000));
        assert_eq!(t.common.isolation, Isolation::ReadUncommitted);
        assert_eq!(t.common.isolation.as_config(), "read_uncommitted");
        assert_eq!(t.common.fsync_baseline, Some(PathBuf::from("/var/tmp")));
        assert!(t.common.validate().is_ok());

        let Ok(BenchCommand::E2e(e)) = parse(&["e2e", "--isolation", "read-committed"]) else {
            panic!("e2e options rejected")
        };
        assert_eq!(
            e.common.transaction_size, None,
            "plain producers by default"
        );
        assert_eq!(e.common.isolation, Isolation::ReadCommitted);

        assert!(parse(&["e2e", "--transaction-size", "0"]).is_err());
        assert!(parse(&["e2e", "--transaction-size", "-3"]).is_err());
        assert!(parse(&["e2e", "--isolation", "dirty"]).is_err());
        let Ok(BenchCommand::E2e(e)) = parse(&["e2e", "--transaction-size", "1", "--acks", "1"])
        else {
            panic!("e2e options rejected")
        };
        assert!(e.common.validate().is_err(), "transactions need acks=all");
    }

    #[test]
    fn labels_are_decimal() {
        assert_eq!(size_label(100), "100 B");
        assert_eq!(size_label(1000), "1 KB");
        assert_eq!(size_label(100_000), "100 KB");
        assert_eq!(size_label(1_000_000), "1 MB");
        assert_eq!(size_label(1024), "1.02 KB");
    }

    proptest! {
        #[test]
        fn size_parser_never_panics(s in ".{0,16}") {
            let _ = parse_size(&s);
            let _ = parse_duration(&s);
        }

        #[test]
        fn label_roundtrips_through_parser(n in 32usize..100_000_000) {
            let label = size_label(n).replace(' ', "");
            let parsed = parse_size(&label).unwrap_or(0) as f64;
            // Labels keep two decimals, so the round trip is exact to 1%.
            prop_assert!((parsed - n as f64).abs() <= n as f64 * 0.01, "{label} -> {parsed}");
        }
    }
}
