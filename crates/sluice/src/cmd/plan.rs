//! `sluice plan | apply | drift | export`: the platform as code (topics, ACLs, schemas in one
//! file or folder) against any Kafka cluster and Confluent-compatible registry.

use std::path::PathBuf;
use std::process::ExitCode;

use sluice_platform::{Options, Plan, Platform, Target};
use sluice_sdk::registry::{RegistryClient, RetryPolicy};

use crate::kafka::ClientArgs;

/// Where the cluster and the registry are.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TargetArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Schema registry URL: needed when the file has a `schemas:` section; without it
    /// `export` leaves the registry out.
    #[arg(long, env = "SLUICE_REGISTRY_URL")]
    registry_url: Option<String>,
}

impl TargetArgs {
    fn target(&self) -> anyhow::Result<Target> {
        // A missing registry should fail the command quickly, not after a minute of retries.
        let retry = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        Ok(Target {
            admin: crate::cmd::acl::admin_config(&self.client)?,
            registry: self
                .registry_url
                .as_deref()
                .map(|url| RegistryClient::new(url, retry))
                .transpose()?,
        })
    }
}

/// The options `plan`, `apply` and `drift` share.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FileArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The platform file, or a folder of them.
    #[arg(
        long,
        short = 'f',
        env = "SLUICE_PLATFORM_FILE",
        default_value = "platform.yml"
    )]
    file: PathBuf,
    /// Also remove ACLs of principals the file does not mention.
    #[arg(long)]
    prune_unmanaged_acls: bool,
    /// Print the plan as JSON (changes and blockers) instead of text.
    #[arg(long)]
    json: bool,
}

impl FileArgs {
    fn load(&self) -> anyhow::Result<Platform> {
        // The error names the file and line already.
        Ok(Platform::load(&self.file)?)
    }

    fn options(&self, allow_delete: bool) -> Options {
        Options {
            prune_unmanaged_acls: self.prune_unmanaged_acls,
            allow_delete,
        }
    }

    fn print(&self, plan: &Plan) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(plan)?);
        } else if plan.is_empty() {
            println!("no changes: the cluster matches {}", self.file.display());
        } else {
            println!("{plan}");
        }
        Ok(())
    }

    async fn plan(&self) -> anyhow::Result<Plan> {
        let platform = self.load()?;
        // Connection errors already say where they tried and what to check.
        Ok(sluice_platform::plan(&self.target.target()?, &platform, &self.options(false)).await?)
    }
}

/// `sluice plan`.
#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    file: FileArgs,
}

/// `sluice apply`.
#[derive(Debug, clap::Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    file: FileArgs,
    /// Allow deleting topics (with their data) and subjects the file does not list; without
    /// it a plan that deletes anything is refused whole.
    #[arg(long)]
    allow_delete: bool,
}

/// `sluice drift`.
#[derive(Debug, clap::Args)]
pub(crate) struct DriftArgs {
    #[command(flatten)]
    file: FileArgs,
}

/// `sluice export`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The platform file to write; schema files go to `schemas/` beside it.
    #[arg(long, short = 'o', default_value = "platform.yml")]
    out: PathBuf,
}

/// Shows how the cluster differs from the file.
pub(crate) async fn plan(args: PlanArgs) -> anyhow::Result<()> {
    let plan = args.file.plan().await?;
    args.file.print(&plan)
}

/// Converges the cluster to the file.
pub(crate) async fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let file = &args.file;
    let platform = file.load()?;
    let applied = sluice_platform::apply(
        &file.target.target()?,
        &platform,
        &file.options(args.allow_delete),
    )
    .await?;
    if file.json {
        file.print(&applied)
    } else if applied.is_empty() {
        println!("nothing to do: the cluster matches {}", file.file.display());
        Ok(())
    } else {
        println!("{applied}\napplied {}", file.file.display());
        Ok(())
    }
}

/// Exit code of `drift` when the cluster differs (1 stays for errors, as Terraform's
/// `plan -detailed-exitcode` does).
const DRIFTED: u8 = 2;

/// Prints the differences and exits with 2 when there are any, 0 when there are none.
pub(crate) async fn drift(args: DriftArgs) -> anyhow::Result<ExitCode> {
    let plan = args.file.plan().await?;
    args.file.print(&plan)?;
    Ok(if plan.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(DRIFTED)
    })
}

/// Writes the platform file from the live cluster.
pub(crate) async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let target = args.target.target()?;
    let exported = sluice_platform::export(&target, &args.out).await?;
    let acls = exported.acl_entries.map_or_else(
        || "no authorizer".to_owned(),
        |n| format!("{n} ACL entries"),
    );
    let subjects = exported
        .subjects
        .map_or_else(|| "no registry".to_owned(), |n| format!("{n} subjects"));
    println!(
        "wrote {} ({} topics, {acls}, {subjects}) and {} schema file(s)",
        args.out.display(),
        exported.topics,
        exported.files.len() - 1
    );
    Ok(())
}
