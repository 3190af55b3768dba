//! The broker's metrics read when scraped: partitions, log directory sizes and free space,
//! fsync latency, and each consumer group's lag — cheaper to compute when Prometheus asks than
//! to keep current on every append.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use sluice_metrics::{Encoder, Metric};

use crate::durability::Flusher;
use crate::meta::disk;
use crate::net::limits::ConnectionLimits;
use crate::state::Broker;

/// Most group-lag series one scrape reports: lag per partition of every group could be
/// millions of series on a large cluster.
const MAX_LAG_SERIES: usize = 10_000;

/// Adds the scrape-time collectors to `broker`'s registry. They hold the broker weakly, so a
/// stopped broker is not kept alive by its metrics.
pub(super) fn register(
    broker: &Arc<Broker>,
    flusher: &Flusher,
    connections: Arc<ConnectionLimits>,
) {
    let weak: Weak<Broker> = Arc::downgrade(broker);
    let flusher = flusher.clone();
    broker.metrics.registry().collect_with(move |out| {
        out.gauges(
            "sluice_broker_connections",
            "Client connections open now.",
            [(Vec::new(), connections.open() as f64)],
        );
        let name = "sluice_broker_fsync_duration_seconds";
        out.family(
            name,
            "Time one partition's fsync took (group commit).",
            "histogram",
        );
        flusher.sync_seconds().encode(name, &[], out);
        if let Some(broker) = weak.upgrade() {
            storage(&broker, out);
            group_lag(&broker, out);
        }
    });
}

/// Partitions, and per log directory the bytes of its partitions and its file system's space.
fn storage(broker: &Broker, out: &mut Encoder) {
    let metadata = &broker.metadata;
    let mut sizes: BTreeMap<String, u64> = metadata
        .log_dirs()
        .dirs()
        .iter()
        .map(|d| (d.display().to_string(), 0))
        .collect();
    let mut partitions = 0u64;
    metadata.for_each_stored(
        |_, _| true,
        |_, _, log_dir, size| {
            partitions += 1;
            *sizes.entry(log_dir.display().to_string()).or_default() += size;
        },
    );
    out.gauges(
        "sluice_broker_partitions",
        "Partitions this broker holds (it leads them all).",
        [(Vec::new(), partitions as f64)],
    );
    out.gauges(
        "sluice_broker_under_min_isr_partitions",
        "Partitions with fewer in-sync replicas than min.insync.replicas: always 0 on a single broker, exported for the alerts written for Kafka.",
        [(Vec::new(), 0.0)],
    );
    out.gauges(
        "sluice_broker_log_dir_size_bytes",
        "Bytes of the partitions stored in each log directory.",
        sizes
            .iter()
            .map(|(d, s)| (vec![("dir", d.as_str())], *s as f64)),
    );
    let space: Vec<(String, Option<(u64, u64)>)> = sizes
        .keys()
        .map(|d| (d.clone(), disk::space(std::path::Path::new(d))))
        .collect();
    out.gauges(
        "sluice_broker_log_dir_free_bytes",
        "Bytes still usable on each log directory's file system.",
        space
            .iter()
            .filter_map(|(d, s)| s.map(|(_, usable)| (vec![("dir", d.as_str())], usable as f64))),
    );
    out.gauges(
        "sluice_broker_log_dir_total_bytes",
        "Size of each log directory's file system.",
        space
            .iter()
            .filter_map(|(d, s)| s.map(|(total, _)| (vec![("dir", d.as_str())], total as f64))),
    );
}

/// Each group's lag per partition: the high watermark minus the committed offset.
fn group_lag(broker: &Broker, out: &mut Encoder) {
    let mut samples: Vec<(String, String, String, f64)> = Vec::new();
    'groups: for listing in broker.groups.list(&[], &[]) {
        for (topic, partitions) in broker.groups.fetch_offsets(&listing.group_id, None) {
            for (index, committed) in partitions {
                // A committed offset is whatever a client sent: a negative one means none.
                let Some(committed) = committed.filter(|c| c.offset >= 0) else {
                    continue;
                };
                let Some(p) = broker.metadata.partition(&topic, index) else {
                    continue;
                };
                if samples.len() == MAX_LAG_SERIES {
                    break 'groups;
                }
                let lag = p.high_watermark().saturating_sub(committed.offset).max(0);
                samples.push((
                    listing.group_id.clone(),
                    topic.clone(),
                    index.to_string(),
                    lag as f64,
                ));
            }
        }
    }
    out.gauges(
        "sluice_broker_consumer_group_lag",
        "Messages a group has yet to consume per partition (high watermark minus committed offset).",
        samples.iter().map(|(g, t, p, lag)| {
            (
                vec![("group", g.as_str()), ("topic", t.as_str()), ("partition", p.as_str())],
                *lag,
            )
        }),
    );
}
