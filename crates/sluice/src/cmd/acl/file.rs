//! `sluice acl validate | plan | apply --file acl.yml`: ACLs as code against any Kafka cluster.

use std::path::Path;

use anyhow::Context;
use sluice_kss::acl::{AclFile, Plan};

use super::{connect, print_table};
use crate::kafka::ClientArgs;

fn load(path: &Path) -> anyhow::Result<AclFile> {
    // The error already names the file and line; no extra context needed.
    Ok(AclFile::load(path)?)
}

/// Checks the file without contacting a cluster.
pub(super) fn validate(path: &Path) -> anyhow::Result<()> {
    let file = load(path)?;
    println!(
        "{}: ok ({} services, {} raw entries, {} bindings)",
        path.display(),
        file.services.len(),
        file.acls.len(),
        file.bindings().len()
    );
    Ok(())
}

fn print_plan(plan: &Plan) {
    println!("to add ({}):", plan.add.len());
    print_table(&plan.add);
    println!("to remove ({}):", plan.remove.len());
    print_table(&plan.remove);
}

/// Prints what `apply` would change.
pub(super) async fn plan(
    client: &ClientArgs,
    path: &Path,
    prune_unmanaged: bool,
) -> anyhow::Result<()> {
    let file = load(path)?;
    let mut conn = connect(client).await?;
    let plan = sluice_kss::acl::compute_plan(&mut conn, &file, prune_unmanaged)
        .await
        .context("reading the cluster's ACLs")?;
    if plan.is_empty() {
        println!("the cluster matches {}", path.display());
    } else {
        print_plan(&plan);
    }
    Ok(())
}

/// Converges the cluster to the file and prints what changed.
pub(super) async fn apply(
    client: &ClientArgs,
    path: &Path,
    prune_unmanaged: bool,
) -> anyhow::Result<()> {
    let file = load(path)?;
    let config = super::admin_config(client)?;
    let plan = sluice_kss::acl::apply(&config, &file, prune_unmanaged)
        .await
        .with_context(|| format!("applying {}; {}", path.display(), client.unreachable_hint()))?;
    if plan.is_empty() {
        println!("nothing to do: the cluster matches {}", path.display());
    } else {
        println!("applied {}:", path.display());
        print_plan(&plan);
    }
    Ok(())
}
