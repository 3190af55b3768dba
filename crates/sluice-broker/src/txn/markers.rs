//! How the coordinator has a transaction's markers written: through [`MarkerWriter`], which
//! the broker implements (in [`crate::state`]) by appending them to the data partitions of the
//! transaction and to the `__consumer_offsets` partitions its offsets were committed to
//! (through the group coordinator, which settles the pending offsets under the same lock).

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use sluice_log::TxnMarker;

/// Waits, one per marker written, that complete once the marker is durable.
pub type MarkerWaits = Vec<Pin<Box<dyn Future<Output = Result<(), String>> + Send>>>;

/// Appends a transaction's markers; implemented by the broker (in [`crate::state`], which
/// sits above the coordinators), and by tests.
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
