//! Platform as code: one file (or folder) declares a cluster's topics, ACLs and schemas;
//! [`plan`] shows how a live cluster and registry differ from it, [`apply()`] converges them
//! (safe order; nothing that deletes data without `allow_delete`), and [`export()`] writes the
//! file from a live cluster.
//!
//! It speaks only the standard Kafka admin APIs (through `sluice-admin`) and the Confluent
//! registry API (through the SDK's registry client), so it manages Sluice, Apache Kafka, MSK
//! and Redpanda alike. There is no state file: the cluster is the state, and what the file
//! does not list is either deleted (topics, subjects, ACLs of principals the file manages) or
//! left alone (`ignore`, internal `_` topics, sections the file omits).

mod apply;
mod error;
mod export;
mod live;
mod plan;
mod spec;

pub use apply::apply;
pub use error::PlatformError;
pub use export::{export, Exported};
pub use plan::{Blocker, Change, Plan};
pub use spec::{Ignore, Platform, SchemasSpec, SpecError, SubjectSpec, TopicSpec};

use sluice_admin::{AdminConfig, AdminConnection};
use sluice_sdk::RegistryClient;

/// The cluster and registry a file is compared with.
#[derive(Clone)]
pub struct Target {
    /// How to reach the Kafka cluster's admin APIs.
    pub admin: AdminConfig,
    /// The schema registry, if any (needed when the file manages schemas).
    pub registry: Option<RegistryClient>,
}

impl Target {
    fn registry(&self) -> Result<&RegistryClient, PlatformError> {
        self.registry.as_ref().ok_or(PlatformError::NoRegistry)
    }
}

/// How far `plan` and `apply` reach.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Also remove ACLs of principals the file does not mention (as `sluice acl apply
    /// --prune-unmanaged`).
    pub prune_unmanaged_acls: bool,
    /// Let `apply` delete topics and subjects the file does not list.
    pub allow_delete: bool,
}

/// Compares `platform` with the target: the changes `apply` would make, in its order.
pub async fn plan(
    target: &Target,
    platform: &Platform,
    options: &Options,
) -> Result<Plan, PlatformError> {
    let mut out = Plan::default();
    // A file that manages only schemas needs no Kafka connection.
    if platform.topics.is_some() || platform.acls.is_some() {
        let mut conn = AdminConnection::connect(&target.admin).await?;
        if let Some(desired) = &platform.topics {
            let have = live::topics(&mut conn, |name| desired.contains_key(name)).await?;
            plan::topics(desired, &platform.ignore, &have, &mut out);
        }
        if let Some(acls) = &platform.acls {
            let acl_plan =
                sluice_kss::acl::compute_plan(&mut conn, acls, options.prune_unmanaged_acls)
                    .await?;
            plan::acls(acl_plan, &mut out);
        }
    }
    if let Some(desired) = &platform.schemas {
        let have = live::schemas(target.registry()?, desired).await?;
        plan::schemas(desired, &platform.ignore, &have, &mut out);
    }
    out.order();
    Ok(out)
}
