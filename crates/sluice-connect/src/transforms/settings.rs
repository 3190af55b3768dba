//! The settings of one transform or predicate: `transforms.<alias>.<key>`.

use std::collections::BTreeMap;

use crate::plugin::Problems;

/// A view of the connector's settings under one prefix.
pub(super) struct Settings<'a> {
    props: &'a BTreeMap<String, String>,
    prefix: String,
}

impl<'a> Settings<'a> {
    pub(super) fn new(props: &'a BTreeMap<String, String>, prefix: String) -> Self {
        Self { props, prefix }
    }

    /// The full name of `key`, for problems.
    pub(super) fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The trimmed value of `key`, if set.
    pub(super) fn get(&self, key: &str) -> Option<String> {
        self.props.get(&self.key(key)).map(|v| v.trim().to_owned())
    }

    /// The value of `key`, which must be set and not empty.
    pub(super) fn required(&self, key: &str, problems: &mut Problems) -> Option<String> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Some(v),
            _ => {
                problems.add(
                    &self.key(key),
                    format!(
                        "Missing required configuration \"{}\" which has no default value.",
                        self.key(key)
                    ),
                );
                None
            }
        }
    }

    /// A `true`/`false` setting.
    pub(super) fn boolean(&self, key: &str, default: bool, problems: &mut Problems) -> bool {
        match self.get(key).as_deref() {
            None | Some("") => default,
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                problems.add(&self.key(key), format!("{other:?} is not true or false"));
                default
            }
        }
    }

    /// A comma-separated list (empty when unset).
    pub(super) fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One of `allowed` (the first is the default).
    pub(super) fn choice(
        &self,
        key: &str,
        allowed: &[&'static str],
        problems: &mut Problems,
    ) -> &'static str {
        let default = allowed.first().copied().unwrap_or_default();
        match self.get(key) {
            None => default,
            Some(v) => allowed
                .iter()
                .copied()
                .find(|a| a.eq_ignore_ascii_case(&v))
                .unwrap_or_else(|| {
                    problems.add(
                        &self.key(key),
                        format!("{v:?} is not one of {}", allowed.join(", ")),
                    );
                    default
                }),
        }
    }
}
