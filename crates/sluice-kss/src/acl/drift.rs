//! Drift: the background task that applies the acl.yml when it changes and, between changes,
//! reports bindings changed by hand.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sluice_acl::AclBinding;
use sluice_admin::{AdminConfig, AdminConnection};

use super::{AclFile, Plan};
use crate::KssState;

/// What the last drift check found (served at `GET /v1/acls/drift`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftReport {
    /// True when the cluster matches the file (and the check succeeded).
    pub in_sync: bool,
    /// Unix seconds of the check; 0 before the first one.
    pub checked_at: u64,
    /// Bindings the file asks for that the cluster lacks (e.g. removed by hand).
    pub missing: Vec<AclBinding>,
    /// Bindings of managed principals that the file does not ask for (e.g. added by hand).
    pub unexpected: Vec<AclBinding>,
    /// Why the check could not run, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DriftReport {
    /// A report from a plan computed at `checked_at`.
    pub fn from_plan(plan: &Plan, checked_at: u64) -> Self {
        DriftReport {
            in_sync: plan.is_empty(),
            checked_at,
            missing: plan.add.clone(),
            unexpected: plan.remove.clone(),
            error: None,
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Applies `path` at start and whenever its contents change (an invalid file is logged and the
/// last good one stays in force), and between changes compares the cluster with the file.
pub(crate) async fn run(
    state: Arc<KssState>,
    path: PathBuf,
    admin: AdminConfig,
    interval: Duration,
    prune_unmanaged: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let file_name = path.display().to_string();
    let mut applied_text: Option<String> = None;
    let mut current: Option<AclFile> = None;
    let mut last_drift: Seen = None;
    loop {
        let text = tokio::fs::read_to_string(&path).await;
        match text {
            Ok(text) if applied_text.as_deref() != Some(text.as_str()) => {
                match AclFile::parse(&text, &file_name) {
                    Ok(file) => {
                        // Disabling a service must not wait for the cluster to be reachable.
                        *state.file_disabled.write() = file.disabled_services();
                        if apply_file(&state, &admin, &file, &file_name, prune_unmanaged).await {
                            applied_text = Some(text);
                            current = Some(file);
                            last_drift = None;
                        }
                    }
                    Err(e) => {
                        tracing::error!(
                            "the ACL file is invalid, keeping the last applied one: {e}"
                        );
                        set_error(&state, e.to_string());
                        // Do not re-report the same invalid text every tick.
                        applied_text = Some(text);
                    }
                }
            }
            Ok(_) => {
                if let Some(file) = &current {
                    check_drift(&state, &admin, file, prune_unmanaged, &mut last_drift).await;
                }
            }
            Err(e) => {
                tracing::warn!(file = %file_name, "cannot read the ACL file: {e}");
                set_error(&state, format!("cannot read {file_name}: {e}"));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Applies `file`; true on success (failures are logged, reported as drift errors and retried
/// on the next tick).
async fn apply_file(
    state: &KssState,
    admin: &AdminConfig,
    file: &AclFile,
    file_name: &str,
    prune_unmanaged: bool,
) -> bool {
    match super::apply(admin, file, prune_unmanaged).await {
        Ok(plan) => {
            tracing::info!(
                file = %file_name,
                added = plan.add.len(),
                removed = plan.remove.len(),
                "applied the ACL file"
            );
            *state.drift.write() = Some(DriftReport {
                in_sync: true,
                checked_at: unix_now(),
                ..Default::default()
            });
            true
        }
        Err(e) => {
            tracing::warn!(file = %file_name, "could not apply the ACL file, retrying: {e}");
            set_error(state, format!("applying {file_name}: {e}"));
            false
        }
    }
}

fn set_error(state: &KssState, error: String) {
    let mut drift = state.drift.write();
    let report = drift.get_or_insert_with(DriftReport::default);
    report.in_sync = false;
    report.checked_at = unix_now();
    report.error = Some(error);
}

/// The drift last logged (missing, unexpected), so an unchanged drift is logged once.
type Seen = Option<(Vec<AclBinding>, Vec<AclBinding>)>;

async fn check_drift(
    state: &KssState,
    admin: &AdminConfig,
    file: &AclFile,
    prune_unmanaged: bool,
    last: &mut Seen,
) {
    let plan = match AdminConnection::connect(admin).await {
        Ok(mut conn) => super::compute_plan(&mut conn, file, prune_unmanaged).await,
        Err(e) => Err(e),
    };
    match plan {
        Ok(plan) => {
            let seen = Some((plan.add.clone(), plan.remove.clone()));
            if !plan.is_empty() && *last != seen {
                tracing::warn!(
                    missing = plan.add.len(),
                    unexpected = plan.remove.len(),
                    "ACL drift: the cluster no longer matches the ACL file (see GET /v1/acls/drift; `sluice acl apply` converges it)"
                );
                for b in &plan.remove {
                    tracing::warn!(
                        "ACL drift: unexpected {} {} on {} {} ({})",
                        b.principal,
                        b.operation,
                        b.resource_type,
                        b.resource_name,
                        b.pattern_type
                    );
                }
                for b in &plan.add {
                    tracing::warn!(
                        "ACL drift: missing {} {} on {} {} ({})",
                        b.principal,
                        b.operation,
                        b.resource_type,
                        b.resource_name,
                        b.pattern_type
                    );
                }
            }
            *last = seen;
            *state.drift.write() = Some(DriftReport::from_plan(&plan, unix_now()));
        }
        Err(e) => {
            tracing::warn!("ACL drift check failed: {e}");
            set_error(state, format!("drift check: {e}"));
        }
    }
}
