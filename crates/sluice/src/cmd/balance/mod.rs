//! `sluice balance`: Cruise Control's job — model a cluster from the standard admin protocol,
//! propose replica moves that satisfy goals in priority order, execute them with throttles,
//! watch and stop them — on Sluice, Apache Kafka or MSK alike.

mod render;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use sluice_balancer::collect::{CapacityFile, CollectOptions};
use sluice_balancer::execute::{ExecuteOptions, Progress};
use sluice_balancer::model::generate::Spec;
use sluice_balancer::model::ModelSettings;
use sluice_balancer::{ClusterModel, GoalKind, GoalSettings, Proposal};

use crate::cmd::acl::admin_config;
use crate::kafka::ClientArgs;

/// Where the model comes from and how it is estimated.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ModelArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Read the model from this JSON file (from `sluice balance model`) instead of the cluster.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Seconds between the two offset samples that estimate bytes in per partition (0: sizes
    /// only).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    sample_secs: u64,
    /// Broker capacities as JSON: {"default": {"disk_bytes": …, "network_in": …,
    /// "network_out": …, "cpu_cores": …}, "brokers": {"1": {…}}} [default: disk from
    /// DescribeLogDirs].
    #[arg(long, value_name = "FILE")]
    capacity: Option<PathBuf>,
    /// Cores each broker keeps busy, measured elsewhere, as JSON by node id: {"1": 2.5, …}
    /// (e.g. Prometheus' `rate(process_cpu_seconds_total[5m])`) [default: CPU not modelled].
    #[arg(long, value_name = "FILE")]
    cpu_usage: Option<PathBuf>,
    /// Times consumers read what is produced (for outbound network estimates).
    #[arg(long, default_value_t = 1.0)]
    consumer_fanout: f64,
    /// Also balance internal topics (`__consumer_offsets`, …).
    #[arg(long)]
    include_internal: bool,
}

/// What a proposal optimizes.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct GoalArgs {
    /// Goals in priority order, comma-separated Cruise Control names [default: all, in Cruise
    /// Control's order].
    #[arg(long, value_delimiter = ',', value_name = "GOAL,...")]
    goals: Vec<String>,
    /// Share of a capacity the capacity goals allow.
    #[arg(long, default_value_t = 0.8)]
    capacity_threshold: f64,
    /// How far from the average the distribution goals allow (1.10: ±10 %).
    #[arg(long, default_value_t = 1.10)]
    balance_threshold: f64,
    /// Most replicas a broker may hold.
    #[arg(long, default_value_t = 10_000)]
    max_replicas_per_broker: u32,
}

/// How a proposal is executed.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ExecArgs {
    /// Partitions moving at once.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Cap replication and log-dir copies at this many bytes per second while executing.
    #[arg(long, value_name = "BYTES")]
    throttle: Option<u64>,
}

/// What `broker add` and `broker remove` take.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BrokerArgs {
    /// The brokers' node ids.
    #[arg(value_delimiter = ',', required = true)]
    ids: Vec<i32>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    goals: GoalArgs,
    #[command(flatten)]
    exec: ExecArgs,
    /// Only print the proposal.
    #[arg(long)]
    dry_run: bool,
}

/// `sluice balance broker` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum BrokerCommand {
    /// Move replicas onto newly added brokers (and onto no other broker), as Cruise Control's
    /// add_broker does.
    Add(BrokerArgs),
    /// Drain brokers: move every replica off them.
    Remove(BrokerArgs),
}

