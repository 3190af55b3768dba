//! SCRAM credentials (KIP-554): what DescribeUserScramCredentials lists,
//! AlterUserScramCredentials changes and SASL logins check, persisted in
//! `<data_dir>/meta/scram-credentials.json` (mode 0600; salts and derived keys only, never a
//! password).
//!
//! Reads take a snapshot without waiting for a change; changes are serialized, persisted
//! atomically and only then published, like the ACL store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use sluice_sasl::{ScramCredential, ScramMechanism};
use tracing::info;

/// Name of the credentials file under `<data_dir>/meta/`.
const FILE_NAME: &str = "scram-credentials.json";

/// Every user's credentials, by user name and mechanism.
type Users = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

#[derive(Serialize, Deserialize)]
struct CredentialFile {
    version: u32,
    users: Users,
}

/// The credentials file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("SCRAM credentials file {path}: {reason}")]
pub struct CredentialError {
    /// The file.
    pub path: PathBuf,
    /// What failed.
    pub reason: String,
}

/// One change of an AlterUserScramCredentials request.
#[derive(Debug, Clone)]
pub enum CredentialChange {
    /// Set (add or replace) a user's credential for one mechanism.
    Upsert {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
        /// The new credential.
        credential: ScramCredential,
    },
    /// Remove a user's credential for one mechanism.
    Delete {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
}

/// The broker's SCRAM credentials.
pub struct ScramStore {
    users: ArcSwap<Users>,
    /// Serializes changes and their persistence.
    changes: parking_lot::Mutex<()>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for ScramStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramStore")
            .field("users", &self.users.load().len())
            .field("path", &self.path)
            .finish()
    }
}

impl ScramStore {
    /// A store that lives only in memory (tests).
    pub fn in_memory() -> Self {
        ScramStore {
            users: ArcSwap::from_pointee(Users::new()),
            changes: parking_lot::Mutex::new(()),
            path: None,
        }
    }

    /// Loads the credentials of `data_dir` (none if the file does not exist yet).
    pub fn open(data_dir: &Path) -> Result<Self, CredentialError> {
        let path = data_dir.join("meta").join(FILE_NAME);
        let error = |reason: String| CredentialError {
            path: path.clone(),
            reason,
        };
        let users = crate::meta::read_json::<CredentialFile>(&path)
            .map_err(|e| error(e.to_string()))?
            .map(|file| file.users)
            .unwrap_or_default();
        if !users.is_empty() {
            info!(users = users.len(), "SCRAM credentials loaded");
        }
        Ok(ScramStore {
            users: ArcSwap::from_pointee(users),
            changes: parking_lot::Mutex::new(()),
            path: Some(path),
        })
    }

    /// The mechanisms and iteration counts of `user`'s credentials (empty if it has none).
    pub fn describe(&self, user: &str) -> Vec<(ScramMechanism, u32)> {
        self.users
            .load()
            .get(user)
            .map(|by_mechanism| {
                by_mechanism
                    .iter()
                    .map(|(m, c)| (*m, c.iterations))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every user with at least one credential, in name order.
    pub fn users(&self) -> Vec<String> {
        self.users.load().keys().cloned().collect()
    }

    /// Whether `user` has a credential for `mechanism`.
    pub fn has(&self, user: &str, mechanism: ScramMechanism) -> bool {
        self.users
            .load()
            .get(user)
            .is_some_and(|m| m.contains_key(&mechanism))
    }

    /// Applies `changes` in order, persists the result and publishes it. Blocking (fsync): call
    /// it through [`crate::auth::run_blocking`].
    pub fn apply(&self, changes: Vec<CredentialChange>) -> Result<(), CredentialError> {
        if changes.is_empty() {
            return Ok(());
        }
        let _serial = self.changes.lock();
        let mut next: Users = (**self.users.load()).clone();
        for change in changes {
            match change {
                CredentialChange::Upsert {
                    user,
                    mechanism,
                    credential,
                } => {
                    next.entry(user).or_default().insert(mechanism, credential);
                }
                CredentialChange::Delete { user, mechanism } => {
                    if let Some(by_mechanism) = next.get_mut(&user) {
                        by_mechanism.remove(&mechanism);
                        if by_mechanism.is_empty() {
                            next.remove(&user);
                        }
                    }
                }
            }
        }
        if let Some(path) = &self.path {
            let error = |reason: String| CredentialError {
                path: path.clone(),
                reason,
            };
            let file = CredentialFile {
                version: 1,
                users: next,
            };
            let bytes = serde_json::to_vec_pretty(&file).map_err(|e| error(e.to_string()))?;
            crate::meta::write_private(path, &bytes).map_err(|e| error(e.to_string()))?;
            next = file.users;
        }
        info!(users = next.len(), "SCRAM credentials changed");
        self.users.store(Arc::new(next));
        Ok(())
    }
}

impl sluice_sasl::Credentials for ScramStore {
    fn scram(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.users.load().get(user)?.get(&mechanism).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sasl::Credentials;

    fn credential(password: &str) -> ScramCredential {
        ScramCredential::new(
            ScramMechanism::Sha256,
            password.as_bytes(),
            b"salt".to_vec(),
            4096,
        )
    }

    #[test]
    fn changes_persist_privately_without_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let store = ScramStore::open(dir.path()).unwrap();
        store
            .apply(vec![
                CredentialChange::Upsert {
                    user: "alice".into(),
                    mechanism: ScramMechanism::Sha256,
                    credential: credential("correct horse"),
                },
                CredentialChange::Upsert {
                    user: "bob".into(),
                    mechanism: ScramMechanism::Sha256,
                    credential: credential("pw"),
                },
                CredentialChange::Delete {
                    user: "bob".into(),
                    mechanism: ScramMechanism::Sha256,
                },
            ])
            .unwrap();
        let path = dir.path().join("meta").join(FILE_NAME);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("correct horse"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let reopened = ScramStore::open(dir.path()).unwrap();
        assert_eq!(reopened.users(), vec!["alice".to_owned()]);
        assert_eq!(
            reopened.describe("alice"),
            vec![(ScramMechanism::Sha256, 4096)]
        );
        assert!(reopened.describe("bob").is_empty());
        assert!(reopened
            .scram("alice", ScramMechanism::Sha256)
            .unwrap()
            .matches_password(ScramMechanism::Sha256, b"correct horse"));
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        std::fs::write(dir.path().join("meta").join(FILE_NAME), b"{not json").unwrap();
        let err = ScramStore::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }
}
