//! `sluice quota`: client quotas (KIP-546) with the standard admin APIs (DescribeClientQuotas,
//! AlterClientQuotas), so it manages Sluice, Apache Kafka and MSK alike.

use sluice_admin::QuotaEntityPart;

use crate::cmd::acl::connect;
use crate::kafka::ClientArgs;

/// The entity a quota applies to.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct EntityArgs {
    /// A user (its principal name, e.g. `alice` or `CN=orders-svc`).
    #[arg(long, conflicts_with = "user_default")]
    user: Option<String>,
    /// The default for every user without a quota of their own.
    #[arg(long)]
    user_default: bool,
    /// A client id.
    #[arg(long, conflicts_with = "client_id_default")]
    client_id: Option<String>,
    /// The default for every client id without a quota of its own.
    #[arg(long)]
    client_id_default: bool,
}

impl EntityArgs {
    fn parts(&self) -> Vec<QuotaEntityPart> {
        let part = |entity_type: &str, name: &Option<String>, default: bool| {
            (name.is_some() || default).then(|| QuotaEntityPart {
                entity_type: entity_type.to_owned(),
                name: name.clone(),
            })
        };
        [
            part("user", &self.user, self.user_default),
            part("client-id", &self.client_id, self.client_id_default),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// The `sluice quota` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum QuotaCommand {
    /// List quotas: all of them, or those of entities with the given parts.
    List {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        entity: EntityArgs,
    },
    /// Set quotas of one entity (user, client id, or both).
    Set {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        entity: EntityArgs,
        /// Bytes per second the entity may produce.
        #[arg(long)]
        producer_byte_rate: Option<u64>,
        /// Bytes per second the entity may fetch.
        #[arg(long)]
        consumer_byte_rate: Option<u64>,
        /// Percent of one request-handler thread's time the entity may use.
        #[arg(long)]
        request_percentage: Option<f64>,
    },
    /// Remove quotas of one entity (all of its keys, or the named ones).
    Remove {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        entity: EntityArgs,
        /// A key to remove, e.g. producer_byte_rate (repeatable) [default: every key].
        #[arg(long)]
        key: Vec<String>,
    },
}

fn describe(parts: &[QuotaEntityPart]) -> String {
    parts
        .iter()
        .map(|p| {
            format!(
                "{}={}",
                p.entity_type,
                p.name.as_deref().unwrap_or("<default>")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a `sluice quota` subcommand.
pub(crate) async fn run(command: QuotaCommand) -> anyhow::Result<()> {
    match command {
        QuotaCommand::List { client, entity } => {
            let mut conn = connect(&client).await?;
            let parts = entity.parts();
            for entry in sluice_admin::describe_client_quotas(&mut conn, &parts, false).await? {
                let values: Vec<String> = entry
                    .values
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!("{} {}", describe(&entry.entity), values.join(" "));
            }
        }
        QuotaCommand::Set {
            client,
            entity,
            producer_byte_rate,
            consumer_byte_rate,
            request_percentage,
        } => {
            let parts = entity.parts();
            anyhow::ensure!(
                !parts.is_empty(),
                "name the entity: --user, --user-default, --client-id and/or --client-id-default"
            );
            let ops: Vec<(String, Option<f64>)> = [
                ("producer_byte_rate", producer_byte_rate.map(|v| v as f64)),
                ("consumer_byte_rate", consumer_byte_rate.map(|v| v as f64)),
                ("request_percentage", request_percentage),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), Some(v))))
            .collect();
            anyhow::ensure!(
                !ops.is_empty(),
                "give at least one of --producer-byte-rate, --consumer-byte-rate, --request-percentage"
            );
            let mut conn = connect(&client).await?;
            sluice_admin::alter_client_quotas(&mut conn, &parts, &ops).await?;
            println!("quotas of {} set", describe(&parts));
        }
        QuotaCommand::Remove {
            client,
            entity,
            key,
        } => {
            let parts = entity.parts();
            anyhow::ensure!(!parts.is_empty(), "name the entity whose quotas to remove");
            let mut conn = connect(&client).await?;
            let keys = if key.is_empty() {
                sluice_admin::describe_client_quotas(&mut conn, &parts, true)
                    .await?
                    .into_iter()
                    .filter(|e| e.entity == parts)
                    .flat_map(|e| e.values.into_iter().map(|(k, _)| k))
                    .collect()
            } else {
                key
            };
            anyhow::ensure!(!keys.is_empty(), "{} has no quotas", describe(&parts));
            let ops: Vec<(String, Option<f64>)> = keys.into_iter().map(|k| (k, None)).collect();
            sluice_admin::alter_client_quotas(&mut conn, &parts, &ops).await?;
            println!("quotas of {} removed", describe(&parts));
        }
    }
    Ok(())
}
