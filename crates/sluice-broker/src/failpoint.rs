//! Crash points for crash-safety tests: `SLUICE_FAILPOINT=<name>` makes the broker abort
//! (no cleanup, no flush, like `kill -9`) when it reaches the named point, so a test can
//! crash it at an exact moment of a protocol instead of hoping a timed kill lands there.
//!
//! Points: `txn-before-markers` (a commit or abort decision is durable, no marker written
//! yet), `txn-after-first-marker` (one partition has its marker, the others not).

use std::sync::OnceLock;

/// Aborts the process if `SLUICE_FAILPOINT` names `point`.
pub fn hit(point: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("SLUICE_FAILPOINT").ok());
    if armed.as_deref() == Some(point) {
        tracing::error!(point, "SLUICE_FAILPOINT reached: aborting the process");
        std::process::abort();
    }
}
