//! `sluice stream`: pipelines of the streaming SDK, from a YAML file — a Kafka consumer group,
//! transforms, and a fan-out to Kafka, SQS, SNS and Kinesis, at least once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use sluice_stream::lint::{self, Severity};
use sluice_stream::pipeline::{DestinationConfig, Pipeline, PipelineConfig};
use sluice_stream::StreamMetrics;

use crate::platform;

/// `sluice stream …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum StreamCommand {
    /// Run a pipeline until SIGINT/SIGTERM (then drain and commit) or until an event cannot be
    /// delivered as its policy requires (then commit what was delivered and exit 1).
    Run(RunArgs),
}

/// Arguments of `sluice stream run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The pipeline file (YAML; see docs/stream.md).
    #[arg(value_name = "PIPELINE.yml")]
    file: PathBuf,
    /// Print the resolved pipeline (presets applied, linter findings) and exit.
    #[arg(long)]
    dry_run: bool,
    /// Address of the pipeline's Prometheus endpoint, `GET /metrics` [default: none].
    #[arg(long, env = "SLUICE_STREAM_METRICS_LISTEN", value_name = "HOST:PORT")]
    metrics_listen: Option<SocketAddr>,
}

impl RunArgs {
    /// Whether this only prints the resolved pipeline.
    pub(crate) fn is_dry_run(&self) -> bool {
        self.dry_run
    }
}

/// Runs `sluice stream …`.
pub(crate) async fn run(command: StreamCommand) -> anyhow::Result<()> {
    match command {
        StreamCommand::Run(args) => run_pipeline(args).await,
    }
}

async fn run_pipeline(args: RunArgs) -> anyhow::Result<()> {
    let config = PipelineConfig::from_file(&args.file)?;
    if args.dry_run {
        print!("{}", describe(&config)?);
        let findings = lint::lint_pipeline(&config);
        for f in &findings {
            println!("{f}");
        }
        let errors = lint::errors(&findings);
        if errors > 0 {
            bail!("{errors} configuration error(s); the pipeline would not start");
        }
        return Ok(());
    }
    let mut signals = platform::signal::Signals::new()?;
    let registry = Arc::new(sluice_metrics::Registry::new());
    let metrics = StreamMetrics::new(&registry);
    let (pipeline, findings) = Pipeline::start(&config, &metrics, &registry)
        .await
        .with_context(|| format!("cannot start the pipeline in {}", args.file.display()))?;
    for f in findings.iter().filter(|f| f.severity == Severity::Warning) {
        tracing::warn!("{f}");
    }
    let render = Arc::clone(&registry);
    let endpoint =
        platform::metrics::serve_if(args.metrics_listen, Arc::new(move || render.render())).await?;
    platform::announce_ready(&format!(
        "sluice stream: pipeline {} running ({} destination(s))\n",
        config.name.as_deref().unwrap_or("pipeline"),
        config.destinations.len()
    ));
    let result = pipeline
        .run(async move {
            let signal = signals.recv().await;
            tracing::info!("received {signal}, draining the pipeline");
        })
        .await;
    platform::metrics::stop_if(endpoint).await;
    let summary = result?;
    println!(
        "sluice stream: stopped; {} consumed, {} delivered, {} filtered, {} dead-lettered",
        summary.consumed, summary.delivered, summary.filtered, summary.dead_lettered
    );
    Ok(())
}

/// The resolved pipeline, as `--dry-run` prints it.
fn describe(config: &PipelineConfig) -> anyhow::Result<String> {
    let mut s = String::new();
    let src = &config.source.kafka;
    s.push_str(&format!(
        "pipeline {}\nsource: kafka topics {:?} group {} at {}\n",
        config.name.as_deref().unwrap_or("pipeline"),
        src.topics,
        src.properties.get("group.id").map_or("?", String::as_str),
        src.properties
            .get("bootstrap.servers")
            .map_or("?", String::as_str),
    ));
    s.push_str(&format!("transforms: {}\n", config.transforms.len()));
    s.push_str(&format!("delivery: {:?}\n", config.delivery.policy));
    for d in &config.destinations {
        s.push_str(&destination(d, "destination")?);
    }
    if let Some(d) = &config.delivery.dead_letter {
        s.push_str(&destination(d, "dead letter")?);
    }
    Ok(s)
}

fn destination(d: &DestinationConfig, role: &str) -> anyhow::Result<String> {
    let kind = d.kind()?;
    let o = d.sink_options()?;
    let mut s = format!(
        "{role} {} ({}{}): linger {:?}, max records {}, in flight {}, buffer {} bytes, attempts {}, timeout {:?}{}\n",
        d.name,
        kind.name(),
        d.preset.map(|p| format!(", preset {}", p.name())).unwrap_or_default(),
        o.linger,
        o.max_records.map_or("service limit".to_owned(), |n| n.to_string()),
        o.max_in_flight,
        o.buffer_bytes,
        o.max_attempts,
        o.delivery_timeout,
        if o.ordered { ", ordered" } else { "" },
    );
    if let sluice_stream::pipeline::DestinationKind::Kafka(k) = kind {
        s.push_str(&format!("  topic {}\n", k.topic));
        for (key, v) in d.kafka_properties() {
            const SECRET: &[&str] = &["password", "secret", "pem", "sasl.", "token", "key"];
            let shown = if SECRET.iter().any(|s| key.contains(s)) {
                "<redacted>".to_owned()
            } else {
                v
            };
            s.push_str(&format!("  {key}={shown}\n"));
        }
    }
    Ok(s)
}
