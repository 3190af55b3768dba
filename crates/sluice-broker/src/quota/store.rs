//! The configured quotas: which entity has which limits, persisted like the ACLs (changes
//! serialized, written atomically, then published for lock-free reads).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::QUOTA_KEYS;

/// Name of the quota file under `<data_dir>/meta/`.
const FILE_NAME: &str = "client-quotas.json";

/// One side of a quota entity: absent (not part of it), the default, or a name.
pub type EntityPart = Option<EntityName>;

/// A named entity or the default for its type (Kafka's `<default>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityName {
    /// Applies to every user (or client id) without a more specific quota, each separately.
    Default,
    /// One user (its principal name) or client id.
    Named(String),
}

/// Whom a quota applies to: a user, a client id, or a user's client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuotaEntity {
    /// The user part.
    pub user: EntityPart,
    /// The client-id part.
    pub client_id: EntityPart,
}

/// Quota values of one entity, by key.
pub type QuotaValues = BTreeMap<String, f64>;

#[derive(Serialize, Deserialize)]
struct QuotaFile {
    version: u32,
    quotas: Vec<(QuotaEntity, QuotaValues)>,
}

/// Why a quota change or the quota file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuotaError {
    /// An invalid entity or value (INVALID_REQUEST).
    #[error("{0}")]
    Invalid(String),
    /// The quota file could not be read or written.
    #[error("client quota file {path}: {reason}")]
    Storage {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// One change of an AlterClientQuotas entry.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaOp {
    /// The quota key.
    pub key: String,
    /// The new value; `None` removes the key.
    pub value: Option<f64>,
}

/// The configured quotas.
#[derive(Debug)]
pub struct QuotaStore {
    entries: ArcSwap<HashMap<QuotaEntity, QuotaValues>>,
    changes: parking_lot::Mutex<()>,
    path: Option<PathBuf>,
}

impl QuotaStore {
    /// A store that lives only in memory (tests).
    pub fn in_memory() -> Self {
        QuotaStore {
            entries: ArcSwap::from_pointee(HashMap::new()),
            changes: parking_lot::Mutex::new(()),
            path: None,
        }
    }

    /// Loads the quotas of `data_dir` (none if the file does not exist yet).
    pub fn open(data_dir: &Path) -> Result<Self, QuotaError> {
        let path = data_dir.join("meta").join(FILE_NAME);
        let storage = |reason: String| QuotaError::Storage {
            path: path.clone(),
            reason,
        };
        let entries: HashMap<QuotaEntity, QuotaValues> = crate::meta::read_json::<QuotaFile>(&path)
            .map_err(|e| storage(e.to_string()))?
            .map(|file| file.quotas.into_iter().collect())
            .unwrap_or_default();
        if !entries.is_empty() {
            info!(entities = entries.len(), "client quotas loaded");
        }
        Ok(QuotaStore {
            entries: ArcSwap::from_pointee(entries),
            changes: parking_lot::Mutex::new(()),
            path: Some(path),
        })
    }

    /// Every entity with quotas, sorted.
    pub fn entries(&self) -> Vec<(QuotaEntity, QuotaValues)> {
        let mut all: Vec<_> = self
            .entries
            .load()
            .iter()
            .map(|(e, v)| (e.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The value of `key` that applies to `user`/`client_id`, and the entity it is set on,
    /// in Kafka's order of precedence.
    pub fn resolve(&self, key: &str, user: &str, client_id: &str) -> Option<(f64, QuotaEntity)> {
        let entries = self.entries.load();
        if entries.is_empty() {
            return None;
        }
        let named = |s: &str| Some(EntityName::Named(s.to_owned()));
        let default = || Some(EntityName::Default);
        let levels = [
            (named(user), named(client_id)),
            (named(user), default()),
            (named(user), None),
            (default(), named(client_id)),
            (default(), default()),
            (default(), None),
            (None, named(client_id)),
            (None, default()),
        ];
        levels.into_iter().find_map(|(user, client_id)| {
            let entity = QuotaEntity { user, client_id };
            let value = *entries.get(&entity)?.get(key)?;
            Some((value, entity))
        })
    }

    /// Checks one entry of an AlterClientQuotas request without applying it.
    pub fn validate(entity: &QuotaEntity, ops: &[QuotaOp]) -> Result<(), QuotaError> {
        if entity.user.is_none() && entity.client_id.is_none() {
            return Err(QuotaError::Invalid("the quota entity is empty".into()));
        }
        for part in [&entity.user, &entity.client_id].into_iter().flatten() {
            if *part == EntityName::Named(String::new()) {
                return Err(QuotaError::Invalid(
                    "an entity name must not be empty".into(),
                ));
            }
        }
        let mut seen = Vec::new();
        for op in ops {
            if !QUOTA_KEYS.contains(&op.key.as_str()) {
                return Err(QuotaError::Invalid(format!(
                    "unknown quota key {:?}; valid keys are {}",
                    op.key,
                    QUOTA_KEYS.join(", ")
                )));
            }
            if seen.contains(&op.key) {
                return Err(QuotaError::Invalid(format!(
                    "quota key {} is changed twice in one entry",
                    op.key
                )));
            }
            seen.push(op.key.clone());
            if let Some(value) = op.value {
                let integral = op.key != super::REQUEST_PERCENTAGE;
                if !(value.is_finite() && value > 0.0) || (integral && value.fract() != 0.0) {
                    return Err(QuotaError::Invalid(format!(
                        "{} must be a positive {}, not {value}",
                        op.key,
                        if integral { "integer" } else { "number" }
                    )));
                }
            }
        }
        Ok(())
    }

    /// Applies validated changes, persists and publishes them. Blocking (fsync).
    pub fn apply(&self, changes: Vec<(QuotaEntity, Vec<QuotaOp>)>) -> Result<(), QuotaError> {
        if changes.is_empty() {
            return Ok(());
        }
        let _serial = self.changes.lock();
        let mut next = (**self.entries.load()).clone();
        for (entity, ops) in changes {
            let values = next.entry(entity.clone()).or_default();
            for op in ops {
                match op.value {
                    Some(v) => values.insert(op.key, v),
                    None => values.remove(&op.key),
                };
            }
            if values.is_empty() {
                next.remove(&entity);
            }
        }
        if let Some(path) = &self.path {
            let mut quotas: Vec<_> = next.iter().map(|(e, v)| (e.clone(), v.clone())).collect();
            quotas.sort_by(|a, b| a.0.cmp(&b.0));
            crate::meta::write_json(path, &QuotaFile { version: 1, quotas }).map_err(|e| {
                QuotaError::Storage {
                    path: path.clone(),
                    reason: e.to_string(),
                }
            })?;
        }
        info!(entities = next.len(), "client quotas changed");
        self.entries.store(Arc::new(next));
        Ok(())
    }
}
