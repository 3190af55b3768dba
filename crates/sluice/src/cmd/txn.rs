//! `sluice txn`: list and describe transactions, show a partition's producers, and abort a
//! hanging transaction, with the standard Kafka admin APIs (ListTransactions,
//! DescribeTransactions, DescribeProducers, WriteTxnMarkers), as `kafka-transactions.sh` does.

use anyhow::bail;
use sluice_admin::{AdminError, ListTransactionsFilter, TransactionDescription};

use crate::cmd::acl::admin_config;
use crate::kafka::ClientArgs;

/// The `sluice txn` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TxnCommand {
    /// List transactional ids with their producer id and state.
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// Only transactions in this state, e.g. Ongoing, PrepareCommit, CompleteAbort
        /// (repeatable).
        #[arg(long = "state", value_name = "STATE")]
        states: Vec<String>,
        /// Only transactions of this producer id (repeatable).
        #[arg(long = "producer-id", value_name = "N")]
        producer_ids: Vec<i64>,
        /// Only transactions running longer than MS milliseconds (brokers with
        /// ListTransactions v1: Sluice, Kafka 3.8+).
        #[arg(long, value_name = "MS")]
        duration_filter: Option<i64>,
    },
    /// Show the state, producer, timeout, start time and partitions of transactional ids.
    Describe {
        #[command(flatten)]
        client: ClientArgs,
        /// Transactional ids.
        #[arg(required = true, value_name = "TRANSACTIONAL_ID")]
        transactional_ids: Vec<String>,
    },
    /// Show the producers a partition knows and where each one's open transaction starts.
    DescribeProducers {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        partition: PartitionArgs,
    },
    /// Abort the transaction starting at an offset of a partition (a hanging transaction
    /// holding back read_committed consumers); needs ALTER or CLUSTER_ACTION on the cluster.
    Abort {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        partition: PartitionArgs,
        /// First offset of the transaction, as `describe-producers` shows it.
        #[arg(long, value_name = "OFFSET")]
        start_offset: i64,
    },
}

/// A topic partition.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PartitionArgs {
    /// Topic name.
    #[arg(long)]
    topic: String,
    /// Partition number.
    #[arg(long, value_name = "N")]
    partition: i32,
}

/// Runs a `sluice txn` subcommand.
pub(crate) async fn run(command: TxnCommand) -> anyhow::Result<()> {
    match command {
        TxnCommand::List {
            client,
            states,
            producer_ids,
            duration_filter,
        } => {
            let filter = ListTransactionsFilter {
                states,
                producer_ids,
                min_duration_ms: duration_filter,
            };
            let listed = sluice_admin::list_transactions(&admin_config(&client)?, &filter)
                .await
                .map_err(hint(&client))?;
            if !listed.unknown_states.is_empty() {
                eprintln!(
                    "sluice txn: warning: unknown state filter(s) {}; states are Empty, Ongoing, \
                     PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, PrepareEpochFence",
                    listed.unknown_states.join(", ")
                );
            }
            let rows = listed
                .transactions
                .iter()
                .map(|t| {
                    vec![
                        t.transactional_id.clone(),
                        t.producer_id.to_string(),
                        t.state.clone(),
                    ]
                })
                .collect();
            print_table(&["TRANSACTIONAL_ID", "PRODUCER_ID", "STATE"], rows);
        }
        TxnCommand::Describe {
            client,
            transactional_ids,
        } => {
            let results =
                sluice_admin::describe_transactions(&admin_config(&client)?, &transactional_ids)
                    .await
                    .map_err(hint(&client))?;
            let mut failures = Vec::new();
            for (i, (_, result)) in results.into_iter().enumerate() {
                match result {
                    Ok(d) => {
                        if i > 0 {
                            println!();
                        }
                        print_description(&d);
                    }
                    Err(e) => failures.push(e.to_string()),
                }
            }
            if !failures.is_empty() {
                bail!("{}", failures.join("; "));
            }
        }
        TxnCommand::DescribeProducers { client, partition } => {
            let producers = sluice_admin::describe_producers(
                &admin_config(&client)?,
                &partition.topic,
                partition.partition,
            )
            .await
            .map_err(hint(&client))?;
            let rows = producers
                .iter()
                .map(|p| {
                    vec![
                        p.producer_id.to_string(),
                        p.producer_epoch.to_string(),
                        p.last_sequence.to_string(),
                        p.last_timestamp.to_string(),
                        p.coordinator_epoch.to_string(),
                        p.current_txn_start_offset.to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "PRODUCER_ID",
                    "PRODUCER_EPOCH",
                    "LAST_SEQUENCE",
                    "LAST_TIMESTAMP",
                    "COORDINATOR_EPOCH",
                    "CURRENT_TXN_START_OFFSET",
                ],
                rows,
            );
        }
        TxnCommand::Abort {
            client,
            partition,
            start_offset,
        } => {
            let producer = sluice_admin::abort_transaction(
                &admin_config(&client)?,
                &partition.topic,
                partition.partition,
                start_offset,
            )
            .await
            .map_err(hint(&client))?;
            println!(
                "aborted the transaction of producer {} (epoch {}) starting at offset {} in {}-{}",
                producer.producer_id,
                producer.producer_epoch,
                start_offset,
                partition.topic,
                partition.partition
            );
        }
    }
    Ok(())
}

/// Turns an admin error into the command's error, with the "is a broker running there" hint
/// when the cluster could not be reached at all.
fn hint(client: &ClientArgs) -> impl FnOnce(AdminError) -> anyhow::Error + '_ {
    move |e| match e {
        AdminError::Connect { .. } => anyhow::Error::new(e).context(client.unreachable_hint()),
        other => other.into(),
    }
}

/// Prints one description as `Key: value` lines.
fn print_description(d: &TransactionDescription) {
    let start = if d.start_time_ms < 0 {
        "-".to_owned()
    } else {
        format!("{} ({})", d.start_time_ms, utc(d.start_time_ms))
    };
    let partitions: Vec<String> = d
        .partitions
        .iter()
        .map(|(topic, p)| format!("{topic}-{p}"))
        .collect();
    println!("TransactionalId: {}", d.transactional_id);
    println!("CoordinatorId: {}", d.coordinator_id);
    println!("ProducerId: {}", d.producer_id);
    println!("ProducerEpoch: {}", d.producer_epoch);
    println!("State: {}", d.state);
    println!("TimeoutMs: {}", d.timeout_ms);
    println!("StartTime: {start}");
    println!("TopicPartitions: {}", partitions.join(","));
}

/// Prints an aligned table with a header (and a note instead of rows when there are none).
fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// `ms` since the Unix epoch as an RFC 3339 UTC time with milliseconds.
fn utc(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: TxnCommand,
    }

    #[test]
    fn utc_renders_epoch_millis() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc(1_714_564_800_000), "2024-05-01T12:00:00.000Z");
    }

    #[test]
    fn abort_takes_topic_partition_and_start_offset() {
        let cli = Cli::try_parse_from([
            "txn",
            "abort",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--start-offset",
            "42",
            "--bootstrap",
            "h:1",
        ])
        .unwrap();
        let TxnCommand::Abort {
            client,
            partition,
            start_offset,
        } = cli.command
        else {
            panic!("not abort");
        };
        assert_eq!(
            (
                client.bootstrap.as_str(),
                partition.topic.as_str(),
                partition.partition,
                start_offset
            ),
            ("h:1", "orders", 0, 42)
        );
        assert!(Cli::try_parse_from(["txn", "describe"]).is_err());
    }
}
