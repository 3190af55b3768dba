//! Latency histograms and their summaries.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram tracks (60 s); larger values are clamped, not dropped.
const MAX_TRACKED_NS: u64 = 60_000_000_000;

/// A histogram of latencies in nanoseconds, 1 ns to 60 s at 3 significant digits.
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        // hdrhistogram only rejects low < 1, high < 2 * low or sigfig > 5; these constants
        // are valid, so this arm cannot be reached by any input.
        match Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3) {
            Ok(h) => LatencyHistogram(h),
            Err(e) => unreachable!("constant histogram bounds rejected: {e}"),
        }
    }

    /// Records one latency, clamped to the tracked range.
    pub fn record_ns(&mut self, ns: u64) {
        self.0.saturating_record(ns.clamp(1, MAX_TRACKED_NS));
    }

    /// Adds every value of `other` into this histogram.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Both histograms have the same bounds, so adding cannot fail; ignore to stay panic-free.
        let _ = self.0.add(&other.0);
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// True if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Percentiles of the recorded values.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary::of(&self.0)
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

impl LatencySummary {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        LatencySummary {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1e6,
        }
    }

    /// The percentiles in chart order, with their labels.
    pub fn percentiles(&self) -> [(&'static str, f64); 5] {
        [
            ("p50", self.p50_ms),
            ("p90", self.p90_ms),
            ("p99", self.p99_ms),
            ("p99.9", self.p999_ms),
            ("max", self.max_ms),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn percentiles_of_uniform_values() {
        let mut h = LatencyHistogram::new();
        for i in 1..=1000u64 {
            h.record_ns(i * 1_000_000); // 1..=1000 ms
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.002;
        assert!(close(s.p50_ms, 500.0), "{s:?}");
        assert!(close(s.p90_ms, 900.0), "{s:?}");
        assert!(close(s.p99_ms, 990.0), "{s:?}");
        assert!(close(s.p999_ms, 999.0), "{s:?}");
        assert!(close(s.max_ms, 1000.0), "{s:?}");
        assert!(close(s.mean_ms, 500.5), "{s:?}");
    }

    #[test]
    fn empty_and_out_of_range() {
        let mut h = LatencyHistogram::new();
        assert!(h.is_empty());
        assert_eq!(h.summary(), LatencySummary::default());
        h.record_ns(0);
        h.record_ns(u64::MAX);
        assert_eq!(h.len(), 2);
        assert!(h.summary().max_ms >= 59_000.0);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        a.record_ns(1_000);
        b.record_ns(2_000_000);
        a.merge(&b);
        assert_eq!(a.len(), 2);
        assert!((a.summary().max_ms - 2.0).abs() < 0.01);
    }

    proptest! {
        #[test]
        fn percentiles_are_ordered(values in proptest::collection::vec(1u64..10_000_000_000, 1..500)) {
            let mut h = LatencyHistogram::new();
            for v in &values { h.record_ns(*v); }
            let s = h.summary();
            prop_assert!(s.p50_ms <= s.p90_ms && s.p90_ms <= s.p99_ms);
            prop_assert!(s.p99_ms <= s.p999_ms && s.p999_ms <= s.max_ms);
            let true_max = *values.iter().max().unwrap_or(&0) as f64 / 1e6;
            prop_assert!((s.max_ms - true_max).abs() <= true_max * 0.001 + 1e-6);
        }
    }
}