/// The `sluice balance` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum BalanceCommand {
    /// Build the cluster model (brokers, replicas, sizes, estimated load) and save it as JSON.
    Model {
        #[command(flatten)]
        model: ModelArgs,
        /// Write the model here [default: stdout].
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Propose replica and leadership moves; print them and save the proposal as JSON.
    Propose {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        goals: GoalArgs,
        /// Drain these brokers (node ids): every replica leaves them.
        #[arg(long, value_delimiter = ',', value_name = "ID,...")]
        remove_broker: Vec<i32>,
        /// Write the proposal here.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Execute a proposal (a file from `propose`, or a fresh one).
    Execute {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        goals: GoalArgs,
        /// The proposal to execute [default: propose now].
        #[arg(long, value_name = "FILE")]
        proposal: Option<PathBuf>,
        /// Drain these brokers (when proposing now).
        #[arg(long, value_delimiter = ',', value_name = "ID,...")]
        remove_broker: Vec<i32>,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Add brokers (move replicas onto them) or remove them (drain).
    #[command(subcommand)]
    Broker(BrokerCommand),
    /// Show the moves in progress: reassignments and copies between log directories.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop every move in progress (reassignments and log-dir copies).
    Stop {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Elect the preferred leader of every partition led by another replica.
    Leaders {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Time proposals for a generated cluster (no cluster needed).
    Bench {
        /// Brokers.
        #[arg(long, default_value_t = 90)]
        brokers: u32,
        /// Partitions.
        #[arg(long, default_value_t = 100_000)]
        partitions: u32,
        /// Topics.
        #[arg(long, default_value_t = 1_000)]
        topics: u32,
        /// Racks.
        #[arg(long, default_value_t = 3)]
        racks: u32,
        /// Replicas per partition.
        #[arg(long, default_value_t = 3)]
        replication: u32,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        goals: GoalArgs,
    },
}

impl GoalArgs {
    fn goals(&self) -> anyhow::Result<Vec<GoalKind>> {
        if self.goals.is_empty() {
            return Ok(GoalKind::DEFAULT_ORDER.to_vec());
        }
        self.goals
            .iter()
            .map(|g| {
                GoalKind::parse(g).with_context(|| {
                    let known: Vec<String> =
                        GoalKind::DEFAULT_ORDER.iter().map(|g| g.name()).collect();
                    format!("unknown goal {g:?}; goals are {}", known.join(", "))
                })
            })
            .collect()
    }

    fn settings(&self) -> GoalSettings {
        GoalSettings {
            capacity_threshold: self.capacity_threshold,
            balance_threshold: self.balance_threshold,
            max_replicas_per_broker: self.max_replicas_per_broker,
            ..GoalSettings::default()
        }
    }
}

async fn load_model(args: &ModelArgs) -> anyhow::Result<ClusterModel> {
    if let Some(path) = &args.model {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the model {}", path.display()))?;
        return ClusterModel::from_json(&text)
            .with_context(|| format!("the model {} is unusable", path.display()));
    }
    let capacity: CapacityFile = read_json(args.capacity.as_ref(), "capacity file")?;
    let cpu_usage: BTreeMap<i32, f64> = read_json(args.cpu_usage.as_ref(), "CPU usage file")?;
    if let Some((id, cores)) = cpu_usage.iter().find(|(_, c)| !c.is_finite() || **c < 0.0) {
        anyhow::bail!("the CPU usage file gives broker {id} {cores} cores busy; give 0 or more");
    }
    if !cpu_usage.is_empty() && args.sample_secs == 0 {
        anyhow::bail!(
            "--cpu-usage shares each broker's CPU among its replicas by the bytes they move, \
             which --sample-secs 0 does not measure"
        );
    }
    let options = CollectOptions {
        sample: Duration::from_secs(args.sample_secs),
        capacity,
        settings: ModelSettings {
            consumer_fanout: args.consumer_fanout,
        },
        skip_internal: !args.include_internal,
        cpu_usage,
    };
    if args.sample_secs > 0 {
        eprintln!(
            "sampling offsets for {} s to estimate bytes in…",
            args.sample_secs
        );
    }
    let model = sluice_balancer::collect::collect(&admin_config(&args.client)?, &options)
        .await
        .with_context(|| args.client.unreachable_hint())?;
    if let Some(id) = options
        .cpu_usage
        .keys()
        .find(|id| model.brokers.iter().all(|b| b.id != **id))
    {
        anyhow::bail!("the CPU usage file names broker {id}, which is not in the cluster");
    }
    Ok(model)
}

/// The JSON file at `path` (`what` names it in errors), or the default without one.
fn read_json<T: serde::de::DeserializeOwned + Default>(
    path: Option<&PathBuf>,
    what: &str,
) -> anyhow::Result<T> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("the {what} {} is invalid", path.display()))
}

fn write_json(path: Option<&PathBuf>, json: &str) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            println!("{json}");
            Ok(())
        }
    }
}

/// Brokers a proposal treats specially.
#[derive(Debug, Default)]
struct Changes<'a> {
    remove: &'a [i32],
    add: &'a [i32],
}

async fn propose(
    model: &ModelArgs,
    goals: &GoalArgs,
    changes: Changes<'_>,
) -> anyhow::Result<(ClusterModel, Proposal)> {
    let mut cluster = load_model(model).await?;
    for (ids, removing) in [(changes.remove, true), (changes.add, false)] {
        for id in ids {
            let broker = cluster
                .brokers
                .iter_mut()
                .find(|b| b.id == *id)
                .with_context(|| format!("broker {id} is not in the cluster"))?;
            if removing {
                broker.excluded = true;
            } else {
                broker.added = true;
            }
        }
    }
    let kinds = goals.goals()?;
    let settings = goals.settings();
    let proposal =
        tokio::task::block_in_place(|| sluice_balancer::optimize(&cluster, &kinds, &settings))?;
    Ok((cluster, proposal))
}

/// Executes `proposal` with a progress bar and prints what happened.
async fn execute(client: &ClientArgs, proposal: &Proposal, exec: &ExecArgs) -> anyhow::Result<()> {
    let options = ExecuteOptions {
        concurrency: exec.concurrency,
        throttle: exec.throttle,
        ..ExecuteOptions::default()
    };
    let started = Instant::now();
    let report = sluice_balancer::execute::execute(
        &admin_config(client)?,
        proposal,
        &options,
        |p: &Progress| eprint!("\r{}", render::progress_bar(p)),
    )
    .await?;
    eprintln!();
    print!("{}", render::report(&report, started.elapsed()));
    anyhow::ensure!(
        report.failed.is_empty(),
        "{} moves failed",
        report.failed.len()
    );
    Ok(())
}

