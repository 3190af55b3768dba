//! `sluice`: one binary that runs the Sluice platform and the tools to use it.
//!
//! Each subcommand lives in its own module under [`cmd`]; adding one is a variant in
//! [`Command`] plus an arm in [`Command::run`].

mod cmd;
mod config;
mod kafka;
mod logging;
mod platform;
mod security;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command-line interface of the `sluice` binary.
#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a Kafka-compatible streaming platform"
)]
struct Cli {
    /// Log filter (e.g. `info`, `debug`, `sluice_broker=trace`); overrides RUST_LOG.
    #[arg(long, global = true, env = "SLUICE_LOG_LEVEL")]
    log_level: Option<String>,

    #[command(subcommand)]
    command: Command,
}

/// The subcommands of `sluice`.
// Parsed once per process: the size of the largest variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Start the whole platform on this machine: broker, schema registry, security service,
    /// HTTP ingestion and a Connect worker.
    Up(cmd::up::UpArgs),
    /// Start the Kafka-compatible broker alone.
    Broker(cmd::broker::BrokerArgs),
    /// Create, list, describe and delete topics on any Kafka cluster.
    #[command(subcommand)]
    Topic(cmd::topic::TopicCommand),
    /// Send the lines of stdin as messages to a topic.
    Produce(cmd::produce::ProduceArgs),
    /// Print the messages of a topic.
    Consume(cmd::consume::ConsumeArgs),
    /// List consumer groups, show their lag, and reset their offsets on any Kafka cluster.
    #[command(subcommand)]
    Group(cmd::group::GroupCommand),
    /// List, add and remove ACLs, or keep them as code in an acl.yml, on any Kafka cluster.
    #[command(subcommand)]
    Acl(cmd::acl::AclCommand),
    /// Add, list and remove SCRAM users (SASL logins) on any Kafka cluster.
    #[command(subcommand)]
    User(cmd::user::UserCommand),
    /// Set, list and remove client quotas (byte rates, request time) on any Kafka cluster.
    #[command(subcommand)]
    Quota(cmd::quota::QuotaCommand),
    /// List and describe transactions, show a partition's producers, abort a hanging
    /// transaction, on any Kafka cluster.
    #[command(subcommand)]
    Txn(cmd::txn::TxnCommand),
    /// Start the Confluent-compatible schema registry against any Kafka cluster.
    Registry(cmd::registry::RegistryArgs),
    /// Start HTTP ingestion (Confluent REST Proxy API v2/v3) against any Kafka cluster.
    Http(cmd::http::HttpArgs),
    /// Start a Kafka Connect worker (REST API, Kafka-stored state) with Sluice's connectors
    /// (PostgreSQL change data capture) against any Kafka cluster.
    Connect(cmd::connect::ConnectArgs),
    /// Run the Kafka Security Service (CA for service certificates, ACLs as code), or mint a
    /// development identity token with `sluice kss token`.
    Kss(cmd::kss::KssArgs),
    /// Obtain a client certificate from KSS and keep it renewed in a shared directory.
    Sidecar(cmd::sidecar::SidecarArgs),
    /// Rebalance partitions across brokers and their disks (Cruise Control's job) on any
    /// Kafka cluster: model, propose, execute, status, stop.
    #[command(subcommand)]
    Balance(cmd::balance::BalanceCommand),
    /// Measure end-to-end latency and throughput of any Kafka-protocol broker.
    Bench(sluice_bench::BenchArgs),
    /// Run streaming-SDK pipelines: a Kafka consumer group fanned out to Kafka, SQS, SNS and
    /// Kinesis, at least once.
    #[command(subcommand)]
    Stream(cmd::stream::StreamCommand),
    /// Check a client configuration (properties file and/or -X overrides) or a pipeline file
    /// (`.yml`/`.yaml`) for known mistakes.
    LintConfig(cmd::lint_config::LintConfigArgs),
    /// Show how a cluster and registry differ from a platform file (topics, ACLs, schemas).
    Plan(cmd::plan::PlanArgs),
    /// Converge a cluster and registry to a platform file; deleting needs --allow-delete.
    Apply(cmd::plan::ApplyArgs),
    /// Like plan, for CI: exit 2 when the cluster differs from the file, 0 when it matches.
    Drift(cmd::plan::DriftArgs),
    /// Write a platform file (and its schema files) from a live cluster and registry.
    Export(cmd::plan::ExportArgs),
}

