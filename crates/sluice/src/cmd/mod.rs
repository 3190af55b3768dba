//! One module per `sluice` subcommand.

pub(crate) mod acl;
pub(crate) mod balance;
pub(crate) mod broker;
pub(crate) mod connect;
pub(crate) mod consume;
pub(crate) mod group;
pub(crate) mod http;
pub(crate) mod kss;
pub(crate) mod lint_config;
pub(crate) mod plan;
pub(crate) mod produce;
pub(crate) mod quota;
pub(crate) mod registry;
pub(crate) mod sidecar;
pub(crate) mod stream;
pub(crate) mod topic;
pub(crate) mod txn;
pub(crate) mod up;
pub(crate) mod user;

use std::path::PathBuf;

/// The `--config` option shared by the commands that start platform components.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConfigFileArg {
    /// TOML config file [default: ./sluice.toml if it exists]. Flags and SLUICE_* environment
    /// variables override it.
    #[arg(long, env = "SLUICE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}
