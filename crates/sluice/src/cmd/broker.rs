//! `sluice broker`: the Kafka-compatible broker alone.

use crate::cmd::ConfigFileArg;
use crate::config::{self, BrokerSettings};
use crate::platform;

/// Arguments of `sluice broker`: the broker part of `sluice up`.
#[derive(Debug, clap::Args)]
pub(crate) struct BrokerArgs {
    #[command(flatten)]
    file: ConfigFileArg,
    #[command(flatten)]
    broker: BrokerSettings,
    #[command(flatten)]
    security: crate::security::SecuritySettings,
}

/// Runs the broker until SIGINT/SIGTERM.
pub(crate) async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let file = config::load_file(args.file.config.as_deref())?;
    let metrics_listen = config::metrics_listen(&args.broker, file.as_ref());
    let mut broker = config::broker_config(args.broker, file.as_ref())?;
    crate::security::apply(args.security, file.as_ref(), &mut broker)?;
    let starter = platform::broker::starter(broker, metrics_listen);
    platform::run("sluice broker", vec![starter]).await
}