impl Command {
    /// Runs the chosen subcommand to completion.
    async fn run(self) -> anyhow::Result<ExitCode> {
        let done = match self {
            Command::Drift(args) => return cmd::plan::drift(args).await,
            Command::Plan(args) => cmd::plan::plan(args).await,
            Command::Apply(args) => cmd::plan::apply(args).await,
            Command::Export(args) => cmd::plan::export(args).await,
            Command::Up(args) => cmd::up::run(args).await,
            Command::Broker(args) => cmd::broker::run(args).await,
            Command::Topic(command) => cmd::topic::run(command).await,
            Command::Produce(args) => cmd::produce::run(args).await,
            Command::Consume(args) => cmd::consume::run(args).await,
            Command::Group(command) => cmd::group::run(command).await,
            Command::Acl(command) => cmd::acl::run(command).await,
            Command::User(command) => cmd::user::run(command).await,
            Command::Quota(command) => cmd::quota::run(command).await,
            Command::Balance(command) => cmd::balance::run(command).await,
            Command::Txn(command) => cmd::txn::run(command).await,
            Command::Kss(args) => cmd::kss::run(args).await,
            Command::Sidecar(args) => cmd::sidecar::run(args).await,
            Command::Registry(args) => cmd::registry::run(args).await,
            Command::Http(args) => cmd::http::run(args).await,
            Command::Connect(args) => cmd::connect::run(args).await,
            Command::LintConfig(args) => cmd::lint_config::run(args).await,
            Command::Stream(command) => cmd::stream::run(command).await,
            // The benchmark paces its own threads with blocking sleeps; keep them off the
            // async workers.
            Command::Bench(args) => {
                tokio::task::spawn_blocking(move || sluice_bench::run(&args)).await??;
                Ok(())
            }
        };
        done.map(|()| ExitCode::SUCCESS)
    }

    /// True for long-running services, which must survive a client closing its socket; the
    /// terminal tools instead stop quietly when their output pipe closes.
    fn is_server(&self) -> bool {
        match self {
            Command::Up(_)
            | Command::Broker(_)
            | Command::Registry(_)
            | Command::Http(_)
            | Command::Sidecar(_) => true,
            Command::Kss(args) => !args.is_token(),
            Command::Connect(args) => !args.is_status(),
            Command::Stream(cmd::stream::StreamCommand::Run(args)) => !args.is_dry_run(),
            _ => false,
        }
    }

    /// The service name in traces: `sluice-<component>`, for `sluice up`'s children too.
    fn service_name(&self) -> String {
        if let Ok(component) = std::env::var(platform::supervisor::COMPONENT_ENV) {
            return format!("sluice-{component}");
        }
        let name = match self {
            Command::Up(_) => "up",
            Command::Broker(_) => "broker",
            Command::Registry(_) => "registry",
            Command::Http(_) => "http",
            Command::Connect(_) => "connect",
            Command::Kss(_) => "kss",
            Command::Sidecar(_) => "sidecar",
            _ => "cli",
        };
        format!("sluice-{name}")
    }

    /// The log filter used when neither `--log-level` nor RUST_LOG is set: servers narrate
    /// their lifecycle, terminal tools stay quiet unless something is wrong.
    fn default_log_filter(&self) -> &'static str {
        match self {
            Command::Up(_) | Command::Broker(_) | Command::Sidecar(_) => "info",
            Command::Kss(args) if !args.is_token() => "info",
            Command::Connect(args) if args.is_status() => "warn",
            Command::Registry(_) | Command::Http(_) | Command::Connect(_) => {
                "info,librdkafka=warn,rdkafka=warn"
            }
            // librdkafka logs every failed connection attempt; the tools report the outcome
            // themselves, and `--log-level debug` brings the details back.
            _ => "warn,librdkafka=off,rdkafka=off",
        }
    }
}

/// Lets `sluice topic list | head` end like any Unix tool when `head` exits. Rust starts with
/// SIGPIPE ignored, which turns a closed stdout into a panic inside `println!`.
fn restore_default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler code and touches no
    // Rust-managed memory; it is valid from any thread at any time.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A server that writes past a file-size limit (`ulimit -f`) gets SIGXFSZ, whose default
/// action kills the process. Ignored, the write fails with `EFBIG` instead and is handled like a
/// full disk: the request gets a storage error, the path is logged, and everything else goes on.
fn ignore_file_size_signal() {
    // SAFETY: SIG_IGN installs no handler code and touches no Rust-managed memory.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Joins an error and its causes with ": ", skipping a cause whose text the message already
/// contains (many library errors repeat their source in their own message).
fn error_chain(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.is_server() {
        ignore_file_size_signal();
    } else {
        restore_default_sigpipe();
    }
    let service = cli.command.service_name();
    let logger = logging::init(
        cli.log_level.as_deref(),
        cli.command.default_log_filter(),
        &service,
    );
    let (result, traces) = match logger {
        Ok(traces) => (cli.command.run().await, traces),
        Err(e) => (Err(e), None),
    };
    // Sends the spans still buffered before the process ends.
    drop(traces);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice: error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[test]
    fn error_chain_skips_repeated_causes() {
        let io = std::io::Error::other("address in use");
        let err = anyhow::Error::new(io)
            .context("cannot listen on :9092: address in use")
            .context("could not start the broker");
        assert_eq!(
            error_chain(&err),
            "could not start the broker: cannot listen on :9092: address in use"
        );
        let err = anyhow::anyhow!("root cause").context("outer");
        assert_eq!(error_chain(&err), "outer: root cause");
    }
}
