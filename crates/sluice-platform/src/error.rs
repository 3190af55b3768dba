//! Why planning, applying or exporting failed.

use std::fmt::Write as _;

use crate::plan::{Blocker, Change, Plan};
use crate::spec::SpecError;

fn lines<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().fold(String::new(), |mut out, item| {
        let _ = write!(out, "\n  {item}");
        out
    })
}

/// Why a platform command failed.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The platform file is unusable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The Kafka cluster refused or could not be reached.
    #[error(transparent)]
    Admin(#[from] sluice_admin::AdminError),
    /// The schema registry refused or could not be reached.
    #[error("schema registry: {0}")]
    Registry(#[from] sluice_sdk::Error),
    /// The file manages schemas but no registry was named.
    #[error("the file manages schemas, so a schema registry URL is needed (--registry-url)")]
    NoRegistry,
    /// The plan holds changes no apply can make.
    #[error("nothing was applied: {} change(s) cannot be made:{}", .0.len(), lines(.0))]
    Blocked(Vec<Blocker>),
    /// The plan deletes data and deleting was not allowed.
    #[error(
        "nothing was applied: the plan deletes data, which needs --allow-delete:{}",
        lines(.0)
    )]
    Destructive(Vec<Change>),
    /// Every change was made, yet the cluster still differs (another writer, or a broker
    /// that ignores a config).
    #[error("applied, but the cluster still differs from the file:\n{0}")]
    NotConverged(Plan),
    /// The cluster holds something a platform file cannot express.
    #[error("cannot export: {0}")]
    Export(String),
    /// An exported file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}
