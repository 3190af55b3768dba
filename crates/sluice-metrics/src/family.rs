//! Metrics keyed by label values, with a cap on the number of series: label values such as
//! topic or group names come from clients, and a scrape must not grow without bound.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::encode::Encoder;
use crate::metric::Metric;
use crate::{Render, DEFAULT_MAX_SERIES};

/// The label value every label of the overflow series has: the series that counts for all
/// label values past a family's cap. Parentheses keep it apart from any Kafka topic name.
pub const OVERFLOW: &str = "(other)";

/// Series by key: the label values joined by [`SEPARATOR`] (one value alone for a one-label
/// family, so that its lookup needs no allocation).
type Series<M> = HashMap<String, Arc<M>>;

/// Joins label values in a key; a control character no topic, group or API name holds.
const SEPARATOR: char = '\u{1f}';

fn key_of(values: &[&str]) -> String {
    values.join(&SEPARATOR.to_string())
}

/// One metric per combination of label values.
pub struct Family<M> {
    name: &'static str,
    help: &'static str,
    labels: Box<[&'static str]>,
    make: Box<dyn Fn() -> M + Send + Sync>,
    series: RwLock<Series<M>>,
    max_series: usize,
}

impl<M> std::fmt::Debug for Family<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.name)
            .field("series", &self.series.read().len())
            .finish()
    }
}

impl<M: Metric> Family<M> {
    pub(crate) fn new(
        name: &'static str,
        help: &'static str,
        labels: &[&'static str],
        make: impl Fn() -> M + Send + Sync + 'static,
    ) -> Self {
        debug_assert!(valid_name(name), "invalid metric name {name}");
        Family {
            name,
            help,
            labels: labels.into(),
            make: Box::new(make),
            series: RwLock::new(HashMap::new()),
            max_series: DEFAULT_MAX_SERIES,
        }
    }

    /// The series for `values` (one per label, in the family's order), created on first use.
    /// Past the family's cap, every new combination shares the [`OVERFLOW`] series. Callers on
    /// a hot path keep the returned handle rather than look it up per event.
    pub fn with(&self, values: &[&str]) -> Arc<M> {
        debug_assert_eq!(
            values.len(),
            self.labels.len(),
            "{}: label count",
            self.name
        );
        {
            let series = self.series.read();
            let found = match values {
                [one] => series.get(*one),
                _ => series.get(&key_of(values)),
            };
            if let Some(m) = found {
                return Arc::clone(m);
            }
            // Full: every new combination counts under the overflow series, found without the
            // write lock.
            if series.len() >= self.max_series {
                if let Some(m) = series.get(&self.overflow_key()) {
                    return Arc::clone(m);
                }
            }
        }
        let mut series = self.series.write();
        let key = if series.len() < self.max_series {
            key_of(values)
        } else {
            self.overflow_key()
        };
        Arc::clone(series.entry(key).or_insert_with(|| Arc::new((self.make)())))
    }

    fn overflow_key(&self) -> String {
        key_of(&vec![OVERFLOW; self.labels.len()])
    }

    /// Forgets the series for `values` (a deleted topic), so it is no longer exported.
    pub fn remove(&self, values: &[&str]) {
        self.series.write().remove(&key_of(values));
    }

    /// At most `max` series (plus the overflow one).
    #[cfg(test)]
    pub(crate) fn with_max_series(mut self, max: usize) -> Self {
        self.max_series = max;
        self
    }
}

impl<M: Metric> Render for Family<M> {
    fn render(&self, out: &mut Encoder) {
        out.family(self.name, self.help, M::TYPE);
        let series = self.series.read();
        let mut keys: Vec<&String> = series.keys().collect();
        keys.sort();
        for key in keys {
            let labels: Vec<(&str, &str)> = if self.labels.is_empty() {
                Vec::new()
            } else {
                self.labels
                    .iter()
                    .copied()
                    .zip(key.split(SEPARATOR))
                    .collect()
            };
            if let Some(m) = series.get(key) {
                m.encode(self.name, &labels, out);
            }
        }
    }
}

/// Prometheus' metric name rule: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}
