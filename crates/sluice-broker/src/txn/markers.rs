//! Where transaction markers go: the data partitions of a transaction, and the
//! `__consumer_offsets` partitions its offsets were committed to (through the group
//! coordinator, which settles the pending offsets under the same lock).

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use sluice_log::{LogError, TxnMarker};

use crate::group::{Now, OFFSETS_TOPIC};
use crate::state::Broker;

/// Waits, one per marker written, that complete once the marker is durable.
pub type MarkerWaits = Vec<Pin<Box<dyn Future<Output = Result<(), String>> + Send>>>;

/// Appends a transaction's markers; implemented by the broker, and by tests.
pub trait MarkerWriter: Send + Sync {
    /// Writes `marker` to every partition in `partitions` (a partition of a deleted topic is
    /// skipped) and returns the waits for their durability, or what failed; the caller retries
    /// the whole set (a repeated marker changes nothing while no later transaction started).
    fn write_markers(
        &self,
        partitions: &BTreeSet<(String, i32)>,
        marker: &TxnMarker,
    ) -> Result<MarkerWaits, String>;
}

impl MarkerWriter for Broker {
    fn write_markers(
        &self,
        partitions: &BTreeSet<(String, i32)>,
        marker: &TxnMarker,
    ) -> Result<MarkerWaits, String> {
        let now = crate::now_ms();
        let mut offsets_partitions = Vec::new();
        let mut failures = Vec::new();
        let mut waits: MarkerWaits = Vec::new();
        for (topic, index) in partitions {
            if topic == OFFSETS_TOPIC {
                offsets_partitions.push(*index);
                continue;
            }
            let Some(partition) = self.metadata.partition(topic, *index) else {
                continue;
            };
            match partition.append_marker(marker, now) {
                Ok(offset) => {
                    let flusher = self.flusher.clone();
                    waits.push(Box::pin(async move {
                        flusher
                            .wait_durable(&partition, offset + 1)
                            .await
                            .map_err(|e| e.to_string())
                    }));
                    crate::failpoint::hit("txn-after-first-marker");
                }
                // A newer epoch already wrote here: this transaction is settled.
                Err(LogError::InvalidProducerEpoch { .. }) => {}
                Err(e) => failures.push(format!("{topic}-{index}: {e}")),
            }
        }
        if !offsets_partitions.is_empty() {
            match self
                .groups
                .complete_txn(&offsets_partitions, marker, Now::current())
            {
                Ok(durables) => waits.extend(durables.into_iter().map(|d| {
                    Box::pin(async move { d.wait().await.map_err(|e| e.to_string()) })
                        as Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
                })),
                Err(e) if e.is_fenced() => {}
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(waits)
        } else {
            Err(failures.join("; "))
        }
    }
}
