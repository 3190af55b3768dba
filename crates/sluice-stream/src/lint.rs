//! Misconfiguration alerts for pipelines and destinations: each rule has an id, a reason and
//! the fix. `sluice stream run` refuses to start on errors; `sluice lint-config pipeline.yml`
//! prints them. Kafka destinations also get the SDK's producer rules (`kafka/<rule>`).

use std::collections::BTreeMap;
use std::fmt;

pub use sluice_sdk::lint::Severity;

use crate::fanout::Policy;
use crate::pipeline::{DestinationConfig, DestinationKind, PipelineConfig};
use crate::sinks::field::Field;

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable rule id (see docs/stream.md).
    pub rule: String,
    /// How bad it is.
    pub severity: Severity,
    /// Where: a destination's name, `source` or `delivery`.
    pub subject: String,
    /// What is wrong and why it matters.
    pub reason: String,
    /// What to change.
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(
            f,
            "{level}[{}] {}: {} (fix: {})",
            self.rule, self.subject, self.reason, self.fix
        )
    }
}

struct Out(Vec<Finding>);

impl Out {
    fn push(&mut self, rule: &str, severity: Severity, subject: &str, reason: String, fix: &str) {
        self.0.push(Finding {
            rule: rule.to_owned(),
            severity,
            subject: subject.to_owned(),
            reason,
            fix: fix.to_owned(),
        });
    }
}

/// Checks a whole pipeline.
pub fn lint_pipeline(config: &PipelineConfig) -> Vec<Finding> {
    let mut out = Out(Vec::new());
    for d in &config.destinations {
        lint_destination(d, &mut out);
    }
    if let Some(d) = &config.delivery.dead_letter {
        lint_destination(d, &mut out);
        if matches!(
            d.kind(),
            Ok(DestinationKind::Sqs(_) | DestinationKind::Sns(_))
        ) {
            out.push(
                "dead-letter-attribute-limit",
                Severity::Warning,
                "delivery",
                format!("the dead-letter destination {:?} takes 10 attributes per message and a dead-lettered event carries 4 more headers than it had: events with over 6 headers cannot be dead-lettered there", d.name),
                "dead-letter to a Kafka topic, or set headers: false on it",
            );
        }
        if config.destinations.iter().any(|x| same_target(x, d)) {
            out.push(
                "dead-letter-is-a-destination",
                Severity::Warning,
                "delivery",
                format!(
                    "the dead-letter destination {:?} writes where a destination does",
                    d.name
                ),
                "point dead_letter at its own topic or queue",
            );
        }
    }
    match config.delivery.policy {
        Policy::BestEffort if config.delivery.dead_letter.is_none() => out.push(
            "best-effort-without-dead-letter",
            Severity::Error,
            "delivery",
            "policy best_effort has nowhere to put failed events".into(),
            "add delivery.dead_letter, or use policy: all",
        ),
        Policy::Fallback if config.destinations.len() < 2 => out.push(
            "fallback-single-destination",
            Severity::Warning,
            "delivery",
            "policy fallback with one destination has nothing to fall back to".into(),
            "add a second destination, or use policy: all",
        ),
        _ => {}
    }
    let source = &config.source.kafka.properties;
    if source.get("enable.auto.commit").map(|v| v.trim()) == Some("true")
        && source.get("enable.auto.offset.store").map(|v| v.trim()) != Some("false")
    {
        out.push(
            "source-auto-offset-store",
            Severity::Error,
            "source",
            "enable.auto.offset.store would commit offsets of events the destinations have not acknowledged".into(),
            "leave enable.auto.offset.store unset: the pipeline stores offsets itself",
        );
    }
    out.0
}

