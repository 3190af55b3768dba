//! `sluice consume`: print the messages of a topic.

mod format;

use std::io::Write;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::{self, ClientArgs};
use format::Template;

/// Arguments of `sluice consume`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConsumeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Topic to read.
    topic: String,
    /// Start at the oldest message instead of the end (without a committed group offset).
    #[arg(long, conflicts_with = "offset")]
    from_beginning: bool,
    /// Consumer group: join it, start from its committed offsets and commit progress.
    #[arg(short = 'g', long)]
    group: Option<String>,
    /// Exit after printing N messages.
    #[arg(short = 'n', long, value_name = "N")]
    count: Option<u64>,
    /// Read only this partition.
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Where to start: `beginning`, `end`, an offset N, or -N for N messages before the end.
    #[arg(short = 'o', long, allow_hyphen_values = true)]
    offset: Option<StartOffset>,
    /// Output template per message, followed by a newline: %k key, %v value, %h headers,
    /// %p partition, %o offset, %t topic, %T timestamp (ms), %% a literal %; \n \t escapes.
    #[arg(short = 'f', long, default_value = "%v")]
    format: Template,
    /// Exit once no message arrived for this many milliseconds [default: wait forever].
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
}

/// Where consumption starts in each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StartOffset(Offset);

impl FromStr for StartOffset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let offset = match s {
            "beginning" => Offset::Beginning,
            "end" => Offset::End,
            _ => match s.parse::<i64>() {
                Ok(n) if n < 0 => Offset::OffsetTail(n.checked_neg().unwrap_or(i64::MAX)),
                Ok(n) => Offset::Offset(n),
                Err(_) => {
                    return Err(format!(
                        "invalid offset {s:?}: expected beginning, end, an offset N or -N"
                    ));
                }
            },
        };
        Ok(StartOffset(offset))
    }
}

/// Consumes until `--count` messages, `--timeout-ms` of silence or Ctrl-C.
pub(crate) async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let consumer = create_consumer(&args)?;
    let explicit_start = args.partition.is_some() || args.offset.is_some();
    match (&args.group, explicit_start) {
        (Some(_), false) => consumer
            .subscribe(&[&args.topic])
            .with_context(|| format!("could not subscribe to topic {}", args.topic))?,
        _ => assign(&consumer, &args)?,
    }

    let idle = args.timeout_ms.map(Duration::from_millis);
    let mut printed: u64 = 0;
    let mut line = Vec::new();
    let mut stdout = std::io::stdout();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while args.count.is_none_or(|n| printed < n) {
        let received = tokio::select! {
            r = recv(&consumer, idle) => r,
            _ = &mut ctrl_c => break,
        };
        let message = match received {
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                tracing::warn!("error while consuming {}: {e}", args.topic);
                continue;
            }
            None => {
                if let Some(n) = args.count {
                    bail!(
                        "only {printed} of {n} message(s) arrived from {} before {} ms without \
                         messages",
                        args.topic,
                        args.timeout_ms.unwrap_or_default()
                    );
                }
                break;
            }
        };
        line.clear();
        args.format.render(&message, &mut line);
        line.push(b'\n');
        match stdout.write_all(&line).and_then(|()| stdout.flush()) {
            Ok(()) => printed += 1,
            // The reader went away (e.g. `| head`): nothing more to do.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e).context("could not write to stdout"),
        }
    }
    Ok(())
}

/// Receives the next message; `None` when `idle` passed without one.
async fn recv(
    consumer: &StreamConsumer,
    idle: Option<Duration>,
) -> Option<rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'_>>> {
    match idle {
        Some(idle) => tokio::time::timeout(idle, consumer.recv()).await.ok(),
        None => Some(consumer.recv().await),
    }
}

/// A consumer; without `--group` it uses a throwaway group id and never commits.
fn create_consumer(args: &ConsumeArgs) -> anyhow::Result<StreamConsumer> {
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| format!("sluice-consume-{}", std::process::id()));
    let reset = if args.from_beginning {
        "earliest"
    } else {
        "latest"
    };
    args.client
        .client_config()
        .set("group.id", &group)
        .set(
            "enable.auto.commit",
            if args.group.is_some() {
                "true"
            } else {
                "false"
            },
        )
        .set("auto.offset.reset", reset)
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false")
        .create()
        .context("could not create the Kafka consumer; check the -X client properties")
}

/// Assigns the requested partitions (all of the topic's by default) at the start offset.
fn assign(consumer: &StreamConsumer, args: &ConsumeArgs) -> anyhow::Result<()> {
    let metadata = kafka::fetch_metadata(consumer.client(), Some(&args.topic), &args.client)?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == args.topic)
        .filter(|t| t.error().is_none() && !t.partitions().is_empty());
    let Some(topic) = topic else {
        bail!(
            "topic {} does not exist; create it with `sluice topic create {}` or produce to it",
            args.topic,
            args.topic
        );
    };
    let start = match (args.offset, args.from_beginning) {
        (Some(StartOffset(offset)), _) => offset,
        (None, true) => Offset::Beginning,
        // A group's committed offset, falling back to auto.offset.reset.
        (None, false) if args.group.is_some() => Offset::Stored,
        (None, false) => Offset::End,
    };
    let mut list = TopicPartitionList::new();
    for partition in topic.partitions() {
        if args.partition.is_none_or(|p| p == partition.id()) {
            list.add_partition_offset(&args.topic, partition.id(), start)
                .context("could not set the start offset")?;
        }
    }
    if list.count() == 0 {
        bail!(
            "topic {} has no partition {} (it has {})",
            args.topic,
            args.partition.unwrap_or_default(),
            topic.partitions().len()
        );
    }
    consumer
        .assign(&list)
        .with_context(|| format!("could not assign the partitions of {}", args.topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_offsets_parse() {
        assert_eq!("beginning".parse(), Ok(StartOffset(Offset::Beginning)));
        assert_eq!("end".parse(), Ok(StartOffset(Offset::End)));
        assert_eq!("17".parse(), Ok(StartOffset(Offset::Offset(17))));
        assert_eq!("-5".parse(), Ok(StartOffset(Offset::OffsetTail(5))));
        assert!("soon".parse::<StartOffset>().is_err());
    }
}
