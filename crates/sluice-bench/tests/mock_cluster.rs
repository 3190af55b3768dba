//! Runs both benchmarks against librdkafka's in-process mock cluster, so the harness (topic
//! setup, stamping, consumer, delivery accounting, reports) is tested without a real broker.

use clap::Parser;
use rdkafka::mocking::MockCluster;
use sluice_bench::{BenchArgs, BenchCommand};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

fn parse(args: &[&str]) -> BenchArgs {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    match Cli::try_parse_from(all) {
        Ok(c) => c.bench,
        Err(e) => panic!("{e}"),
    }
}

/// A one-broker mock cluster with `topic` created (the mock has no CreateTopics).
fn mock(
    topic: &str,
    partitions: i32,
) -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
) {
    let cluster = match MockCluster::new(1) {
        Ok(c) => c,
        Err(e) => panic!("mock cluster: {e}"),
    };
    if let Err(e) = cluster.create_topic(topic, partitions, 1) {
        panic!("mock topic: {e}");
    }
    let bootstrap = cluster.bootstrap_servers();
    (cluster, bootstrap)
}

#[test]
fn e2e_open_loop_measures_every_message() {
    let (cluster, bootstrap) = mock("e2e-open", 1);
    let dir = tempfile::tempdir().ok();
    let dir = dir
        .as_ref()
        .map(|d| d.path().to_path_buf())
        .unwrap_or_default();
    let json = dir.join("e2e.json");
    let chart = dir.join("e2e.svg");
    let json_s = json.to_string_lossy().to_string();
    let chart_s = chart.to_string_lossy().to_string();
    let args = parse(&[
        "e2e",
        "-b",
        &bootstrap,
        "--topic",
        "e2e-open",
        "--sizes",
        "100B,10KB",
        "--rate",
        "200",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--quiet",
        "--no-group",
        "--json",
        &json_s,
        "--chart",
        &chart_s,
    ]);
    let BenchCommand::E2e(e2e_args) = &args.command else {
        panic!("parsed the wrong subcommand")
    };
    let report = match sluice_bench::e2e::run(e2e_args) {
        Ok(r) => r,
        Err(e) => panic!("e2e failed: {e}"),
    };
    assert_eq!(report.rows.len(), 2);
    for row in &report.rows {
        assert_eq!(row.sent, 200, "{row:?}: 1 s at 200 msg/s, warm-up excluded");
        assert_eq!(row.acked, row.sent, "{row:?}");
        assert_eq!(row.received, row.sent, "{row:?}");
        assert_eq!(row.e2e.count, row.received);
        assert_eq!(row.ack.count, row.acked);
        assert!(row.e2e.p50_ms > 0.0 && row.e2e.p50_ms <= row.e2e.max_ms);
        assert!((row.achieved_rate - 200.0).abs() < 20.0, "{row:?}");
    }
    // The full command also writes the JSON and the chart.
    assert!(sluice_bench::run(&args).is_ok());
    assert!(std::fs::read_to_string(&json)
        .unwrap_or_default()
        .contains("\"p999_ms\""));
    assert!(std::fs::read_to_string(&chart)
        .unwrap_or_default()
        .contains("</svg>"));
    drop(cluster);
}

fn run_e2e(args: &BenchArgs) -> sluice_bench::report::E2eReport {
    let BenchCommand::E2e(a) = &args.command else {
        panic!("parsed the wrong subcommand")
    };
    match sluice_bench::e2e::run(a) {
        Ok(r) => r,
        Err(e) => panic!("e2e failed: {e}"),
    }
}

#[test]
fn e2e_consumer_group_mode() {
    let (cluster, bootstrap) = mock("e2e-group", 1);
    let args = parse(&[
        "e2e",
        "-b",
        &bootstrap,
        "--topic",
        "e2e-group",
        "--sizes",
        "1KB",
        "--rate",
        "300",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--quiet",
        "--group-timeout",
        "20s",
    ]);
    let report = run_e2e(&args);
    let row = &report.rows[0];
    assert_eq!(row.sent, 300, "{row:?}");
    assert_eq!(row.received, row.sent, "{row:?}");
    assert_eq!(
        report.assignment,
        sluice_bench::report::AssignmentMode::Group,
        "the mock cluster supports consumer groups"
    );
    drop(cluster);
}

#[test]
fn e2e_saturation_sends_as_fast_as_possible() {
    // The mock keeps only 100k messages per partition, so a saturated run is kept short and
    // the consumer may legitimately miss messages the mock already dropped.
    let (cluster, bootstrap) = mock("e2e-sat", 1);
    let args = parse(&[
        "e2e",
        "-b",
        &bootstrap,
        "--topic",
        "e2e-sat",
        "--sizes",
        "100B",
        "--saturate",
        "--duration",
        "50ms",
        "--warmup",
        "0s",
        "--quiet",
        "--no-group",
    ]);
    let report = run_e2e(&args);
    let row = &report.rows[0];
    assert_eq!(row.target_rate, None);
    assert!(row.sent > 200, "saturation should send many: {row:?}");
    assert_eq!(row.acked, row.sent, "{row:?}");
    assert!(row.received <= row.acked, "{row:?}");
    assert_eq!(row.e2e.count, row.received);
    drop(cluster);
}