fn same_target(a: &DestinationConfig, b: &DestinationConfig) -> bool {
    match (a.kind(), b.kind()) {
        (Ok(DestinationKind::Kafka(x)), Ok(DestinationKind::Kafka(y))) => x.topic == y.topic,
        (Ok(DestinationKind::Sqs(x)), Ok(DestinationKind::Sqs(y))) => x.queue_url == y.queue_url,
        (Ok(DestinationKind::Sns(x)), Ok(DestinationKind::Sns(y))) => x.topic_arn == y.topic_arn,
        (Ok(DestinationKind::Kinesis(x)), Ok(DestinationKind::Kinesis(y))) => {
            x.stream_name == y.stream_name && x.stream_arn == y.stream_arn
        }
        _ => false,
    }
}

fn lint_destination(d: &DestinationConfig, out: &mut Out) {
    let Ok(kind) = d.kind() else { return };
    let name = d.name.as_str();
    let options = d.sink_options().unwrap_or_default();
    let service_max = match kind {
        DestinationKind::Kafka(_) => usize::MAX,
        DestinationKind::Sqs(_) | DestinationKind::Sns(_) => 10,
        DestinationKind::Kinesis(_) => 500,
    };
    if let Some(n) = d.batch.max_records.filter(|&n| n > service_max) {
        out.push(
            "batch-over-service-limit",
            Severity::Error,
            name,
            format!(
                "batch.max_records={n} but {} takes at most {service_max} per request",
                kind.name()
            ),
            "lower batch.max_records (the driver would cap it anyway)",
        );
    }
    let record_max = match kind {
        DestinationKind::Kafka(k) => k.message_max_bytes(),
        DestinationKind::Sqs(q) => q.message_limit(),
        DestinationKind::Sns(_) => 256 * 1024,
        DestinationKind::Kinesis(_) => 1 << 20,
    };
    if options.buffer_bytes < record_max {
        out.push(
            "buffer-smaller-than-record",
            Severity::Warning,
            name,
            format!(
                "batch.buffer_bytes={} is below the largest record {} accepts ({record_max}); such records wait for the whole buffer",
                options.buffer_bytes,
                kind.name()
            ),
            "raise batch.buffer_bytes",
        );
    }
    match kind {
        DestinationKind::Kafka(_) => lint_kafka(d, &options, out),
        DestinationKind::Sqs(q) => {
            lint_fifo(name, "sqs", q.is_fifo(), q.group_id.as_ref(), &options, out);
        }
        DestinationKind::Sns(s) => {
            lint_fifo(name, "sns", s.is_fifo(), s.group_id.as_ref(), &options, out);
        }
        DestinationKind::Kinesis(k) => {
            if let Field::Static(v) = &k.partition_key {
                if k.explicit_hash_key.is_none() {
                    out.push(
                        "kinesis-hot-partition-key",
                        Severity::Warning,
                        name,
                        format!("partition_key static:{v} sends every record to one shard (1 MB/s, 1,000 records/s)"),
                        "use key or header:<name> with many distinct values, or random when order does not matter",
                    );
                }
            }
            if options.ordered && matches!(k.partition_key, Field::Random) {
                out.push(
                    "kinesis-ordered-random-key",
                    Severity::Error,
                    name,
                    "ordered delivery with random partition keys: records of one key land on different shards".into(),
                    "use partition_key: key (or a header that identifies the entity)",
                );
            }
        }
    }
}

