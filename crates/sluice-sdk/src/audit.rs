//! Completeness audit per producer (gaps and duplicates in `producer_seq`) and the end-to-end
//! latency histogram (receive time − `event_time`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::headers::Provenance;

/// At most this many missing sequence numbers are remembered per producer (all are counted).
const MAX_TRACKED_MISSING: usize = 10_000;

/// Identifies one sequence: a producer instance writing one partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProducerKey {
    /// `service_id` header.
    pub service_id: String,
    /// `producer_id` header.
    pub producer_id: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
}

#[derive(Debug, Default)]
struct Track {
    received: u64,
    duplicates: u64,
    next: Option<u64>,
    missing_count: u64,
    missing: BTreeSet<u64>,
}

/// Audit state fed by every consumed record that carries `producer_seq`.
#[derive(Debug, Default)]
pub struct Audit {
    tracks: BTreeMap<ProducerKey, Track>,
}

impl Audit {
    /// Records one consumed record. The first sequence seen per producer is the baseline (a
    /// consumer that joins mid-stream does not report earlier records as missing).
    pub fn observe(&mut self, topic: &str, partition: i32, p: &Provenance) {
        let Some(seq) = p.producer_seq else { return };
        let key = ProducerKey {
            service_id: p.service_id.clone().unwrap_or_default(),
            producer_id: p.producer_id.clone().unwrap_or_default(),
            topic: topic.to_owned(),
            partition,
        };
        let t = self.tracks.entry(key).or_default();
        t.received += 1;
        match t.next {
            None => t.next = Some(seq + 1),
            Some(next) if seq == next => t.next = Some(next + 1),
            Some(next) if seq > next => {
                t.missing_count += seq - next;
                let room = MAX_TRACKED_MISSING.saturating_sub(t.missing.len()) as u64;
                t.missing.extend(next..seq.min(next + room));
                t.next = Some(seq + 1);
            }
            Some(_) => {
                if t.missing.remove(&seq) {
                    t.missing_count -= 1;
                } else {
                    t.duplicates += 1;
                }
            }
        }
    }

    /// The audit so far, per producer.
    pub fn producers(&self) -> Vec<ProducerAudit> {
        self.tracks
            .iter()
            .map(|(k, t)| ProducerAudit {
                key: k.clone(),
                received: t.received,
                duplicates: t.duplicates,
                missing_count: t.missing_count,
                missing: t.missing.iter().copied().collect(),
            })
            .collect()
    }
}

/// Audit result for one producer and partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerAudit {
    /// Which producer and partition.
    pub key: ProducerKey,
    /// Records received.
    pub received: u64,
    /// Records whose `producer_seq` was already seen.
    pub duplicates: u64,
    /// Sequence numbers skipped and never received.
    pub missing_count: u64,
    /// The missing sequence numbers (up to 10 000).
    pub missing: Vec<u64>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: u64,
    /// 99th percentile.
    pub p99_ms: u64,
    /// Maximum.
    pub max_ms: u64,
}

/// A report of everything a consumer observed.
#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    /// Per producer and partition.
    pub producers: Vec<ProducerAudit>,
    /// End-to-end latency.
    pub latency: LatencySummary,
}

impl AuditReport {
    /// Whether no gaps and no duplicates were seen.
    pub fn is_complete(&self) -> bool {
        self.producers
            .iter()
            .all(|p| p.duplicates == 0 && p.missing_count == 0)
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.latency;
        writeln!(
            f,
            "latency: n={} p50={}ms p99={}ms max={}ms",
            l.count, l.p50_ms, l.p99_ms, l.max_ms
        )?;
        for p in &self.producers {
            writeln!(
                f,
                "{} {} {}/{}: received={} duplicates={} missing={} {:?}",
                p.key.service_id,
                p.key.producer_id,
                p.key.topic,
                p.key.partition,
                p.received,
                p.duplicates,
                p.missing_count,
                p.missing.iter().take(20).collect::<Vec<_>>()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prov(seq: u64) -> Provenance {
        Provenance {
            service_id: Some("s".into()),
            producer_id: Some("p".into()),
            producer_seq: Some(seq),
            ..Provenance::default()
        }
    }

    #[test]
    fn gaps_late_arrivals_and_duplicates() {
        let mut a = Audit::default();
        for s in [0, 1, 3, 3, 5, 4, 6] {
            a.observe("t", 0, &prov(s));
        }
        let p = &a.producers()[0];
        assert_eq!(p.received, 7);
        assert_eq!(p.duplicates, 1);
        assert_eq!(p.missing, vec![2]);
        assert_eq!(p.missing_count, 1);
    }
}
