//! One module per `sluice` subcommand.

pub mod acl;
pub mod broker;
pub mod consume;
pub mod group;
pub mod kss;
pub mod lint_config;
pub mod produce;
pub mod registry;
pub mod sidecar;
pub mod topic;
pub mod txn;
pub mod up;

use std::path::PathBuf;

/// The `--config` option shared by the commands that start platform components.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigFileArg {
    /// TOML config file [default: ./sluice.toml if it exists]. Flags and SLUICE_* environment
    /// variables override it.
    #[arg(long, env = "SLUICE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}
