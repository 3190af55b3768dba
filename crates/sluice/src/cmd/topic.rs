//! `sluice topic`: topic administration over the standard Kafka admin APIs.

use anyhow::{bail, Context};
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication,
    TopicResult,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::metadata::MetadataTopic;

use crate::kafka::{self, parse_key_value, ClientArgs};

/// The `sluice topic` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TopicCommand {
    /// Create a topic.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        /// Topic name.
        name: String,
        /// Number of partitions [default: the broker's default].
        #[arg(short = 'p', long)]
        partitions: Option<i32>,
        /// Replication factor [default: the broker's default].
        #[arg(short = 'r', long)]
        replication_factor: Option<i32>,
        /// Topic config, e.g. `-c cleanup.policy=compact` (repeatable).
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topic names, one per line.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a topic's partitions and configs.
    Describe {
        #[command(flatten)]
        client: ClientArgs,
        /// Topic name.
        name: String,
    },
    /// Delete a topic and its data.
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        /// Topic name.
        name: String,
    },
}

/// Runs a `sluice topic` subcommand.
pub(crate) async fn run(command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create {
            client,
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            // -1 asks the broker for its defaults (CreateTopics v4+).
            let mut topic = NewTopic::new(
                &name,
                partitions.unwrap_or(-1),
                TopicReplication::Fixed(replication_factor.unwrap_or(-1)),
            );
            for (key, value) in &configs {
                topic = topic.set(key, value);
            }
            let admin = admin_client(&client)?;
            let results = admin
                .create_topics([&topic], &admin_options(&client))
                .await
                .with_context(|| client.unreachable_hint())?;
            single_result(results, "create")?;
            println!("created topic {name}");
        }
        TopicCommand::List { client } => {
            let admin = admin_client(&client)?;
            let metadata = kafka::fetch_metadata(admin.inner(), None, &client)?;
            let mut names: Vec<&str> = metadata.topics().iter().map(MetadataTopic::name).collect();
            names.sort_unstable();
            for name in names {
                println!("{name}");
            }
        }
        TopicCommand::Describe { client, name } => describe(&client, &name).await?,
        TopicCommand::Delete { client, name } => {
            let admin = admin_client(&client)?;
            let results = admin
                .delete_topics(&[&name], &admin_options(&client))
                .await
                .with_context(|| client.unreachable_hint())?;
            single_result(results, "delete")?;
            println!("deleted topic {name}");
        }
    }
    Ok(())
}

/// Prints partitions (leader, replicas, ISR) and the topic's configs, marking defaults.
async fn describe(client: &ClientArgs, name: &str) -> anyhow::Result<()> {
    let admin = admin_client(client)?;
    let metadata = kafka::fetch_metadata(admin.inner(), Some(name), client)?;
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == name) else {
        bail!("topic {name} does not exist (the cluster did not report it)");
    };
    if let Some(err) = topic.error() {
        bail!(
            "cannot describe topic {name}: {}",
            rdkafka::types::RDKafkaErrorCode::from(err)
        );
    }
    let partitions = topic.partitions();
    let replication = partitions.first().map_or(0, |p| p.replicas().len());
    println!(
        "Topic: {name}\tPartitionCount: {}\tReplicationFactor: {replication}",
        partitions.len()
    );
    let mut partitions: Vec<_> = partitions.iter().collect();
    partitions.sort_unstable_by_key(|p| p.id());
    for p in partitions {
        println!(
            "\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
            p.id(),
            p.leader(),
            join_ids(p.replicas()),
            join_ids(p.isr())
        );
    }

    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(name)], &admin_options(client))
        .await
        .with_context(|| client.unreachable_hint())?;
    let Some(result) = results.into_iter().next() else {
        bail!("the cluster returned no configs for topic {name}");
    };
    let resource = result.map_err(|code| {
        anyhow::anyhow!("could not describe the configs of topic {name}: {code}")
    })?;
    let mut entries = resource.entries;
    entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    println!("Configs:");
    for entry in entries {
        let value = match (&entry.value, entry.is_sensitive) {
            (_, true) => "<sensitive>",
            (Some(v), false) => v.as_str(),
            (None, false) => "<null>",
        };
        let origin = match entry.source {
            ConfigSource::DynamicTopic => "",
            _ if entry.is_default => " (default)",
            _ => " (broker)",
        };
        println!("\t{}={value}{origin}", entry.name);
    }
    Ok(())
}

/// Comma-separated broker ids.
fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Builds an admin client; topic auto-creation is off so `describe` of a missing topic fails
/// instead of creating it.
fn admin_client(client: &ClientArgs) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    client
        .client_config()
        .set("allow.auto.create.topics", "false")
        .create()
        .context("could not create the Kafka admin client; check the -X client properties")
}

/// Admin request options bounded by `--request-timeout-ms`.
fn admin_options(client: &ClientArgs) -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(client.timeout()))
        .operation_timeout(Some(client.timeout()))
}

/// Turns the per-topic result of a single-topic admin call into an error naming the topic.
fn single_result(results: Vec<TopicResult>, action: &str) -> anyhow::Result<()> {
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(()),
        Some(Err((topic, code))) => bail!("could not {action} topic {topic}: {code}"),
        None => bail!("the cluster returned no result for the {action} request"),
    }
}