#[test]
fn throughput_counts_produce_and_consume() {
    let (cluster, bootstrap) = mock("tput", 4);
    let args = parse(&[
        "throughput",
        "-b",
        &bootstrap,
        "--topic",
        "tput",
        "--size",
        "1KB",
        "--producers",
        "2",
        "--consumers",
        "2",
        "--partitions",
        "4",
        "--rate",
        "2000",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--quiet",
        "--no-group",
    ]);
    let BenchCommand::Throughput(a) = &args.command else {
        panic!("parsed the wrong subcommand")
    };
    let report = match sluice_bench::throughput::run(a) {
        Ok(r) => r,
        Err(e) => panic!("throughput failed: {e}"),
    };
    assert_eq!(report.runs.len(), 1);
    for run in &report.runs {
        // 2000 msg/s over a 1 s window, paced from the start of the warm-up.
        assert!((1900..=2100).contains(&run.produce.messages), "{run:?}");
        assert_eq!(run.produce.bytes, run.produce.messages * 1000);
        let Some(c) = &run.consume else {
            panic!("consume phase missing")
        };
        // Everything acknowledged, warm-up and flush included, is read back.
        assert!(c.messages >= run.produce.messages + 300, "{run:?}");
        assert!(c.mb_per_sec > 0.0);
    }
    drop(cluster);
}

#[test]
fn e2e_transactional_read_committed() {
    let (cluster, bootstrap) = mock("e2e-txn", 1);
    let args = parse(&[
        "e2e",
        "-b",
        &bootstrap,
        "--topic",
        "e2e-txn",
        "--sizes",
        "1KB",
        "--rate",
        "100",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--quiet",
        "--no-group",
        "--transaction-size",
        "1",
        "--isolation",
        "read_committed",
    ]);
    let report = run_e2e(&args);
    assert_eq!(report.transaction_size, Some(1));
    let row = &report.rows[0];
    assert_eq!(row.received, row.sent, "{row:?}");
    let Some(txn) = &row.txn else {
        panic!("transaction timings missing: {row:?}")
    };
    assert_eq!(txn.aborted, 0, "{txn:?}");
    assert!(
        txn.committed >= row.sent,
        "warm-up transactions count too: {txn:?}"
    );
    assert_eq!(txn.commit.count, row.sent, "one measured commit per record");
    assert!(txn.commit.p50_ms > 0.0 && txn.total.p50_ms >= txn.commit.p50_ms);
    drop(cluster);
}

#[test]
fn throughput_transactional_counts_committed_records() {
    let (cluster, bootstrap) = mock("tput-txn", 1);
    let dir = tempfile::tempdir().ok();
    let dir_s = dir
        .as_ref()
        .map(|d| d.path().to_string_lossy().to_string())
        .unwrap_or_else(|| ".".to_string());
    let args = parse(&[
        "throughput",
        "-b",
        &bootstrap,
        "--topic",
        "tput-txn",
        "--size",
        "1KB",
        "--rate",
        "2000",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--quiet",
        "--no-group",
        "--transaction-size",
        "100",
        "--fsync-baseline",
        &dir_s,
    ]);
    let BenchCommand::Throughput(a) = &args.command else {
        panic!("parsed the wrong subcommand")
    };
    let report = match sluice_bench::throughput::run(a) {
        Ok(r) => r,
        Err(e) => panic!("throughput failed: {e}"),
    };
    assert!(report.fsync_baseline.is_some_and(|b| b.count > 0));
    let run = &report.runs[0];
    // Committed records arrive in whole transactions of 100.
    assert_eq!(run.produce.messages % 100, 0, "{run:?}");
    assert!((1700..=2300).contains(&run.produce.messages), "{run:?}");
    let Some(txn) = &run.txn else {
        panic!("transaction timings missing")
    };
    assert_eq!(txn.aborted, 0);
    // The window holds whole transactions; the last, partial one is committed at the stop.
    assert!(txn.committed_records >= run.produce.messages, "{txn:?}");
    assert!(
        txn.commit.count > 0 && txn.commit_p50_fsyncs.is_some(),
        "{txn:?}"
    );
    let Some(c) = &run.consume else {
        panic!("consume phase missing")
    };
    assert_eq!(
        c.messages, txn.committed_records,
        "read_committed sees every commit"
    );
    drop(cluster);
}