fn lint_fifo(
    name: &str,
    kind: &str,
    fifo: bool,
    group: Option<&Field>,
    options: &crate::sinks::SinkOptions,
    out: &mut Out,
) {
    if fifo && group.is_none() {
        out.push(
            &format!("{kind}-fifo-without-group-id"),
            Severity::Error,
            name,
            format!("a FIFO {kind} target needs a MessageGroupId for every message; none is configured, so every send fails"),
            "set group_id: key (or header:<name>)",
        );
    }
    if fifo && matches!(group, Some(Field::Static(_))) {
        out.push(
            &format!("{kind}-fifo-single-group"),
            Severity::Warning,
            name,
            "a static group id serializes the whole FIFO target through one message group".into(),
            "derive group_id from the key or a header",
        );
    }
    if fifo && !options.ordered && options.max_in_flight > 1 {
        out.push(
            &format!("{kind}-fifo-parallel-batches"),
            Severity::Warning,
            name,
            format!("{} batches in flight to a FIFO target can reach it out of order, and a retry sends a record after newer ones", options.max_in_flight),
            "use preset: ordered (one batch in flight, retries before newer records)",
        );
    }
    if !fifo && options.ordered {
        out.push(
            &format!("{kind}-ordered-standard"),
            Severity::Warning,
            name,
            format!("ordered delivery to a standard {kind} target: the service itself does not keep order"),
            "use a FIFO target (name ending in .fifo) with group_id",
        );
    }
}

fn lint_kafka(d: &DestinationConfig, options: &crate::sinks::SinkOptions, out: &mut Out) {
    let props = d.kafka_properties();
    for f in sluice_sdk::lint::lint(&props) {
        let fix = match f.rule {
            "acks-on-critical-topic" | "idempotence-needs-acks-all" => "set acks: all",
            "retries-without-idempotence" => "set enable.idempotence: true",
            _ => "see docs/sdk.md",
        };
        out.push(
            &format!("kafka/{}", f.rule),
            f.severity,
            &d.name,
            f.message,
            fix,
        );
    }
    let get = |k: &str| props.get(k).map(|v| v.trim().to_owned());
    let num = |k: &str, default: i64| get(k).and_then(|v| v.parse().ok()).unwrap_or(default);
    let idempotent = get("enable.idempotence").as_deref() != Some("false");
    if options.ordered
        && !idempotent
        && num("max.in.flight.requests.per.connection", 5) > 1
        && num("retries", i64::from(i32::MAX)) > 0
    {
        out.push(
            "kafka-ordered-retries-reorder",
            Severity::Error,
            &d.name,
            "ordered delivery, but without idempotence a retried request can land after a newer one".into(),
            "set enable.idempotence: true (or max.in.flight.requests.per.connection: 1)",
        );
    }
    if matches!(get("acks").as_deref(), Some("0" | "1")) && d.preset == Some(crate::Preset::Durable)
    {
        out.push(
            "kafka-acks-below-durable",
            Severity::Error,
            &d.name,
            "preset durable with acks below all: a leader failure loses acknowledged records"
                .into(),
            "remove the acks override",
        );
    }
    if let Some(f) = d.kafka.as_ref().and_then(|k| k.failover.as_ref()) {
        if f.clusters.is_empty() {
            out.push(
                "kafka-failover-without-standby",
                Severity::Error,
                &d.name,
                "failover names no standby cluster".into(),
                "add failover.clusters with their bootstrap.servers, or remove failover",
            );
        }
        if !options.ordered {
            out.push(
                "kafka-failover-reorders",
                Severity::Warning,
                &d.name,
                format!("{} requests in flight: records of one key can reach the two clusters out of order across a switch", options.max_in_flight),
                "use preset: ordered (pause, drain, switch) when consumers need per-key order",
            );
        }
        if f.switch_back_after_ms < f.switch_after_ms {
            out.push(
                "kafka-failover-flapping",
                Severity::Warning,
                &d.name,
                "switch_back_after_ms is shorter than switch_after_ms: a flapping primary bounces traffic".into(),
                "make switch_back_after_ms several times switch_after_ms",
            );
        }
    }
    if !props.contains_key("bootstrap.servers") && !props.contains_key("metadata.broker.list") {
        out.push(
            "kafka-no-bootstrap",
            Severity::Error,
            &d.name,
            "no bootstrap.servers: the producer cannot find the cluster".into(),
            "add properties.bootstrap.servers",
        );
    }
}

