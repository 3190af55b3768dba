//! Prometheus metrics for Sluice's components, without a metrics framework: counters, gauges
//! and histograms that a hot path updates with one atomic operation, families of them keyed by
//! label values (with a cap on how many series a family may grow, since label values such as
//! topic names come from clients), values computed when scraped ([`Registry::collect_with`]),
//! and the text exposition format Prometheus reads ([`Registry::render`]).
//!
//! ```
//! use sluice_metrics::Registry;
//!
//! let registry = Registry::new();
//! let requests = registry.counter_family("requests_total", "Requests handled.", &["api"]);
//! requests.with(&["Produce"]).inc();
//! assert!(registry.render().contains("requests_total{api=\"Produce\"} 1"));
//! ```

mod encode;
mod family;
#[cfg(feature = "axum")]
pub mod http;
mod metric;

use std::sync::Arc;

use parking_lot::RwLock;

pub use encode::Encoder;
pub use family::{Family, OVERFLOW};
pub use metric::{Counter, FloatCounter, Gauge, Histogram, Metric};

/// Seconds buckets for request and disk latencies: 50 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// Series one family may hold unless told otherwise.
pub const DEFAULT_MAX_SERIES: usize = 10_000;

/// Something that writes its metrics when scraped.
trait Render: Send + Sync {
    fn render(&self, out: &mut Encoder);
}

type Collector = Box<dyn Fn(&mut Encoder) + Send + Sync>;

/// The metrics of one component, rendered together.
#[derive(Default)]
pub struct Registry {
    families: RwLock<Vec<Arc<dyn Render>>>,
    collectors: RwLock<Vec<Collector>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("families", &self.families.read().len())
            .field("collectors", &self.collectors.read().len())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    fn add<M: Metric + 'static>(&self, family: Family<M>) -> Arc<Family<M>> {
        let family = Arc::new(family);
        self.families.write().push(family.clone());
        family
    }

    /// A family of counters by `labels`.
    pub fn counter_family(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[&'static str],
    ) -> Arc<Family<Counter>> {
        self.add(Family::new(name, help, labels, Counter::default))
    }

    /// A family of counters of fractional amounts by `labels`.
    pub fn float_counter_family(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[&'static str],
    ) -> Arc<Family<FloatCounter>> {
        self.add(Family::new(name, help, labels, FloatCounter::default))
    }

    /// A counter without labels.
    pub fn counter(&self, name: &'static str, help: &'static str) -> Arc<Counter> {
        self.counter_family(name, help, &[]).with(&[])
    }

    /// A family of gauges by `labels`.
    pub fn gauge_family(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[&'static str],
    ) -> Arc<Family<Gauge>> {
        self.add(Family::new(name, help, labels, Gauge::default))
    }

    /// A gauge without labels.
    pub fn gauge(&self, name: &'static str, help: &'static str) -> Arc<Gauge> {
        self.gauge_family(name, help, &[]).with(&[])
    }

    /// A family of histograms by `labels`, with upper bounds `buckets` (ascending).
    pub fn histogram_family(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[&'static str],
        buckets: &'static [f64],
    ) -> Arc<Family<Histogram>> {
        self.add(Family::new(name, help, labels, move || {
            Histogram::new(buckets)
        }))
    }

    /// A histogram without labels.
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        buckets: &'static [f64],
    ) -> Arc<Histogram> {
        self.histogram_family(name, help, &[], buckets).with(&[])
    }

    /// Adds metrics computed at each scrape (sizes, lags: what is cheaper to read when asked
    /// than to keep up to date).
    pub fn collect_with(&self, collector: impl Fn(&mut Encoder) + Send + Sync + 'static) {
        self.collectors.write().push(Box::new(collector));
    }

    /// Every metric in the text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = Encoder::default();
        for family in self.families.read().iter() {
            family.render(&mut out);
        }
        for collect in self.collectors.read().iter() {
            collect(&mut out);
        }
        out.finish()
    }
}

/// The `Content-Type` of [`Registry::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests;
