//! The raw fsync baseline: what one synced 4 KB append costs on the broker's disk right now.
//!
//! The same measurement as `dd bs=4k count=N oflag=dsync` (docs/benchmarks.md), but timed per
//! write so the median is known, not only the mean. Commit latencies are then expressed in
//! raw fsyncs measured in the same run, which makes numbers from a busy shared disk comparable.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{BenchError, Result};
use crate::stats::{LatencyHistogram, LatencySummary};

/// Size of one synced write, as in the `dd bs=4k` baseline.
pub const PROBE_WRITE_BYTES: usize = 4096;

/// Synced writes per baseline measurement.
pub const PROBE_WRITES: u32 = 200;

/// Appends `writes` blocks of 4 KB to a scratch file in `dir`, each followed by
/// `fdatasync`, and returns the distribution of the write + sync times. The file is removed
/// afterwards.
pub fn measure(dir: &Path, writes: u32) -> Result<LatencySummary> {
    let path = scratch_path(dir);
    let result = time_synced_writes(&path, writes);
    // Best effort: a leftover 800 KB scratch file is harmless.
    let _ = std::fs::remove_file(&path);
    result
}

fn scratch_path(dir: &Path) -> PathBuf {
    dir.join(format!(
        ".sluice-bench-fsync-probe-{}-{:08x}",
        std::process::id(),
        uuid::Uuid::new_v4().as_u64_pair().0 as u32
    ))
}

fn time_synced_writes(path: &Path, writes: u32) -> Result<LatencySummary> {
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(path)
        .map_err(|e| BenchError::io(path, e))?;
    let block = [0x5au8; PROBE_WRITE_BYTES];
    let mut hist = LatencyHistogram::new();
    for _ in 0..writes {
        let start = Instant::now();
        file.write_all(&block)
            .map_err(|e| BenchError::io(path, e))?;
        file.sync_data().map_err(|e| BenchError::io(path, e))?;
        hist.record_ns(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    Ok(hist.summary())
}

/// Measures the baseline in `dir` if one was asked for, logging the result.
pub fn baseline(dir: Option<&Path>) -> Result<Option<LatencySummary>> {
    let Some(dir) = dir else { return Ok(None) };
    let s = measure(dir, PROBE_WRITES)?;
    tracing::info!(
        dir = %dir.display(),
        p50_ms = s.p50_ms,
        mean_ms = s.mean_ms,
        p99_ms = s.p99_ms,
        "raw fsync baseline (4 KB write + fdatasync)"
    );
    Ok(Some(s))
}

/// `latency_ms` in units of the baseline's median fsync, if both are known and non-zero.
pub fn in_fsyncs(latency_ms: f64, baseline: Option<&LatencySummary>) -> Option<f64> {
    let b = baseline?;
    (b.p50_ms > 0.0 && latency_ms > 0.0).then(|| latency_ms / b.p50_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_times_every_write_and_cleans_up() {
        let Ok(dir) = tempfile::tempdir() else {
            return;
        };
        let s = match measure(dir.path(), 5) {
            Ok(s) => s,
            Err(e) => panic!("probe failed: {e}"),
        };
        assert_eq!(s.count, 5);
        assert!(s.p50_ms > 0.0 && s.p50_ms <= s.max_ms, "{s:?}");
        let left = std::fs::read_dir(dir.path())
            .map(|d| d.count())
            .unwrap_or(1);
        assert_eq!(left, 0, "scratch file removed");
    }

    #[test]
    fn missing_directory_is_an_io_error() {
        let err = measure(Path::new("/nonexistent/sluice-bench"), 1);
        assert!(matches!(err, Err(BenchError::Io { .. })));
    }

    #[test]
    fn ratios_need_a_baseline() {
        let b = LatencySummary {
            count: 1,
            p50_ms: 0.5,
            ..LatencySummary::default()
        };
        assert_eq!(in_fsyncs(1.5, Some(&b)), Some(3.0));
        assert_eq!(in_fsyncs(1.5, None), None);
        assert_eq!(in_fsyncs(0.0, Some(&b)), None);
        assert_eq!(in_fsyncs(1.0, Some(&LatencySummary::default())), None);
    }
}
