//! `sluice produce`: send the lines of stdin to a topic and wait until each is delivered.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::mpsc;

use crate::kafka::{parse_key_value, ClientArgs};

/// Messages awaiting their delivery report before reading more input; bounds memory while
/// still letting librdkafka batch.
const MAX_IN_FLIGHT: usize = 10_000;

/// Arguments of `sluice produce`.
#[derive(Debug, clap::Args)]
pub(crate) struct ProduceArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Topic to write to.
    topic: String,
    /// Split each line at the first occurrence of SEP into key and value (lines without SEP
    /// get no key).
    #[arg(short = 'K', long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Header added to every message, e.g. `-H source=cli` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    headers: Vec<(String, String)>,
    /// Acknowledgements to wait for: all (-1), 1 or 0.
    #[arg(long, default_value = "all", value_parser = ["all", "-1", "0", "1"], allow_hyphen_values = true)]
    acks: String,
    /// Compression codec of the batches.
    #[arg(long, default_value = "none", value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    compression: String,
    /// Write every message to this partition [default: chosen by key hash, or spread out].
    #[arg(short = 'p', long)]
    partition: Option<i32>,
}

/// Reads stdin line by line (bytes, not necessarily UTF-8; the trailing `\n` is dropped) and
/// produces one message per line. Fails if any message could not be delivered.
pub(crate) async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let timeout_ms = args.client.request_timeout_ms.to_string();
    let producer: FutureProducer = args
        .client
        .client_config()
        .set("acks", &args.acks)
        .set("compression.codec", &args.compression)
        .set("linger.ms", "5")
        .set("message.timeout.ms", &timeout_ms)
        .create()
        .context("could not create the Kafka producer (check --compression and -X properties)")?;
    let headers = args
        .headers
        .iter()
        .fold(OwnedHeaders::new(), |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value.as_bytes()),
            })
        });
    let separator = args.key_separator.as_deref().map(str::as_bytes);
    if separator.is_some_and(<[u8]>::is_empty) {
        bail!("--key-separator must not be empty");
    }

    let mut tracker = DeliveryTracker::default();
    let (mut lines, reader) = stdin_lines();
    while let Some(line) = lines.recv().await {
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let (key, value) = split_key(text, separator);
        let mut record = FutureRecord::<[u8], [u8]>::to(&args.topic)
            .payload(value)
            .headers(headers.clone());
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = args.partition {
            record = record.partition(partition);
        }
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    tracker.push(delivery).await;
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), rejected)) => {
                    // librdkafka's queue is full: make room by waiting for the oldest delivery.
                    record = rejected;
                    if !tracker.wait_oldest().await {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                Err((e, _)) => {
                    tracker.failed(e);
                    break;
                }
            }
        }
    }
    while tracker.wait_oldest().await {}
    let read = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the stdin reader thread panicked"))?;
    let finished = tracker.finish(&args.topic, &args.client);
    read.context("could not read stdin")?;
    finished
}

/// Reads stdin on a dedicated thread (blocking reads must not stall the runtime) and hands
/// over lines, `\n` included, through a bounded channel so a slow cluster throttles reading.
fn stdin_lines() -> (
    mpsc::Receiver<Vec<u8>>,
    std::thread::JoinHandle<std::io::Result<()>>,
) {
    let (tx, rx) = mpsc::channel(1024);
    let reader = std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            if std::io::BufRead::read_until(&mut stdin, b'\n', &mut line)? == 0
                || tx.blocking_send(line).is_err()
            {
                return Ok(());
            }
        }
    });
    (rx, reader)
}

/// Splits a line into an optional key and the value at the first separator.
fn split_key<'a>(line: &'a [u8], separator: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(sep) = separator else {
        return (None, line);
    };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(at) => (Some(&line[..at]), &line[at + sep.len()..]),
        None => (None, line),
    }
}

/// Pending delivery reports and the outcome of those already received.
#[derive(Default)]
struct DeliveryTracker {
    pending: VecDeque<DeliveryFuture>,
    delivered: u64,
    failed: u64,
    first_error: Option<KafkaError>,
}

impl DeliveryTracker {
    /// Tracks a sent message, first waiting for the oldest one if the window is full.
    async fn push(&mut self, delivery: DeliveryFuture) {
        if self.pending.len() >= MAX_IN_FLIGHT {
            self.wait_oldest().await;
        }
        self.pending.push_back(delivery);
    }

    /// Waits for the oldest pending delivery report; false if none is pending.
    async fn wait_oldest(&mut self) -> bool {
        let Some(delivery) = self.pending.pop_front() else {
            return false;
        };
        match delivery.await {
            Ok(Ok(_)) => self.delivered += 1,
            Ok(Err((e, _))) => self.failed(e),
            Err(_) => self.failed(KafkaError::Canceled),
        }
        true
    }

    /// Records a message that was not delivered.
    fn failed(&mut self, error: KafkaError) {
        self.failed += 1;
        self.first_error.get_or_insert(error);
    }

    /// Prints the summary to stderr; an error if anything failed.
    fn finish(self, topic: &str, client: &ClientArgs) -> anyhow::Result<()> {
        eprintln!(
            "sluice produce: {} message(s) delivered to {topic}",
            self.delivered
        );
        if let Some(error) = self.first_error {
            let hint = match error.rdkafka_error_code() {
                Some(RDKafkaErrorCode::MessageTimedOut) => {
                    format!("; {}", client.unreachable_hint())
                }
                _ => String::new(),
            };
            bail!(
                "{} message(s) were not delivered to {topic}; first error: {error}{hint}",
                self.failed,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::split_key;

    #[test]
    fn key_is_split_at_first_separator() {
        assert_eq!(
            split_key(b"k::v::w", Some(b"::")),
            (Some(&b"k"[..]), &b"v::w"[..])
        );
        assert_eq!(split_key(b"::v", Some(b"::")), (Some(&b""[..]), &b"v"[..]));
        assert_eq!(split_key(b"novalue", Some(b"\t")), (None, &b"novalue"[..]));
        assert_eq!(split_key(b"a\tb", None), (None, &b"a\tb"[..]));
    }
}