/// Acks below the cluster's `min.insync.replicas` for `topic` (checked against a live
/// cluster at start; `min_isr` as the cluster reports it).
pub fn lint_acks_against_cluster(
    destination: &str,
    props: &BTreeMap<String, String>,
    topic: &str,
    min_isr: i64,
) -> Option<Finding> {
    let acks = props.get("acks").map(|v| v.trim().to_owned());
    let weak = matches!(acks.as_deref(), Some("0" | "1"));
    (weak && min_isr > 1).then(|| Finding {
        rule: "kafka-acks-below-min-isr".into(),
        severity: Severity::Error,
        subject: destination.to_owned(),
        reason: format!(
            "acks={} while topic {topic} has min.insync.replicas={min_isr}: records are acknowledged before the replicas that make them durable have them",
            acks.unwrap_or_default()
        ),
        fix: "set acks: all".into(),
    })
}

/// How many findings are errors.
pub fn errors(findings: &[Finding]) -> usize {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(destinations: &str, delivery: &str) -> PipelineConfig {
        let text = format!(
            "source: {{ kafka: {{ topics: [t], properties: {{ bootstrap.servers: b, group.id: g }} }} }}\n\
             destinations:\n{destinations}\n{delivery}"
        );
        PipelineConfig::from_yaml(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    fn rules(p: &PipelineConfig) -> Vec<String> {
        lint_pipeline(p).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn each_rule_fires() {
        let sqs_fifo = "  - { name: q, sqs: { queue_url: 'http://x/1/q.fifo' } }";
        assert!(rules(&pipeline(sqs_fifo, "")).contains(&"sqs-fifo-without-group-id".to_owned()));
        let parallel = "  - { name: q, sqs: { queue_url: 'http://x/1/q.fifo', group_id: key } }";
        assert_eq!(
            rules(&pipeline(parallel, "")),
            ["sqs-fifo-parallel-batches"]
        );
        let ordered = "  - { name: q, preset: ordered, sqs: { queue_url: 'http://x/1/q.fifo', group_id: key } }";
        assert!(rules(&pipeline(ordered, "")).is_empty());
        let sns =
            "  - { name: s, batch: { max_records: 20 }, sns: { topic_arn: 'arn:aws:sns:r:1:t' } }";
        assert_eq!(rules(&pipeline(sns, "")), ["batch-over-service-limit"]);
        let hot = "  - { name: k, kinesis: { stream_name: s, partition_key: 'static:x' } }";
        assert_eq!(rules(&pipeline(hot, "")), ["kinesis-hot-partition-key"]);
        let kafka = "  - { name: k, preset: ordered, kafka: { topic: t2, properties: { bootstrap.servers: b, enable.idempotence: 'false' } } }";
        let r = rules(&pipeline(kafka, ""));
        assert!(
            r.contains(&"kafka-ordered-retries-reorder".to_owned()),
            "{r:?}"
        );
        assert!(
            r.contains(&"kafka/retries-without-idempotence".to_owned()),
            "{r:?}"
        );
        let two = "  - { name: a, kafka: { topic: t2, properties: { bootstrap.servers: b } } }";
        let dlq_same = "delivery: { policy: best_effort, dead_letter: { name: d, kafka: { topic: t2, properties: { bootstrap.servers: b } } } }";
        assert_eq!(
            rules(&pipeline(two, dlq_same)),
            ["dead-letter-is-a-destination"]
        );
        assert_eq!(
            rules(&pipeline(two, "delivery: { policy: best_effort }")),
            ["best-effort-without-dead-letter"]
        );
        assert_eq!(rules(&pipeline(two, "")), Vec::<String>::new());
    }

    #[test]
    fn acks_against_the_cluster() {
        let props = BTreeMap::from([("acks".to_owned(), "1".to_owned())]);
        assert!(lint_acks_against_cluster("d", &props, "t", 2).is_some());
        assert!(lint_acks_against_cluster("d", &props, "t", 1).is_none());
    }
}
