//! Where transaction markers go: the data partitions of a transaction, and the
//! `__consumer_offsets` partitions its offsets were committed to (through the group
//! coordinator, which settles the pending offsets under the same lock).

use std::collections::BTreeSet;

use sluice_log::{LogError, TxnMarker};

use crate::group::{Now, OFFSETS_TOPIC};
use crate::state::Broker;

/// Appends a transaction's markers; implemented by the broker, and by tests.
pub trait MarkerWriter: Send + Sync {
    /// Writes `marker` to every partition in `partitions` (a partition of a deleted topic is
    /// skipped). Appends only: durability follows through the broker's flusher. Returns what
    /// failed, if anything; the caller retries the whole set (a repeated marker is harmless).
    fn write_markers(
        &self,
        partitions: &BTreeSet<(String, i32)>,
        marker: &TxnMarker,
    ) -> Result<(), String>;
}

impl MarkerWriter for Broker {
    fn write_markers(
        &self,
        partitions: &BTreeSet<(String, i32)>,
        marker: &TxnMarker,
    ) -> Result<(), String> {
        let now = crate::now_ms();
        let mut offsets_partitions = Vec::new();
        let mut failures = Vec::new();
        for (topic, index) in partitions {
            if topic == OFFSETS_TOPIC {
                offsets_partitions.push(*index);
                continue;
            }
            let Some(partition) = self.metadata.partition(topic, *index) else {
                continue;
            };
            match partition.append_marker(marker, now) {
                Ok(_) => {
                    self.flusher.mark_dirty(&partition);
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
                Ok(_) => {}
                Err(e) if e.is_fenced() => {}
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}
