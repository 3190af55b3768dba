//! Presets: settings known to work together, per platform, so that a destination is not
//! configured by trial and error. A preset is applied first; explicit settings override it
//! (and the linter then checks the result).

use std::time::Duration;

use serde::Deserialize;

use crate::sinks::SinkOptions;

/// What a destination is tuned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Send at once: no lingering, no compression; still acknowledged by all replicas.
    LowLatency,
    /// Large, compressed batches and more requests in flight.
    HighThroughput,
    /// Idempotent, acknowledged by all replicas, retried for a long time.
    Durable,
    /// Order kept per key (Kafka partition, SQS/SNS message group, Kinesis shard) across retries.
    Ordered,
}

impl Preset {
    /// The preset's name as written in a pipeline file.
    pub fn name(self) -> &'static str {
        match self {
            Preset::LowLatency => "low-latency",
            Preset::HighThroughput => "high-throughput",
            Preset::Durable => "durable",
            Preset::Ordered => "ordered",
        }
    }

    /// librdkafka producer properties.
    pub fn kafka_properties(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Preset::LowLatency => &[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("linger.ms", "0"),
                ("compression.type", "none"),
                ("socket.nagle.disable", "true"),
                ("max.in.flight.requests.per.connection", "5"),
            ],
            Preset::HighThroughput => &[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("linger.ms", "20"),
                ("batch.size", "1048576"),
                ("compression.type", "lz4"),
                ("queue.buffering.max.kbytes", "262144"),
                ("max.in.flight.requests.per.connection", "5"),
            ],
            Preset::Durable => &[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("max.in.flight.requests.per.connection", "5"),
                ("message.timeout.ms", "300000"),
            ],
            Preset::Ordered => &[
                ("acks", "all"),
                // Idempotence keeps order across retries with up to 5 requests in flight.
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("max.in.flight.requests.per.connection", "5"),
            ],
        }
    }

    /// Driver settings for a destination of `kind` (`kafka`, `sqs`, `sns`, `kinesis`).
    pub fn sink_options(self, kind: &str) -> SinkOptions {
        let base = base_options(kind);
        match self {
            Preset::LowLatency => SinkOptions {
                linger: Duration::ZERO,
                max_in_flight: base.max_in_flight.max(8),
                ..base
            },
            Preset::HighThroughput => SinkOptions {
                linger: if kind == "kafka" {
                    Duration::ZERO
                } else {
                    Duration::from_millis(50)
                },
                max_in_flight: base.max_in_flight.max(16),
                buffer_bytes: 128 << 20,
                ..base
            },
            Preset::Durable => SinkOptions {
                max_attempts: 30,
                delivery_timeout: Duration::from_secs(600),
                ..base
            },
            Preset::Ordered => SinkOptions {
                ordered: true,
                max_in_flight: 1,
                ..base
            },
        }
    }
}

/// Driver settings without a preset: librdkafka batches Kafka records itself, so its driver
/// does not linger and keeps many calls in flight.
pub fn base_options(kind: &str) -> SinkOptions {
    match kind {
        "kafka" => SinkOptions {
            linger: Duration::ZERO,
            max_in_flight: 64,
            ..SinkOptions::default()
        },
        _ => SinkOptions::default(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn kafka_presets_pass_the_sdk_linter() {
        for p in [
            Preset::LowLatency,
            Preset::HighThroughput,
            Preset::Durable,
            Preset::Ordered,
        ] {
            let props: BTreeMap<String, String> = p
                .kafka_properties()
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            assert_eq!(sluice_sdk::lint::lint(&props), vec![], "{}", p.name());
        }
    }

    #[test]
    fn ordered_means_one_request_in_flight() {
        for kind in ["kafka", "sqs", "sns", "kinesis"] {
            let o = Preset::Ordered.sink_options(kind);
            assert!(o.ordered && o.max_in_flight == 1, "{kind}");
        }
    }
}
