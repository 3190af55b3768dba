//! Talking to the cluster: computing and applying plans.

use sluice_acl::AclFilter;
use sluice_admin::{AdminConfig, AdminConnection, AdminError};

use super::{AclFile, Plan};

/// Reads the cluster's ACLs and compares them with `file`.
pub async fn compute_plan(
    conn: &mut AdminConnection,
    file: &AclFile,
    prune_unmanaged: bool,
) -> Result<Plan, AdminError> {
    let current = sluice_admin::describe_acls(conn, &AclFilter::default()).await?;
    Ok(Plan::new(
        &file.bindings(),
        &file.managed_principals(),
        &current,
        prune_unmanaged,
    ))
}

/// Converges the cluster to `file` and returns what was changed. Removals go first so a
/// replaced binding never exists twice; running it again changes nothing.
pub async fn apply(
    admin: &AdminConfig,
    file: &AclFile,
    prune_unmanaged: bool,
) -> Result<Plan, AdminError> {
    let mut conn = AdminConnection::connect(admin).await?;
    let plan = compute_plan(&mut conn, file, prune_unmanaged).await?;
    let filters: Vec<AclFilter> = plan.remove.iter().map(sluice_admin::exact_filter).collect();
    sluice_admin::delete_acls(&mut conn, &filters).await?;
    sluice_admin::create_acls(&mut conn, &plan.add).await?;
    Ok(plan)
}
