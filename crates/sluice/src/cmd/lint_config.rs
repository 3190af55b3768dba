//! `sluice lint-config`: checks a client configuration for known mistakes (the SDK's linter).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use sluice_sdk::lint::{lint, Severity};

/// Arguments of `sluice lint-config`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LintConfigArgs {
    /// A librdkafka/Java `client.properties` file (`key=value` lines), or a streaming
    /// pipeline file (`.yml`/`.yaml`).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A property, `key=value` (repeatable; overrides the file). `sluice.critical.topics=a,b`
    /// marks topics whose writes must be durable.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub props: Vec<String>,
}

/// Prints every finding; fails when any is an error.
pub(crate) async fn run(args: LintConfigArgs) -> anyhow::Result<()> {
    if args.file.is_none() && args.props.is_empty() {
        bail!("nothing to check: give a properties FILE and/or -X key=value");
    }
    if let Some(file) = args.file.as_ref().filter(|f| is_pipeline(f)) {
        if !args.props.is_empty() {
            bail!("-X applies to properties files, not to pipeline files");
        }
        return lint_pipeline(file);
    }
    let mut props = BTreeMap::new();
    if let Some(file) = &args.file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        props.extend(sluice_sdk::config::parse_properties(&text));
    }
    for kv in &args.props {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("-X {kv:?} is not key=value");
        };
        props.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    let findings = lint(&props);
    for f in &findings {
        println!("{f}");
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if errors > 0 {
        bail!("{errors} configuration error(s); fix them before deploying");
    }
    if findings.is_empty() {
        println!("no problems found");
    }
    Ok(())
}

fn is_pipeline(file: &std::path::Path) -> bool {
    matches!(
        file.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    )
}

/// A streaming-SDK pipeline file: every rule of `sluice_stream::lint`.
fn lint_pipeline(file: &std::path::Path) -> anyhow::Result<()> {
    let config = sluice_stream::pipeline::PipelineConfig::from_file(file)?;
    let findings = sluice_stream::lint::lint_pipeline(&config);
    for f in &findings {
        println!("{f}");
    }
    let errors = sluice_stream::lint::errors(&findings);
    if errors > 0 {
        bail!("{errors} configuration error(s); fix them before deploying");
    }
    if findings.is_empty() {
        println!("no problems found");
    }
    Ok(())
}
