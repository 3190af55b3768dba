//! `sluice bench`: end-to-end latency and throughput benchmarks for any Kafka-protocol broker
//! (issue 4).
//!
//! Clients are librdkafka (through `rdkafka`), so the same run works against Sluice, Apache
//! Kafka, Redpanda or MSK. Results are printed as a Markdown table on stdout, optionally
//! written as JSON and (for e2e) an SVG chart; a progress line goes to stderr.

pub mod args;
pub mod broker_proc;
pub mod chart;
pub mod client;
pub mod e2e;
pub mod error;
pub mod fsync_probe;
pub mod progress;
pub mod report;
pub mod schedule;
pub mod stamp;
pub mod stats;
pub mod throughput;
pub mod txn;

pub use args::{BenchArgs, BenchCommand, E2eArgs, ThroughputArgs};
pub use error::{BenchError, Result};

/// Runs the benchmark selected by `args`, prints the Markdown table on stdout and writes the
/// JSON and chart files that were asked for.
pub fn run(args: &BenchArgs) -> Result<()> {
    match &args.command {
        BenchCommand::E2e(a) => {
            let report = e2e::run(a)?;
            println!("{}", report::e2e_markdown(&report));
            if let Some(path) = &a.common.json {
                report::write_json(path, &report)?;
            }
            if let Some(path) = &a.chart {
                chart::write_svg(path, &report)?;
            }
        }
        BenchCommand::Throughput(a) => {
            let report = throughput::run(a)?;
            println!("{}", report::throughput_markdown(&report));
            if let Some(path) = &a.common.json {
                report::write_json(path, &report)?;
            }
        }
    }
    Ok(())
}