/// Runs a `sluice balance` subcommand.
pub(crate) async fn run(command: BalanceCommand) -> anyhow::Result<()> {
    match command {
        BalanceCommand::Model { model, output } => {
            let cluster = load_model(&model).await?;
            eprint!("{}", render::model(&cluster));
            write_json(output.as_ref(), &cluster.to_json())
        }
        BalanceCommand::Propose {
            model,
            goals,
            remove_broker,
            output,
        } => {
            let changes = Changes {
                remove: &remove_broker,
                ..Changes::default()
            };
            let (cluster, proposal) = propose(&model, &goals, changes).await?;
            print!("{}", render::proposal(&cluster, &proposal));
            if let Some(path) = output {
                write_json(Some(&path), &serde_json::to_string_pretty(&proposal)?)?;
                println!("proposal written to {}", path.display());
            }
            Ok(())
        }
        BalanceCommand::Execute {
            model,
            goals,
            proposal,
            remove_broker,
            exec,
        } => {
            let proposal = match proposal {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    serde_json::from_str::<Proposal>(&text)
                        .with_context(|| format!("{} is not a proposal", path.display()))?
                }
                None => {
                    let changes = Changes {
                        remove: &remove_broker,
                        ..Changes::default()
                    };
                    let (cluster, proposal) = propose(&model, &goals, changes).await?;
                    print!("{}", render::proposal(&cluster, &proposal));
                    proposal
                }
            };
            execute(&model.client, &proposal, &exec).await
        }
        BalanceCommand::Broker(command) => {
            let (args, changes) = match &command {
                BrokerCommand::Add(args) => (
                    args,
                    Changes {
                        add: &args.ids,
                        remove: &[],
                    },
                ),
                BrokerCommand::Remove(args) => (
                    args,
                    Changes {
                        remove: &args.ids,
                        add: &[],
                    },
                ),
            };
            let (cluster, proposal) = propose(&args.model, &args.goals, changes).await?;
            print!("{}", render::proposal(&cluster, &proposal));
            if args.dry_run {
                return Ok(());
            }
            execute(&args.model.client, &proposal, &args.exec).await
        }
        BalanceCommand::Status { client } => {
            let config = admin_config(&client)?;
            let mut conn = sluice_admin::AdminConnection::connect(&config)
                .await
                .with_context(|| client.unreachable_hint())?;
            let ongoing = sluice_admin::list_partition_reassignments(&mut conn).await?;
            let metadata = sluice_admin::cluster_metadata(&mut conn).await?;
            let mut futures = Vec::new();
            for broker in &metadata.brokers {
                let mut c = sluice_admin::AdminConnection::connect(&sluice_admin::AdminConfig {
                    bootstrap: broker.address(),
                    ..config.clone()
                })
                .await?;
                for dir in sluice_admin::describe_log_dirs(&mut c).await? {
                    for r in dir.replicas.into_iter().filter(|r| r.is_future) {
                        futures.push((broker.id, dir.path.clone(), r));
                    }
                }
            }
            print!("{}", render::status(&ongoing, &futures));
            Ok(())
        }
        BalanceCommand::Stop { client } => {
            let (reassignments, copies) =
                sluice_balancer::execute::stop(&admin_config(&client)?).await?;
            println!("stopped {reassignments} reassignment(s) and {copies} log-dir copy(ies)");
            Ok(())
        }
        BalanceCommand::Leaders { client } => {
            let config = admin_config(&client)?;
            let mut conn = sluice_admin::AdminConnection::connect(&config)
                .await
                .with_context(|| client.unreachable_hint())?;
            let metadata = sluice_admin::cluster_metadata(&mut conn).await?;
            let wanted: Vec<(String, i32)> = metadata
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .filter(|p| p.replicas.first() != Some(&p.leader))
                        .map(|p| (t.name.clone(), p.index))
                })
                .collect();
            if wanted.is_empty() {
                println!("every partition is led by its preferred replica");
                return Ok(());
            }
            let results = sluice_admin::elect_preferred_leaders(&mut conn, &wanted).await?;
            let failed: Vec<String> = results
                .iter()
                .filter_map(|(t, p, r)| r.as_ref().err().map(|e| format!("{t}-{p}: {e}")))
                .collect();
            println!(
                "elected {} preferred leader(s)",
                results.len() - failed.len()
            );
            anyhow::ensure!(failed.is_empty(), "elections failed: {}", failed.join("; "));
            Ok(())
        }
        BalanceCommand::Bench {
            brokers,
            partitions,
            topics,
            racks,
            replication,
            seed,
            goals,
        } => {
            let spec = Spec {
                brokers,
                racks,
                topics,
                partitions,
                replication,
                log_dirs: 2,
                seed,
            };
            let kinds = goals.goals()?;
            let settings = goals.settings();
            let report = tokio::task::block_in_place(|| render::bench(spec, &kinds, &settings))?;
            println!("{report}");
            Ok(())
        }
    }
}
