//! The three kinds of metric, each updated with atomic operations only.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::encode::Encoder;

/// A kind of metric a [`crate::Family`] holds.
pub trait Metric: Send + Sync {
    /// Its Prometheus type (`counter`, `gauge`, `histogram`).
    const TYPE: &'static str;
    /// Writes its samples for the series named `name` with `labels`.
    fn encode(&self, name: &str, labels: &[(&str, &str)], out: &mut Encoder);
}

/// A count that only goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Metric for Counter {
    const TYPE: &'static str = "counter";
    fn encode(&self, name: &str, labels: &[(&str, &str)], out: &mut Encoder) {
        out.sample(name, labels, self.get() as f64);
    }
}

/// A count that only goes up, in fractions (seconds spent).
#[derive(Debug, Default)]
pub struct FloatCounter(AtomicU64);

impl FloatCounter {
    /// Adds `v` (ignored unless positive and finite: a counter never goes down).
    pub fn add(&self, v: f64) {
        if v > 0.0 && v.is_finite() {
            add_f64(&self.0, v);
        }
    }

    /// The count.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

impl Metric for FloatCounter {
    const TYPE: &'static str = "counter";
    fn encode(&self, name: &str, labels: &[(&str, &str)], out: &mut Encoder) {
        out.sample(name, labels, self.get());
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets it.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Adds `d` (negative to subtract).
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }

    /// The value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Metric for Gauge {
    const TYPE: &'static str = "gauge";
    fn encode(&self, name: &str, labels: &[(&str, &str)], out: &mut Encoder) {
        out.sample(name, labels, self.get() as f64);
    }
}

/// Observations counted in buckets by upper bound, with their count and sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then one for +Inf; each counts the observations in it alone (rendering
    /// accumulates them, as the format wants).
    buckets: Box<[AtomicU64]>,
    /// Sum of the observations, as f64 bits.
    sum: AtomicU64,
}

impl Histogram {
    /// An empty histogram with upper bounds `bounds` (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds must ascend");
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Records `v`.
    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        add_f64(&self.sum, v);
    }

    /// Records a duration, in seconds.
    pub fn observe_duration(&self, d: std::time::Duration) {
        self.observe(d.as_secs_f64());
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Their sum.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }
}

impl Metric for Histogram {
    const TYPE: &'static str = "histogram";
    fn encode(&self, name: &str, labels: &[(&str, &str)], out: &mut Encoder) {
        let mut cumulative = 0;
        let bucket = format!("{name}_bucket");
        for (i, count) in self.buckets.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => format_bound(*b),
                None => "+Inf".to_owned(),
            };
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            out.sample(&bucket, &with_le, cumulative as f64);
        }
        out.sample(&format!("{name}_sum"), labels, self.sum());
        out.sample(&format!("{name}_count"), labels, cumulative as f64);
    }
}

/// Adds `v` to the f64 whose bits `cell` holds.
fn add_f64(cell: &AtomicU64, v: f64) {
    // A lost race retries; the closure never refuses.
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
        Some((f64::from_bits(bits) + v).to_bits())
    });
}

/// A bucket bound as Prometheus clients write it (`0.005`, `1`, `2.5`).
fn format_bound(b: f64) -> String {
    let s = format!("{b}");
    if s.contains('e') {
        format!("{b:.9}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        s
    }
}
